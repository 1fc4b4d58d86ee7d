"""Access tokens: issued, checked (signature, expiry, audience, revocation), turned into a Principal."""
import base64
import os
import stat
import time

import orjson
import pytest

from ihs.auth.authority import Authority
from ihs.auth.errors import Unauthorized
from ihs.auth.keys import SigningKey, _new_key, load_signing_key

BASE = "http://ihs.test/fhir"


@pytest.fixture
def authority(sqlite_store, signing_key):
    return Authority(sqlite_store, BASE, key=signing_key)


def _token(authority, **kwargs):
    spec = dict(subject="dr", client_id="app", scope="user/*.rs openid", roles={"practitioner"},
                organizations=("Organization/hA",), fhir_user="Practitioner/drA")
    spec.update(kwargs)
    return authority.access_token(**spec)[0]


def _bearer(token):
    return {"authorization": f"Bearer {token}"}


def test_a_valid_token_gives_its_principal(authority):
    principal = authority.authenticate(_bearer(_token(authority, patient="p1")))
    assert principal.subject == "dr" and principal.client_id == "app"
    assert principal.roles == {"practitioner"} and principal.organizations == ("Organization/hA",)
    assert principal.fhir_user == "Practitioner/drA" and principal.patient == "p1"
    assert [s.text for s in principal.scopes.clinical] == ["user/*.rs"] and principal.scopes.has("openid")
    assert principal.break_glass is None


def test_missing_token(authority):
    with pytest.raises(Unauthorized) as raised:
        authority.authenticate({})
    assert raised.value.status == 401
    assert raised.value.headers["WWW-Authenticate"] == 'Bearer realm="ihs"'
    assert raised.value.outcome()["issue"][0]["code"] == "login"


def test_not_a_bearer_token(authority):
    with pytest.raises(Unauthorized, match="Bearer"):
        authority.authenticate({"authorization": "Basic dXNlcjpwYXNz"})


def test_expired_token(authority):
    token = _token(authority, lifetime=-120)
    with pytest.raises(Unauthorized, match="expired") as raised:
        authority.authenticate(_bearer(token))
    assert 'error="invalid_token"' in raised.value.headers["WWW-Authenticate"]


def test_tampered_token(authority):
    header, payload, signature = _token(authority).split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["ihs_roles"] = ["system"]
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(Unauthorized, match="not valid"):
        authority.authenticate(_bearer(f"{header}.{forged}.{signature}"))


def test_token_signed_by_another_key(sqlite_store, authority):
    other = Authority(sqlite_store, BASE, key=SigningKey(_new_key()))
    with pytest.raises(Unauthorized, match="not valid"):
        authority.authenticate(_bearer(_token(other)))


def test_wrong_audience(sqlite_store, authority):
    elsewhere = Authority(sqlite_store, "http://other.test/fhir", key=authority.key)
    with pytest.raises(Unauthorized, match="issued by|audience"):
        authority.authenticate(_bearer(_token(elsewhere)))


def test_garbage(authority):
    with pytest.raises(Unauthorized):
        authority.authenticate(_bearer("not.a.jwt"))


def test_revoked_token(authority):
    token = _token(authority)
    authority.authenticate(_bearer(token))
    claims = authority.verify(token)
    with authority.store.engine.begin() as conn:
        authority.revocations.revoke(conn, claims["jti"], claims["exp"])
    with pytest.raises(Unauthorized, match="revoked"):
        authority.authenticate(_bearer(token))


def test_revocation_reaches_other_workers(secure_store, signing_key):
    authority = Authority(secure_store, BASE, key=signing_key)
    token = _token(authority)
    other_worker = Authority(secure_store, BASE, key=authority.key)
    other_worker.revocations.refresh_seconds = 0
    other_worker.authenticate(_bearer(token))
    claims = authority.verify(token)
    with authority.store.engine.begin() as conn:
        authority.revocations.revoke(conn, claims["jti"], claims["exp"])
    with pytest.raises(Unauthorized, match="revoked"):
        other_worker.authenticate(_bearer(token))


def test_break_glass_header(authority):
    principal = authority.authenticate({**_bearer(_token(authority)), "x-break-glass": "cardiac arrest in ward 3"})
    assert principal.break_glass.reason == "cardiac arrest in ward 3"
    assert principal.break_glass.source == "header"


def test_break_glass_token_claim(authority):
    principal = authority.authenticate(_bearer(_token(authority, break_glass="mass casualty incident")))
    assert principal.break_glass.reason == "mass casualty incident" and principal.break_glass.source == "token"


def test_id_token_carries_fhir_user(authority):
    claims = authority.key.decode(authority.id_token(subject="dr", client_id="app", fhir_user="Practitioner/drA",
                                                     nonce="n-1", display="Dr A")).claims
    assert claims["fhirUser"] == f"{BASE}/Practitioner/drA" and claims["aud"] == "app" and claims["nonce"] == "n-1"


def test_signing_key_file_is_created_once_owner_only(tmp_path, sqlite_store):
    path = tmp_path / "keys" / "signing-key.jwk"
    first = load_signing_key(sqlite_store.engine, str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_signing_key(sqlite_store.engine, str(path))
    assert again.kid == first.kid


def test_signing_key_file_with_loose_permissions_is_tightened(tmp_path, sqlite_store):
    path = tmp_path / "signing-key.jwk"
    load_signing_key(sqlite_store.engine, str(path))
    os.chmod(path, 0o644)
    load_signing_key(sqlite_store.engine, str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_signing_key_in_the_database_is_shared(secure_store):
    first = load_signing_key(secure_store.engine, "database")
    assert load_signing_key(secure_store.engine, "database").kid == first.kid


def test_default_key_location_is_beside_the_sqlite_file():
    from ihs.auth.keys import default_location

    assert default_location("sqlite:////srv/ihs-data/ihs.db") == "/srv/ihs-data/keys/signing-key.jwk"
    assert default_location("postgresql+psycopg://db/ihs") == "database"


def test_token_lifetime(authority):
    token, claims = authority.access_token(subject="s", client_id="c", scope="system/*.rs", roles={"system"})
    assert claims["exp"] - claims["iat"] == authority.tokens.access_seconds
    assert claims["aud"] == BASE and claims["iss"] == f"{BASE}/auth"
    assert abs(claims["iat"] - time.time()) < 5
