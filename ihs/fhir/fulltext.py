"""The words of a resource for the _text and _content search parameters.

A resource's narrative (text.div with its XHTML tags removed) and the rest of its content become
sequences of words: folded like string search values (lower case, accents removed, CJK kept) and
split at every character that is not a letter or a digit. The content is every string value of the
resource but its narrative (searched beside it), URIs (coding systems, profile and extension urls)
and base64 attachment data: words, not identifiers of vocabularies.
Both databases index the words as given (SQLite FTS5 `unicode61`, PostgreSQL `to_tsvector('simple')`),
and a search splits its terms the same way, so "8867-4" or "O'Brien" means the same on either.
"""
from __future__ import annotations

import html
import re

import orjson

from ihs.fhir import indexing

WORD = re.compile(r"[^\W_]+")
_TAG = re.compile(r"<[^>]*>")
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)")
# values starting so are URIs (coding systems, profiles, extension urls); values of 256 characters or more
# without a space are base64 data
URI_SCHEMES = ("http://", "https://", "urn:", "ftp://", "file://")
# content beyond this many characters is not indexed (PostgreSQL's tsvector holds at most 1 MB)
MAX_CONTENT = 100_000


def words(text: str) -> list[str]:
    """The searchable words of `text`, in order."""
    return WORD.findall(indexing.fold(text))


def narrative_text(resource: dict) -> str:
    """The human-readable text of the narrative, without its markup."""
    narrative = resource.get("text")
    div = narrative.get("div") if isinstance(narrative, dict) else None
    if not isinstance(div, str):
        return ""
    return html.unescape(_TAG.sub(" ", div))


def words_of(resource: dict) -> tuple[str, str]:
    """(narrative words, content words) of `resource`, each joined by spaces; the narrative's words
    are not repeated in the content."""
    narrative = " ".join(words(narrative_text(resource)))
    rest = {key: value for key, value in resource.items() if key != "text"} if "text" in resource else resource
    # splitting compact JSON at its quotes alternates outside / inside strings: far faster than walking the tree
    text = orjson.dumps(rest).decode()
    if "\\" in text:
        text = _ESCAPE.sub(" ", text)  # escaped quotes too, so that the split stays aligned
    parts = text.split('"')
    values = [value for value, after in zip(parts[1::2], parts[2::2])
              if after[:1] != ":" and not value.startswith(URI_SCHEMES) and (len(value) < 256 or " " in value)]
    return narrative, " ".join(words(" ".join(values)[:MAX_CONTENT]))
