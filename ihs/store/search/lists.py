"""`_list=[id]`: the resources a List holds (R4 search, "_list").

`Patient?_list=42` matches the patients List/42 refers to in List.entry.item, read from the List's
`item` index rows. A deleted or unknown List holds nothing. The functional lists of FUNCTIONAL
(`AllergyIntolerance?patient=42&_list=$current-allergies`) are the criteria they stand for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.errors import FhirError
from ihs.store.schema import idx_reference, resources
from ihs.store.search import values as v
from ihs.store.search.special import Special


@dataclass(frozen=True)
class InList(Special):
    list_ids: tuple[str, ...]  # alternatives (OR)
    rank: int = 1

    def condition(self, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
        from ihs.store.search.conditions import probe  # conditions imports the parser, which imports this

        lists, i = resources.alias(), idx_reference.alias()
        held = select(i.c.target_id).where(
            i.c.rid.in_(select(lists.c.rid).where(lists.c.res_type == "List", lists.c.res_id.in_(self.list_ids))),
            i.c.res_type == "List", i.c.param == "item")
        if driving and types is not None and len(types) == 1:
            return r.c.res_id.in_(held.where(i.c.target_type == types[0]))
        return probe(held.where(i.c.target_type == r.c.res_type, i.c.target_id == r.c.res_id))


# functional lists (R4 List, "Current Resource Lists"): what each means, as ordinary criteria per type
FUNCTIONAL = {
    "$current-problems": {"Condition": [("clinical-status", "active,recurrence,relapse"),
                                        ("category", "problem-list-item")]},
    "$current-medications": {"MedicationStatement": [("status", "active,intended")],
                             "MedicationRequest": [("status", "active")]},
    "$current-allergies": {"AllergyIntolerance": [("clinical-status", "active")]},
    "$current-drug-allergies": {"AllergyIntolerance": [("clinical-status", "active"), ("category", "medication")]},
}


def parse(res_type: str, name: str, value: str, parse_criterion):
    """The criterion of `_list=value` on `res_type`; `parse_criterion(name, value)` parses ordinary ones."""
    from ihs.store.search.filtering import Logic

    if name != "_list":
        raise FhirError(f"search parameter '{name}': _list takes no modifier", code="not-supported")
    ids, alternatives = [], []
    for part in v.split_unescaped(value, ","):
        text = v.unescape(part)
        if text.startswith("$"):
            alternatives.append(_functional(res_type, text, parse_criterion))
            continue
        list_type, list_id = v.parse_reference_path(text)
        if list_type not in (None, "List") or (list_type is None and "/" in text) or not (list_id or text):
            raise FhirError(f"search parameter '_list': '{text}' is not a List id (write 42 or List/42)")
        ids.append(list_id or text)
    if ids:
        alternatives.append(InList(tuple(ids)))
    return alternatives[0] if len(alternatives) == 1 else Logic("or", tuple(alternatives))


def _functional(res_type: str, name: str, parse_criterion):
    from ihs.store.search.filtering import Logic

    meaning = FUNCTIONAL.get(name)
    if meaning is None:
        raise FhirError(f"search parameter '_list': the functional list '{name}' is not defined by this server "
                        f"(it defines {', '.join(FUNCTIONAL)})", code="not-supported")
    if res_type not in meaning:
        raise FhirError(f"search parameter '_list': {name} holds {' and '.join(meaning)} resources, not {res_type}")
    return Logic("and", tuple(parse_criterion(code, wanted) for code, wanted in meaning[res_type]))
