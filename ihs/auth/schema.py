"""The security data of the authorization server, in its own tables beside the store's.

Clinical facts about people (Practitioner, Patient, PractitionerRole, Consent, Device) are FHIR
resources in the store; what proves who someone is (password hashes, client public keys, refresh
tokens, revocations, client-assertion ids already used, failed logins, break-the-glass grants) is
security data and lives here, in the same database (`store.engine`). docs/security.md describes
each table.
"""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import (BigInteger, Boolean, Column, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table,
                        Text)
from sqlalchemy.engine import Engine

metadata = MetaData()

# Times are integer seconds since the epoch, UTC (token lifetimes are counted in seconds).
Seconds = BigInteger

users = Table(
    "auth_users", metadata,
    Column("username", String(128), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string format
    Column("fhir_user", String(200)),  # Practitioner/x, Patient/x, RelatedPerson/x
    Column("roles", Text, nullable=False),  # space-separated: patient practitioner nurse ...
    Column("organizations", Text, nullable=False, default=""),  # space-separated Organization/x
    Column("display", Text),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Seconds, nullable=False),
)

clients = Table(
    "auth_clients", metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # public (PKCE) | backend (private_key_jwt)
    Column("redirect_uris", Text, nullable=False, default=""),  # space-separated
    Column("scopes", Text, nullable=False),  # the most this client may be granted, space-separated
    Column("jwks", Text),  # the client's public keys (JWKS JSON) for private_key_jwt
    Column("roles", Text, nullable=False, default=""),  # backend clients: system | device | insurer | ...
    Column("organizations", Text, nullable=False, default=""),
    Column("fhir_user", String(200)),  # backend clients: Device/x, Organization/x
    Column("patient", String(64)),  # a device's bound patient id
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Seconds, nullable=False),
)

codes = Table(
    "auth_codes", metadata,
    Column("code_hash", String(64), primary_key=True),  # SHA-256 of the code: a database leak yields no codes
    Column("client_id", String(128), nullable=False),
    Column("username", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("patient", String(64)),
    Column("nonce", Text),
    Column("break_glass", Text),
    Column("expires_at", Seconds, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)

refresh_tokens = Table(
    "auth_refresh_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("username", String(128), nullable=False),
    Column("scope", Text, nullable=False),
    Column("patient", String(64)),
    Column("issued_at", Seconds, nullable=False),
    Column("expires_at", Seconds, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("auth_refresh_tokens_user", "username"),
)

revoked_tokens = Table(
    "auth_revoked_tokens", metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", Seconds, nullable=False),  # the token's own expiry: after it the row can go
    Index("auth_revoked_tokens_expiry", "expires_at"),
)

used_assertions = Table(
    "auth_used_assertions", metadata,
    Column("client_id", String(128), nullable=False),
    Column("jti", String(256), nullable=False),
    Column("expires_at", Seconds, nullable=False),
    PrimaryKeyConstraint("client_id", "jti", name="auth_used_assertions_pk"),
)

login_attempts = Table(
    "auth_login_attempts", metadata,
    Column("key", String(300), primary_key=True),  # "account:<username>" | "address:<ip>"
    Column("window_start", Seconds, nullable=False),
    Column("failures", Integer, nullable=False),
)

signing_keys = Table(
    "auth_signing_keys", metadata,
    Column("name", String(32), primary_key=True),  # "current"
    Column("private_jwk", Text, nullable=False),
    Column("created_at", Seconds, nullable=False),
)

break_glass = Table(
    "auth_break_glass", metadata,
    Column("id", String(64), primary_key=True),
    Column("subject", String(128), nullable=False),  # the account that broke the glass
    Column("fhir_user", String(200)),
    Column("patient", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("granted_at", Seconds, nullable=False),
    Column("expires_at", Seconds, nullable=False),
    Index("auth_break_glass_subject", "subject", "patient", "expires_at"),
)


def create_auth_schema(engine: Engine) -> None:
    """Create the authorization server's tables and the policy's change counter (idempotent)."""
    from ihs.auth import policy_version

    metadata.create_all(engine)
    policy_version.install(engine)


def drop_auth_schema(engine: Engine) -> None:
    metadata.drop_all(engine)


@contextmanager
def write_transaction(engine: Engine):
    """A connection in a write transaction (on SQLite it takes the write lock up front: BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        conn = conn.execution_options(ihs_write=True)
        with conn.begin():
            yield conn
