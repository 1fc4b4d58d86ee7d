"""CDS Hooks 2.0 over HTTP, tested against the specification's normative rules and examples
(https://cds-hooks.hl7.org/2.0/): discovery, service calls, prefetch, fhirServer access, feedback
and client authentication by signed JWT."""
from __future__ import annotations

import time
import uuid

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ihs.cds import client_auth
from tests.cds.helpers import condition, hook_request, order, patient, practitioner, prefetch

BASE = "http://testserver"
JSON = {"Content-Type": "application/json"}


def seed(store, *resources):
    with store.session(write=True) as uow:
        for resource in resources:
            uow.create(dict(resource), method="PUT")


def no_null_or_empty(value, path="$"):
    """CDS Hooks: JSON elements SHALL NOT be null or empty (except the cards array itself)."""
    if isinstance(value, dict):
        assert value, f"{path} is an empty object"
        for key, inner in value.items():
            no_null_or_empty(inner, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"{path} is an empty array"
        for index, inner in enumerate(value):
            no_null_or_empty(inner, f"{path}[{index}]")
    else:
        assert value is not None and value != "", f"{path} is null or empty"


def assert_card_conforms(card: dict):
    no_null_or_empty(card)
    assert isinstance(card["summary"], str) and len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    assert uuid.UUID(card["uuid"])
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
        for suggestion in card["suggestions"]:
            assert suggestion["label"]
            for action in suggestion.get("actions", []):
                assert action["type"] in ("create", "update", "delete") and action["description"]
                assert action.get("resource") or action.get("resourceId")
    for reason in card.get("overrideReasons", []):
        assert reason["code"] and reason["system"] and reason["display"]
    topic = card["source"].get("topic")
    assert topic is None or (topic["code"] and topic["system"])


def sign_request(**data):
    return hook_request("order-sign", [order("new", "clarithromycin", dose=500, per_day=2)],
                        prefetch(active=[order("cur", "simvastatin", status="active", dose=20)],
                                 conditions=[condition("J02.9")], **data))


# -- discovery ------------------------------------------------------------------------------------

def test_discovery_lists_every_service_with_the_required_attributes(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert {s["hook"] for s in services} == {"patient-view", "order-select", "order-sign", "medication-verify"}
    for entry in services:
        no_null_or_empty(entry)
        assert entry["hook"] and entry["description"] and entry["id"] and entry["title"]
        assert all(isinstance(query, str) for query in entry["prefetch"].values())
        assert "{{context.patientId}}" in entry["prefetch"]["medications"]


# -- calling a service ----------------------------------------------------------------------------

def test_order_sign_answers_cards_that_follow_the_card_attributes(client):
    response = client.post("/cds-services/prescription-safety", content=orjson.dumps(sign_request()), headers=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"cards"}
    assert body["cards"]
    for card in body["cards"]:
        assert_card_conforms(card)
    assert any(c["indicator"] == "critical" and c["source"]["topic"]["code"] == "ddi" for c in body["cards"])


def test_no_guidance_is_an_empty_array_of_cards(client):
    body = hook_request("order-sign", [order("new", "amlodipine", dose=5)], prefetch(conditions=[condition("I10")]))
    response = client.post("/cds-services/prescription-safety", content=orjson.dumps(body), headers=JSON)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_every_card_shown_is_stored_as_a_detected_issue(client):
    cards = client.post("/cds-services/prescription-safety", content=orjson.dumps(sign_request()),
                        headers=JSON).json()["cards"]
    for card in cards:
        issue = client.get(f"/DetectedIssue/{card['uuid']}").json()
        assert issue["status"] == "preliminary" and issue["patient"] == {"reference": "Patient/p1"}
        assert issue["severity"] == {"critical": "high", "warning": "moderate", "info": "low"}[card["indicator"]]


@pytest.mark.parametrize("change, expression", [
    (lambda b: b.pop("hookInstance"), "hookInstance"),
    (lambda b: b.update(hook="patient-view"), "hook"),
    (lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                           "scope": "user/Patient.read", "subject": "cds"}), "fhirServer"),
    (lambda b: b["context"].pop("draftOrders"), "context.draftOrders"),
    (lambda b: b["context"].pop("userId"), "context.userId"),
])
def test_a_request_breaking_the_rules_is_refused_with_an_operation_outcome(client, change, expression):
    body = sign_request()
    change(body)
    response = client.post("/cds-services/prescription-safety", content=orjson.dumps(body), headers=JSON)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert expression in [e for issue in outcome["issue"] for e in issue.get("expression", [])]


