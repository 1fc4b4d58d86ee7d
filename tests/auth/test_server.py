"""The OAuth flows without HTTP: PKCE, codes, refresh, client_credentials with private_key_jwt."""
from urllib.parse import parse_qs, urlparse

import pytest

from ihs.auth import admin
from ihs.auth.authority import Authority
from ihs.auth.errors import OAuthError
from ihs.auth.ratelimit import LoginLimits
from ihs.auth.server import RedirectError, authorization_request, introspect, login, revoke, token
from tests.auth.clients import (REDIRECT, VERIFIER, assertion, authorization_params, credentials, register_app,
                                register_backend)

BASE = "http://ihs.test/fhir"
TOKEN_URL = f"{BASE}/auth/token"


def _authority(store, key):
    register_app(store)
    admin.add_user(store, "alice", "correct horse battery", roles=("patient",), fhir_user="Patient/p1")
    return Authority(store, BASE, key=key, limits=LoginLimits(account_failures=3, address_failures=5, window=600))


@pytest.fixture
def authority(sqlite_store, signing_key):
    """The flows' logic, on SQLite."""
    return _authority(sqlite_store, signing_key)


@pytest.fixture
def stored_authority(secure_store, signing_key):
    """For flows whose single-use guarantees rest on the database: on SQLite and PostgreSQL."""
    return _authority(secure_store, signing_key)


def _code(authority, scope="patient/*.rs launch/patient openid fhirUser offline_access", **extra):
    request = authorization_request(authority, authorization_params(scope, **extra))
    result = login(authority, request, "alice", "correct horse battery", "10.0.0.1")
    query = parse_qs(urlparse(result.location).query)
    assert query["state"] == ["s-1"]
    return query["code"][0], request


def _exchange(authority, code, verifier=VERIFIER, **extra):
    form = {"grant_type": "authorization_code", "code": code, "client_id": "app", "redirect_uri": REDIRECT,
            "code_verifier": verifier}
    form.update(extra)
    return token(authority, form)


def test_authorization_code_flow(authority):
    code, _request = _code(authority)
    tokens = _exchange(authority, code)
    assert tokens["token_type"] == "Bearer" and tokens["patient"] == "p1"
    assert {"access_token", "refresh_token", "id_token", "expires_in", "scope"} <= tokens.keys()
    principal = authority.authenticate({"authorization": f"Bearer {tokens['access_token']}"})
    assert principal.fhir_user == "Patient/p1" and principal.roles == {"patient"}


def test_pkce_mismatch_is_rejected(authority):
    code, _ = _code(authority)
    with pytest.raises(OAuthError, match="code_verifier") as raised:
        _exchange(authority, code, verifier="x" * 43)
    assert raised.value.error == "invalid_grant"


def test_pkce_is_required(authority):
    code, _ = _code(authority)
    with pytest.raises(OAuthError, match="PKCE"):
        _exchange(authority, code, verifier="")


def test_plain_pkce_is_refused(authority):
    with pytest.raises(RedirectError, match="S256"):
        authorization_request(authority, authorization_params("patient/*.rs", code_challenge_method="plain"))


def test_a_code_works_once(stored_authority):
    code, _ = _code(stored_authority)
    _exchange(stored_authority, code)
    with pytest.raises(OAuthError, match="already been used"):
        _exchange(stored_authority, code)


def test_redirect_uri_must_match(authority):
    code, _ = _code(authority)
    with pytest.raises(OAuthError, match="redirect_uri"):
        _exchange(authority, code, redirect_uri="http://evil.test/cb")


def test_unregistered_redirect_uri_is_not_followed(authority):
    with pytest.raises(OAuthError) as raised:
        authorization_request(authority, authorization_params("patient/*.rs", redirect_uri="http://evil.test/cb"))
    assert not isinstance(raised.value, RedirectError)


def test_wrong_audience_parameter(authority):
    with pytest.raises(RedirectError, match="aud"):
        authorization_request(authority, authorization_params("patient/*.rs", aud="http://other.test/fhir"))


def test_scope_escalation_is_dropped_not_granted(authority):
    admin.add_client(authority.store, "narrow", kind="public", scopes="patient/Observation.rs",
                     redirect_uris=(REDIRECT,))
    request = authorization_request(authority, authorization_params(
        "patient/Observation.rs user/*.cruds patient/Condition.rs", client_id="narrow"))
    assert request.scope == "patient/Observation.rs"


def test_nothing_grantable_is_an_error(authority):
    admin.add_client(authority.store, "narrow", kind="public", scopes="patient/Observation.rs",
                     redirect_uris=(REDIRECT,))
    with pytest.raises(RedirectError, match="none of the requested scopes"):
        authorization_request(authority, authorization_params("user/*.cruds", client_id="narrow"))


def test_wrong_password(authority):
    request = authorization_request(authority, authorization_params("patient/*.rs"))
    with pytest.raises(OAuthError, match="wrong username or password"):
        login(authority, request, "alice", "guess", "10.0.0.1")
    with pytest.raises(OAuthError, match="wrong username or password"):
        login(authority, request, "nobody", "guess", "10.0.0.1")


