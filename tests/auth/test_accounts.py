"""Accounts, password hashing and login rate limiting."""
import time

import pytest

from ihs.auth import admin, ratelimit
from ihs.auth.accounts import get_user
from ihs.auth.authority import Authority
from ihs.auth.errors import OAuthError, TooManyAttempts
from ihs.auth.passwords import hash_password, verify_password
from ihs.auth.ratelimit import LoginLimits
from ihs.auth.schema import write_transaction
from ihs.auth.server import authorization_request, login
from ihs.fhir.errors import Conflict, FhirError
from tests.auth.clients import authorization_params, register_app

LIMITS = LoginLimits(account_failures=3, address_failures=5, window=600)


def test_passwords_are_argon2id_hashes():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "Correct horse battery")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "anything")


def test_short_passwords_are_refused():
    with pytest.raises(ValueError):
        hash_password("short")


def test_add_user_and_duplicates(secure_store):
    user, password = admin.add_user(secure_store, "dr.li", roles=("practitioner",), fhir_user="Practitioner/drA")
    assert len(password) >= 12 and user.roles == ("practitioner",)
    with secure_store.engine.connect() as conn:
        assert verify_password(get_user(conn, "dr.li").password_hash, password)
    with pytest.raises(Conflict):
        admin.add_user(secure_store, "dr.li", "another password", roles=("practitioner",))


@pytest.mark.parametrize("kwargs", [dict(roles=("surgeon",)), dict(roles=("patient",), fhir_user="Patient"),
                                    dict(roles=("insurer",), organizations=("Payer/1",))])
def test_bad_accounts_are_refused(sqlite_store, kwargs):
    with pytest.raises(FhirError):
        admin.add_user(sqlite_store, "x", "long enough password", **kwargs)


def test_backend_clients_need_keys(sqlite_store):
    with pytest.raises(FhirError, match="JWKS"):
        admin.add_client(sqlite_store, "his", kind="backend", scopes="system/*.rs")
    with pytest.raises(FhirError, match="redirect"):
        admin.add_client(sqlite_store, "app", kind="public", scopes="patient/*.rs")


@pytest.fixture
def login_as(secure_store, signing_key):
    register_app(secure_store)
    admin.add_user(secure_store, "alice", "correct horse battery", roles=("patient",), fhir_user="Patient/p1")
    admin.add_user(secure_store, "bob", "another good password", roles=("patient",), fhir_user="Patient/p2")
    authority = Authority(secure_store, "http://ihs.test", key=signing_key, limits=LIMITS)
    request = authorization_request(authority, authorization_params("patient/*.rs"))

    def attempt(username, password, address="10.0.0.1"):
        return login(authority, request, username, password, address)

    return attempt


def test_account_is_locked_after_repeated_failures(login_as):
    for _ in range(3):
        with pytest.raises(OAuthError, match="wrong"):
            login_as("alice", "guess")
    with pytest.raises(TooManyAttempts) as raised:
        login_as("alice", "correct horse battery", address="10.0.0.2")  # even the right password, from elsewhere
    assert raised.value.status == 429 and 0 < raised.value.retry_after <= 600


def test_address_is_locked_after_guessing_many_accounts(login_as):
    for i in range(5):
        with pytest.raises(OAuthError):
            login_as(f"user{i}", "guess")
    with pytest.raises(TooManyAttempts):
        login_as("bob", "another good password")
    login_as("bob", "another good password", address="10.0.0.9")


def test_success_clears_the_account_count(login_as):
    for _ in range(2):
        with pytest.raises(OAuthError):
            login_as("alice", "guess")
    login_as("alice", "correct horse battery")
    for _ in range(2):
        with pytest.raises(OAuthError):
            login_as("alice", "guess", address="10.0.0.3")
    login_as("alice", "correct horse battery", address="10.0.0.4")


def test_lock_ends_with_the_window(secure_store):
    from ihs.auth.schema import create_auth_schema

    create_auth_schema(secure_store.engine)
    start = int(time.time())
    with write_transaction(secure_store.engine) as conn:
        for _ in range(3):
            ratelimit.record_failure(conn, "carol", None, LIMITS, now=start)
        with pytest.raises(TooManyAttempts):
            ratelimit.check(conn, "carol", None, LIMITS, now=start + 10)
        ratelimit.check(conn, "carol", None, LIMITS, now=start + 601)
        ratelimit.record_failure(conn, "carol", None, LIMITS, now=start + 601)
        ratelimit.check(conn, "carol", None, LIMITS, now=start + 602)  # a new window: one failure so far


def test_inactive_accounts_cannot_log_in(login_as, secure_store):
    from ihs.auth.accounts import set_active

    with write_transaction(secure_store.engine) as conn:
        set_active(conn, "alice", False)
    with pytest.raises(OAuthError, match="wrong"):
        login_as("alice", "correct horse battery")
