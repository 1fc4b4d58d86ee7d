"""`_text` (the narrative) and `_content` (the whole resource): full-text search (R4 search, "_text", "_content").

The words come from idx_fulltext (written with each version, ihs/fhir/fulltext.py). A value is a
small query language, the same on both databases:

- words separated by spaces must all occur (`heart failure`), in any order;
- `"quoted words"` must occur together in that order; `word*` matches words starting with `word`;
- `OR` (upper case) between words or phrases offers alternatives: `asthma OR copd`;
- `-word` (or `NOT word`) excludes resources containing the word;
- commas separate alternatives, as for every parameter.

SQLite answers from the FTS5 table idx_fulltext_fts (`MATCH`, _content over both of its columns),
PostgreSQL from the GIN index over schema.FULLTEXT_VECTOR (`@@ to_tsquery`, with the narrative's
words weighted A for _text); `MatchingRids` renders the one its database speaks. A phrase of _content is looked
for within the narrative or within the rest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ihs.fhir.errors import FhirError
from ihs.fhir.fulltext import words
from ihs.store.schema import FULLTEXT_VECTOR
from ihs.store.search import values as v
from ihs.store.search.special import Special

COLUMNS = {"_text": "narrative", "_content": "content"}
_TERM = re.compile(r'(-?)"([^"]*)"|(\S+)')


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # in order: a phrase when more than one
    prefix: bool = False  # the last word is a prefix


# alternatives (OR) of (required terms, excluded terms)
Query = tuple[tuple[tuple[Term, ...], tuple[Term, ...]], ...]


def parse_query(name: str, text: str) -> Query:
    """The alternatives of one value (without commas): each (required terms, excluded terms)."""
    groups, required, excluded, negate = [], [], [], False
    for match in _TERM.finditer(text):
        minus, phrase, bare = match.groups()
        if bare == "OR":
            groups.append((required, excluded))
            required, excluded = [], []
            continue
        if bare == "NOT":
            negate = True
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            minus, bare = "-", bare[1:]
        written = phrase if phrase is not None else bare
        prefix = phrase is None and written.endswith("*")
        found = tuple(words(written.rstrip("*") if prefix else written))
        if found:
            (excluded if minus or negate else required).append(Term(found, prefix))
        negate = False
    groups.append((required, excluded))
    for required, excluded in groups:
        if not required:
            raise FhirError(f"search parameter '{name}': '{text}' has an alternative without a word to find "
                            "(write words, \"a phrase\", word* or -word after a word)")
    return tuple((tuple(r), tuple(e)) for r, e in groups)


def _fts5(column: str, query: Query) -> str:
    def term(t: Term) -> str:
        return '"' + " ".join(t.words) + '"' + (" *" if t.prefix else "")

    def group(required, excluded) -> str:
        found = "(" + " AND ".join(term(t) for t in required) + ")"
        return found + "".join(f" NOT {term(t)}" for t in excluded)
    columns = "narrative" if column == "narrative" else "{narrative content}"
    return f"{columns} : (" + " OR ".join(f"({group(*g)})" for g in query) + ")"


def _tsquery(column: str, query: Query) -> str:
    weight = "A" if column == "narrative" else ""  # the narrative's lexemes carry weight A

    def term(t: Term) -> str:
        marks = [weight] * len(t.words)
        if t.prefix:
            marks[-1] = "*" + weight
        return "(" + " <-> ".join(w + (":" + mark if mark else "") for w, mark in zip(t.words, marks)) + ")"

    def group(required, excluded) -> str:
        return " & ".join([term(t) for t in required] + [f"!{term(t)}" for t in excluded])
    return " | ".join(f"({group(*g)})" for g in query)


class MatchingRids(ColumnElement):
    """The parenthesized SELECT of the rids whose narrative or content matches a query, as each database
    answers it; used as `rid IN (...)`, evaluated once per statement."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_string),
                           ("fts", InternalTraversal.dp_clauseelement), ("ts", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: str, query: Query):
        self.column = column
        self.fts = bindparam(None, _fts5(column, query), type_=String)
        self.ts = bindparam(None, _tsquery(column, query), type_=String)


@compiles(MatchingRids, "sqlite")
def _sqlite(element: MatchingRids, compiler, **kw) -> str:
    return f"(SELECT rowid FROM idx_fulltext_fts WHERE idx_fulltext_fts MATCH {compiler.process(element.fts, **kw)})"


@compiles(MatchingRids, "postgresql")
def _postgresql(element: MatchingRids, compiler, **kw) -> str:
    # the expression of the GIN index in ihs/store/schema.py, word for word
    return (f"(SELECT rid FROM idx_fulltext WHERE {FULLTEXT_VECTOR} @@ "
            f"to_tsquery('simple', {compiler.process(element.ts, **kw)}))")


@dataclass(frozen=True)
class FullText(Special):
    column: str
    query: Query
    rank: int = 2

    def condition(self, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
        # the index answers the whole query at once: a set to test membership in, whether it drives or not
        return r.c.rid.op("IN", is_comparison=True)(MatchingRids(self.column, self.query))


def parse(name: str, value: str) -> FullText:
    code, _, modifier = name.partition(":")
    if modifier:
        raise FhirError(f"search parameter '{name}': {code} takes no modifier", code="not-supported")
    query: list = []
    for part in v.split_unescaped(value, ","):
        query.extend(parse_query(name, v.unescape(part)))
    return FullText(COLUMNS[code], tuple(query))
