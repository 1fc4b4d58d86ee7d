"""User-defined SearchParameters: a warning until `reindex` has backfilled them, then complete results."""
from __future__ import annotations

import copy

import pytest

from ihs.fhir.searchparams import registry
from ihs.store.reindex import reindex
from ihs.store.search import custom
from tests.store.search_helpers import put, result

EYES = "http://example.org/fhir/StructureDefinition/eye-colour"


def eye_colour_parameter(version_expression: str = f"Patient.extension('{EYES}').value") -> dict:
    return {"resourceType": "SearchParameter", "id": "eye-colour", "url": "http://example.org/fhir/SearchParameter/eye",
            "name": "EyeColour", "status": "active", "description": "eye colour", "code": "eye-colour",
            "base": ["Patient"], "type": "string", "expression": version_expression}


def patient(pid: str, colour: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "extension": [{"url": EYES, "valueString": colour}]}


@pytest.fixture(autouse=True)
def restore_registry():
    # the registry is shared by the process: put back what these tests add to it
    shared = registry()
    saved = copy.copy(shared._params), {t: dict(p) for t, p in shared._params.items()}, dict(shared._by_url)
    yield
    shared._params = saved[1]
    shared._by_url = saved[2]
    shared._derived.clear()
    custom._registered.clear()


def _ids(answer) -> set[str]:
    return {m.id for m in answer.matches}


def test_search_on_a_parameter_not_yet_backfilled_warns_and_returns_nothing(store):
    put(store, patient("a", "blue"), patient("b", "brown"))
    put(store, eye_colour_parameter())
    answer = result(store, "Patient", "eye-colour=blue")
    assert answer.matches == []
    assert "ihs reindex" in answer.warnings[0].diagnostics and answer.warnings[0].severity == "warning"
    assert result(store, "Patient", "_sort=eye-colour").warnings


def test_reindex_backfills_and_then_searches_are_complete(store):
    put(store, patient("a", "blue"), patient("b", "brown"), patient("c", "Blue-grey"))
    put(store, eye_colour_parameter())
    report = reindex(store, progress=False)
    assert report["parameters"] == [{"id": "eye-colour", "code": "eye-colour", "types": ["Patient"],
                                     "status": "ready"}]
    assert report["resources"] == 3 and report["rows"] == 3 and report["errors"] == []
    answer = result(store, "Patient", "eye-colour=blue")
    assert _ids(answer) == {"a", "c"} and answer.warnings == []
    put(store, patient("d", "blue"))  # written after: indexed at write time
    assert _ids(result(store, "Patient", "eye-colour:exact=blue")) == {"a", "d"}
    assert reindex(store, progress=False)["parameters"] == []  # nothing left to do


def test_changed_definition_is_pending_again_until_reindexed(store):
    put(store, patient("a", "blue"))
    put(store, eye_colour_parameter())
    reindex(store, progress=False)
    with store.session(write=True) as uow:
        current = uow.current("SearchParameter", "eye-colour")
        uow.update(eye_colour_parameter(f"Patient.extension('{EYES}').value | Patient.name.family"), current)
    assert result(store, "Patient", "eye-colour=blue").warnings
    reindex(store, progress=False)
    assert _ids(result(store, "Patient", "eye-colour=blue")) == {"a"}


def test_unusable_definition_is_reported_not_registered(store):
    put(store, {**eye_colour_parameter(), "expression": "Patient.extension.nosuchfunction()"})
    report = reindex(store, progress=False)
    assert report["parameters"] == [] and "SearchParameter/eye-colour" in report["errors"][0]
