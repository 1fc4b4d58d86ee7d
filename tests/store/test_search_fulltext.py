"""`_text` and `_content`, as https://hl7.org/fhir/R4/search.html ("_text", "_content") describes them:
text search over the narrative, and over the whole content of the resource.

Every test runs on SQLite (FTS5) and on PostgreSQL (to_tsvector with GIN indexes).
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from tests.store.search_helpers import found, put


def condition(cid: str, narrative: str | None, code_text: str, note: str = "") -> dict:
    body = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "code": {"text": code_text}}
    if narrative is not None:
        body["text"] = {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{narrative}</div>'}
    if note:
        body["note"] = [{"text": note}]
    return body


@pytest.fixture
def problems(store):
    put(store,
        condition("chf", "<p>Congestive <b>heart</b> failure, NYHA class II</p>", "Heart failure"),
        condition("mi", "<p>Old myocardial infarction; heart &amp; lungs examined</p>", "Myocardial infarction",
                  note="Seen by Dr Núñez"),
        condition("asthma", "<p>Asthma, well controlled</p>", "Asthma", note="failure of inhaler technique"),
        condition("bare", None, "Chronic obstructive pulmonary disease"))
    return store


def test_text_searches_the_narrative_without_its_markup(problems):
    assert found(problems, "Condition", "_text=heart") == {"chf", "mi"}
    assert found(problems, "Condition", "_text=lungs") == {"mi"}
    assert found(problems, "Condition", "_text=div") == set()
    assert found(problems, "Condition", "_text=pulmonary") == set()


def test_content_searches_every_value_of_the_resource(problems):
    assert found(problems, "Condition", "_content=pulmonary") == {"bare"}
    assert found(problems, "Condition", "_content=failure") == {"chf", "asthma"}
    assert found(problems, "Condition", "_content=nunez") == {"mi"}


def test_words_are_all_required_case_and_accents_ignored(problems):
    assert found(problems, "Condition", "_text=HEART failure") == {"chf"}
    assert found(problems, "Condition", "_content=Dr%20N%C3%BA%C3%B1ez") == {"mi"}


def test_quoted_words_are_a_phrase(problems):
    assert found(problems, "Condition", '_text="heart failure"') == {"chf"}
    assert found(problems, "Condition", '_text="failure heart"') == set()


def test_or_alternatives_exclusions_and_prefixes(problems):
    assert found(problems, "Condition", "_text=asthma OR infarction") == {"asthma", "mi"}
    assert found(problems, "Condition", "_text=asthma,infarction") == {"asthma", "mi"}
    assert found(problems, "Condition", "_text=heart -lungs") == {"chf"}
    assert found(problems, "Condition", "_text=heart NOT failure") == {"mi"}
    assert found(problems, "Condition", "_text=myocard*") == {"mi"}


def test_text_follows_updates_and_deletions(problems):
    with problems.session(write=True) as uow:
        uow.update(condition("chf", "<p>Resolved oedema</p>", "Heart failure"), uow.current("Condition", "chf"))
        uow.delete(uow.current("Condition", "mi"))
    assert found(problems, "Condition", "_text=heart") == set()
    assert found(problems, "Condition", "_text=oedema") == {"chf"}


def test_text_combines_with_other_parameters(problems):
    assert found(problems, "Condition", "_text=heart&code:text=myocardial") == {"mi"}
    assert found(problems, "Condition", "_content=failure&_text=asthma") == {"asthma"}


def test_a_value_without_a_word_is_refused(problems):
    with pytest.raises(FhirError, match="without a word to find"):
        found(problems, "Condition", "_text=-heart")
    with pytest.raises(FhirError, match="takes no modifier"):
        found(problems, "Condition", "_text:exact=heart")