def test_an_unknown_service_is_404(client):
    response = client.post("/cds-services/nope", content=orjson.dumps(sign_request()), headers=JSON)
    assert response.status_code == 404


def test_order_select_reviews_only_the_selected_orders(client):
    body = hook_request("order-select", [order("a", "clarithromycin", dose=500, per_day=2),
                                         order("b", "amlodipine", dose=5)],
                        prefetch(conditions=[condition("J02.9")]), selections=["MedicationRequest/b"])
    cards = client.post("/cds-services/prescription-safety", content=orjson.dumps(body), headers=JSON).json()["cards"]
    assert {c["source"]["topic"]["code"] for c in cards} == {"indication"}  # amlodipine without hypertension


# -- prefetch and FHIR resource access -----------------------------------------------------------

def test_missing_prefetch_without_a_fhir_server_is_412(client):
    body = sign_request()
    del body["prefetch"]["medications"]
    response = client.post("/cds-services/prescription-safety", content=orjson.dumps(body), headers=JSON)
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_prefetch_key_holding_an_operation_outcome_counts_as_missing(client):
    body = sign_request()
    body["prefetch"]["allergies"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "processing", "diagnostics": "allergy service down"}]}
    assert client.post("/cds-services/prescription-safety", content=orjson.dumps(body),
                       headers=JSON).status_code == 412


def test_null_prefetch_means_no_data(client):
    body = sign_request()
    body["prefetch"]["egfr"] = None
    assert client.post("/cds-services/prescription-safety", content=orjson.dumps(body),
                       headers=JSON).status_code == 200


def test_missing_prefetch_is_fetched_from_the_fhir_server(client, store):
    seed(store, patient(), practitioner(), condition("J02.9", "c1"), order("cur", "simvastatin", status="active",
                                                                           dose=20))
    body = sign_request()
    del body["prefetch"]
    body["fhirServer"] = BASE
    body["fhirAuthorization"] = {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "user/*.read", "subject": "cds-service"}
    cards = client.post("/cds-services/prescription-safety", content=orjson.dumps(body), headers=JSON).json()["cards"]
    assert [c["indicator"] for c in cards if c["source"]["topic"]["code"] == "ddi"] == ["critical"]
    assert not [c for c in cards if c["source"]["topic"]["code"] in ("indication", "prescriber")]


def test_patient_view_and_medication_verify_answer_from_the_store(client, store):
    seed(store, patient(), practitioner(), order("a", "simvastatin", status="active", dose=20),
         order("b", "clarithromycin", status="active", dose=500, per_day=2))
    view = hook_request("patient-view", [])
    view["fhirServer"] = BASE
    cards = client.post("/cds-services/medication-review", content=orjson.dumps(view), headers=JSON).json()["cards"]
    assert [c["indicator"] for c in cards if c["source"]["topic"]["code"] == "ddi"] == ["critical"]
    verify = hook_request("medication-verify", [order("b", "clarithromycin", status="active", dose=500, per_day=2)])
    verify["fhirServer"] = BASE
    cards = client.post("/cds-services/pharmacist-verification", content=orjson.dumps(verify),
                        headers=JSON).json()["cards"]
    assert any(c["source"]["topic"]["code"] == "ddi" for c in cards)
    assert any(r["code"] == "5" for c in cards for r in c.get("overrideReasons", []))


# -- feedback -------------------------------------------------------------------------------------

def shown_card(client) -> dict:
    cards = client.post("/cds-services/prescription-safety", content=orjson.dumps(sign_request()),
                        headers=JSON).json()["cards"]
    return next(c for c in cards if c["indicator"] == "critical")


def test_feedback_overridden_with_reason_is_recorded_once(client):
    card = shown_card(client)
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-05-01T02:00:00Z",
                              "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "监测肌酸激酶"}}]}
    for _ in range(2):  # a client may send the same feedback more than once
        response = client.post("/cds-services/prescription-safety/feedback", content=orjson.dumps(feedback),
                               headers=JSON)
        assert response.status_code == 200
    issue = client.get(f"/DetectedIssue/{card['uuid']}").json()
    assert issue["status"] == "final" and len(issue["mitigation"]) == 1
    action = issue["mitigation"][0]["action"]
    assert action["coding"][0]["code"] == card["overrideReasons"][0]["code"] and action["text"] == "监测肌酸激酶"


