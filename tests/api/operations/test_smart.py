"""The SMART authorization server end to end over HTTP."""
from functools import lru_cache
from urllib.parse import parse_qs, urlparse

import pytest

from ihs.audit import verify
from ihs.auth import admin
from ihs.auth.authority import Authority
from ihs.auth.passwords import use_profile
from ihs.auth.ratelimit import LoginLimits
from ihs.store.search import find
from tests.auth.clients import REDIRECT, VERIFIER, authorization_params, credentials, register_app, register_backend
from tests.auth.security_tables import reset_security_tables

BASE = "http://testserver"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@lru_cache(maxsize=1)
def _key():
    from ihs.auth.keys import SigningKey, _new_key

    return SigningKey(_new_key())


@pytest.fixture(autouse=True, scope="module")
def _cheap_passwords():
    use_profile("CHEAPEST")
    yield
    use_profile()


@pytest.fixture
def smart(client, store):
    del client.headers["Authorization"]  # these tests get their tokens from the server they test
    reset_security_tables(store)
    client.app.state.authority = Authority(store, BASE, key=_key(),
                                           limits=LoginLimits(account_failures=3, address_failures=50, window=600))
    register_app(store)
    admin.add_user(store, "alice", "correct horse battery", roles=("patient",), fhir_user="Patient/p1")
    return client


def _login(client, password="correct horse battery", **extra):
    params = authorization_params("patient/*.rs launch/patient openid fhirUser offline_access", aud=BASE, **extra)
    return client.post("/auth/authorize", data={**params, "username": "alice", "password": password},
                       headers=FORM, follow_redirects=False)


def _code(client) -> str:
    response = _login(client)
    assert response.status_code == 302, response.text
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query["state"] == ["s-1"]
    return query["code"][0]


def _exchange(client, code, verifier=VERIFIER):
    return client.post("/auth/token", data={"grant_type": "authorization_code", "code": code, "client_id": "app",
                                            "redirect_uri": REDIRECT, "code_verifier": verifier}, headers=FORM)


def test_smart_configuration(smart):
    config = smart.get("/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == f"{BASE}/auth/token"
    assert config["authorization_endpoint"] == f"{BASE}/auth/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "permission-v2" in config["capabilities"] and "client-confidential-asymmetric" in config["capabilities"]


def test_jwks_publishes_the_public_key_only(smart):
    keys = smart.get("/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1 and keys[0]["alg"] == "RS384" and "d" not in keys[0]


def test_login_page(smart):
    response = smart.get("/auth/authorize", params=authorization_params("patient/*.rs launch/patient", aud=BASE))
    assert response.status_code == 200 and 'name="password"' in response.text
    assert 'name="code_challenge"' in response.text and "patient/*.rs" in response.text
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"


def test_authorization_code_flow_end_to_end(smart):
    response = _exchange(smart, _code(smart))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["patient"] == "p1"
    assert {"access_token", "refresh_token", "id_token"} <= tokens.keys()
    refreshed = smart.post("/auth/token", data={"grant_type": "refresh_token", "client_id": "app",
                                                "refresh_token": tokens["refresh_token"]}, headers=FORM)
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != tokens["access_token"]


def test_pkce_mismatch_gets_invalid_grant(smart):
    response = _exchange(smart, _code(smart), verifier="W" * 43)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_missing_pkce_is_sent_back_to_the_app(smart):
    params = authorization_params("patient/*.rs", aud=BASE)
    del params["code_challenge"]
    response = smart.get("/auth/authorize", params=params, follow_redirects=False)
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["s-1"]


def test_unknown_client_is_not_redirected(smart):
    response = smart.get("/auth/authorize", params=authorization_params("patient/*.rs", client_id="nobody"),
                         follow_redirects=False)
    assert response.status_code == 400 and "unknown client_id" in response.text


def test_wrong_password_then_rate_limit(smart, store):
    for _ in range(3):
        response = _login(smart, password="guess")
        assert response.status_code == 401 and "wrong username or password" in response.text
    locked = _login(smart)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    with store.session() as uow:
        failures = [s.resource() for s in find(uow, "AuditEvent", [("outcome", "4")], limit=10)]
    assert len(failures) == 4 and all(e["subtype"][0]["code"] == "110122" for e in failures)
    assert verify(store).ok


def test_successful_login_is_audited(smart, store):
    _code(smart)
    with store.session() as uow:
        events = [s.resource() for s in find(uow, "AuditEvent", [("outcome", "0")])]
    assert len(events) == 1 and events[0]["agent"][0]["who"]["reference"] == "Patient/p1"


def test_client_credentials_and_replay(smart, store):
    private = register_backend(store, scopes="system/Observation.rs")
    form = {"grant_type": "client_credentials", "scope": "system/Observation.rs",
            **credentials(private, f"{BASE}/auth/token", jti="only-once")}
    first = smart.post("/auth/token", data=form, headers=FORM)
    assert first.status_code == 200 and first.json()["scope"] == "system/Observation.rs"
    replay = smart.post("/auth/token", data=form, headers=FORM)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert "replay" in replay.json()["error_description"]


def test_introspection_needs_a_caller(smart):
    tokens = _exchange(smart, _code(smart)).json()
    anonymous = smart.post("/auth/introspect", data={"token": tokens["access_token"]}, headers=FORM)
    assert anonymous.status_code == 401
    bearer = {**FORM, "Authorization": f"Bearer {tokens['access_token']}"}
    info = smart.post("/auth/introspect", data={"token": tokens["access_token"]}, headers=bearer).json()
    assert info["active"] and info["client_id"] == "app" and info["patient"] == "p1"


def test_revocation(smart, store):
    tokens = _exchange(smart, _code(smart)).json()
    private = register_backend(store)
    revoked = smart.post("/auth/revoke", data={"token": tokens["access_token"], "client_id": "app"}, headers=FORM)
    assert revoked.status_code == 200
    caller = credentials(private, f"{BASE}/auth/token")
    info = smart.post("/auth/introspect", data={"token": tokens["access_token"], **caller}, headers=FORM).json()
    assert info == {"active": False}
    reused = smart.post("/auth/introspect", data={"token": tokens["refresh_token"]},
                        headers={**FORM, "Authorization": f"Bearer {tokens['access_token']}"})
    assert reused.status_code == 401


def test_token_endpoint_errors(smart):
    response = smart.post("/auth/token", data={"grant_type": "password", "username": "alice"}, headers=FORM)
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