def test_refresh_rotates_and_cannot_widen(stored_authority):
    code, _ = _code(stored_authority)
    first = _exchange(stored_authority, code)
    second = token(stored_authority, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                               "client_id": "app"})
    assert second["access_token"] != first["access_token"]
    with pytest.raises(OAuthError, match="already been used|revoked"):
        token(stored_authority, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                 "client_id": "app"})
    with pytest.raises(OAuthError, match="widen"):
        token(stored_authority, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"],
                          "client_id": "app", "scope": "user/*.cruds"})


def test_refresh_can_narrow(authority):
    code, _ = _code(authority)
    first = _exchange(authority, code)
    narrowed = token(authority, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                 "client_id": "app", "scope": "patient/Observation.rs offline_access"})
    assert narrowed["scope"] == "patient/Observation.rs offline_access"


def test_introspect_and_revoke(stored_authority):
    code, _ = _code(stored_authority)
    tokens = _exchange(stored_authority, code)
    assert introspect(stored_authority, tokens["access_token"])["active"]
    assert introspect(stored_authority, tokens["refresh_token"])["token_type"] == "refresh_token"
    revoke(stored_authority, tokens["access_token"], "app")
    revoke(stored_authority, tokens["refresh_token"], "app")
    assert introspect(stored_authority, tokens["access_token"]) == {"active": False}
    assert introspect(stored_authority, tokens["refresh_token"]) == {"active": False}


def test_another_client_cannot_revoke(authority):
    code, _ = _code(authority)
    tokens = _exchange(authority, code)
    revoke(authority, tokens["access_token"], "someone-else")
    assert introspect(authority, tokens["access_token"])["active"]


# -- client_credentials with private_key_jwt -----------------------------------------------------

@pytest.mark.parametrize("algorithm", ["ES384", "RS384"])
def test_client_credentials(stored_authority, algorithm):
    private = register_backend(stored_authority.store, algorithm=algorithm, organizations=("Organization/hA",))
    form = {"grant_type": "client_credentials", "scope": "system/Observation.rs user/*.rs",
            **credentials(private, TOKEN_URL)}
    tokens = token(stored_authority, form)
    assert tokens["scope"] == "system/Observation.rs"
    principal = stored_authority.authenticate({"authorization": f"Bearer {tokens['access_token']}"})
    assert principal.roles == {"system"} and principal.client_id == "his"
    assert principal.organizations[0] == "Organization/hA"


def test_replayed_assertion_is_rejected(stored_authority):
    private = register_backend(stored_authority.store)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs",
            **credentials(private, TOKEN_URL, jti="once")}
    token(stored_authority, form)
    with pytest.raises(OAuthError, match="replay") as raised:
        token(stored_authority, form)
    assert raised.value.status == 401


def test_same_jti_in_a_new_assertion_is_still_a_replay(stored_authority):
    private = register_backend(stored_authority.store)
    token(stored_authority, {"grant_type": "client_credentials", "scope": "system/*.rs",
                      **credentials(private, TOKEN_URL, jti="j-1")})
    with pytest.raises(OAuthError, match="replay"):
        token(stored_authority, {"grant_type": "client_credentials", "scope": "system/*.rs",
                          **credentials(private, TOKEN_URL, jti="j-1", lifetime=200)})


@pytest.mark.parametrize("problem,change", [
    ("aud", dict(audience="http://other.test/token")),
    ("expired", dict(lifetime=-300)),
    ("ahead", dict(lifetime=3600)),
    ("sub", dict(sub="someone-else")),
])
def test_bad_assertions(authority, problem, change):
    private = register_backend(authority.store)
    change = dict(change)
    audience = change.pop("audience", TOKEN_URL)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(private, audience, **change)}
    with pytest.raises(OAuthError) as raised:
        token(authority, form)
    assert raised.value.error == "invalid_client"


def test_assertion_signed_by_another_key(authority):
    register_backend(authority.store)
    stranger, _public = admin.generate_client_key("ES384")
    with pytest.raises(OAuthError, match="signature"):
        token(authority, {"grant_type": "client_credentials", "scope": "system/*.rs",
                          **credentials(stranger, TOKEN_URL)})


def test_hmac_assertions_are_refused(authority):
    import hashlib
    import hmac
    import base64
    import json

    register_backend(authority.store)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256"}).encode())
    body = b64(json.dumps({"iss": "his", "sub": "his", "aud": TOKEN_URL, "exp": 9999999999, "jti": "h"}).encode())
    signature = b64(hmac.new(b"secret", f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(OAuthError):
        token(authority, {"grant_type": "client_credentials", "scope": "system/*.rs",
                          "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                          "client_assertion": f"{head}.{body}.{signature}"})


def test_backend_scopes_are_limited_to_registration(authority):
    private = register_backend(authority.store, scopes="system/Observation.rs")
    with pytest.raises(OAuthError, match="none of the requested"):
        token(authority, {"grant_type": "client_credentials", "scope": "system/Patient.rs",
                          **credentials(private, TOKEN_URL)})


def test_public_clients_cannot_use_client_credentials(authority):
    with pytest.raises(OAuthError):
        token(authority, {"grant_type": "client_credentials", "client_id": "app", "scope": "system/*.rs"})


def test_unknown_grant(authority):
    with pytest.raises(OAuthError, match="grant_type"):
        token(authority, {"grant_type": "password"})