def test_feedback_accepted_needs_the_accepted_suggestions(client):
    card = shown_card(client)
    bad = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-05-01T02:00:00Z"}]}
    assert client.post("/cds-services/prescription-safety/feedback", content=orjson.dumps(bad),
                       headers=JSON).status_code == 400
    good = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-05-01T02:00:00Z",
                          "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}]}
    assert client.post("/cds-services/prescription-safety/feedback", content=orjson.dumps(good),
                       headers=JSON).status_code == 200


def test_feedback_on_an_unknown_card_is_404(client):
    feedback = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                              "outcomeTimestamp": "2026-05-01T02:00:00Z"}]}
    assert client.post("/cds-services/prescription-safety/feedback", content=orjson.dumps(feedback),
                       headers=JSON).status_code == 404


# -- client authentication by signed JWT -----------------------------------------------------------

ISSUER = "https://ehr.example.org"


@pytest.fixture
def signing_key(tmp_path, monkeypatch):
    """An EC P-384 key pair; the public half registered as a CDS client's JWK Set."""
    key = ec.generate_private_key(ec.SECP384R1())
    public = orjson.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update(kid="ehr-key-1", use="sig", alg="ES384")
    path = tmp_path / "clients.json"
    path.write_bytes(orjson.dumps({"clients": [{"iss": ISSUER, "jwks": {"keys": [public]},
                                                "jku": [f"{ISSUER}/jwks.json"]}]}))
    monkeypatch.setenv("IHS_CDS_CLIENTS", str(path))
    yield key
    client_auth._registry.cache_clear()


def token(key, aud: str, *, alg="ES384", kid="ehr-key-1", jti=None, **header) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": aud, "exp": now + 300, "iat": now, "jti": jti or str(uuid.uuid4()),
              "tenant": "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT", **header})


def test_with_registered_clients_every_call_needs_a_signed_jwt(client, signing_key):
    assert client.get("/cds-services").status_code == 401
    response = client.get("/cds-services",
                          headers={"Authorization": f"Bearer {token(signing_key, f'{BASE}/cds-services')}"})
    assert response.status_code == 200
    url = f"{BASE}/cds-services/prescription-safety"
    ok = client.post("/cds-services/prescription-safety", content=orjson.dumps(sign_request()),
                     headers={**JSON, "Authorization": f"Bearer {token(signing_key, url)}"})
    assert ok.status_code == 200


def test_jwt_for_another_endpoint_is_refused(client, signing_key):
    bearer = token(signing_key, f"{BASE}/cds-services/medication-review")
    response = client.post("/cds-services/prescription-safety", content=orjson.dumps(sign_request()),
                           headers={**JSON, "Authorization": f"Bearer {bearer}"})
    assert response.status_code == 401


def test_jwt_replayed_is_refused(client, signing_key):
    bearer = token(signing_key, f"{BASE}/cds-services", jti="same-nonce-" + str(uuid.uuid4()))
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {bearer}"}).status_code == 401


def test_jwt_signed_with_a_shared_secret_or_an_unknown_key_is_refused(client, signing_key):
    aud = f"{BASE}/cds-services"
    hmac = jwt.encode({"iss": ISSUER, "aud": aud, "exp": int(time.time()) + 60, "iat": int(time.time()),
                       "jti": str(uuid.uuid4())}, "shared-secret-shared-secret-shared", algorithm="HS256",
                      headers={"kid": "ehr-key-1", "typ": "JWT"})
    other = ec.generate_private_key(ec.SECP384R1())
    for bearer in (hmac, token(other, aud), token(signing_key, aud, kid="unknown"),
                   token(signing_key, aud, jku="https://evil.example.org/jwks.json")):
        assert client.get("/cds-services", headers={"Authorization": f"Bearer {bearer}"}).status_code == 401


def test_jwt_expired_is_refused(client, signing_key):
    now = int(time.time())
    expired = jwt.encode({"iss": ISSUER, "aud": f"{BASE}/cds-services", "exp": now - 600, "iat": now - 900,
                          "jti": str(uuid.uuid4())}, signing_key, algorithm="ES384",
                         headers={"kid": "ehr-key-1", "typ": "JWT"})
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
