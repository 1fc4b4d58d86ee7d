"""Administration on the local database: the functions behind `ihs user add`, `ihs client add` and `ihs token`.

Whoever can write the database can already do anything, so these need no token: they are for
operators and scripts on the server itself.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from joserfc.jwk import ECKey, RSAKey

from ihs.auth import accounts
from ihs.auth.accounts import Client, User
from ihs.auth.authority import Authority
from ihs.auth.schema import create_auth_schema, write_transaction
from ihs.auth.scopes import parse_scopes
from ihs.auth.server import issue_client_token
from ihs.fhir.errors import FhirError

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def new_password() -> str:
    """A random password for an account created without one (printed once)."""
    return secrets.token_urlsafe(12)


def add_user(store, username: str, password: str | None = None, *, roles, fhir_user: str | None = None,
             organizations=(), display: str | None = None) -> tuple[User, str]:
    """Create an account; returns it and its password (generated when not given)."""
    create_auth_schema(store.engine)
    password = password or new_password()
    with write_transaction(store.engine) as conn:
        user = accounts.add_user(conn, username, password, roles=roles, fhir_user=fhir_user,
                                 organizations=organizations, display=display)
    return user, password


def generate_client_key(algorithm: str = "ES384") -> tuple[dict, dict]:
    """A new key pair for a backend client: (private JWK to give the client, public JWKS to register)."""
    if algorithm == "ES384":
        key = ECKey.generate_key("P-384", auto_kid=True)
    elif algorithm == "RS384":
        key = RSAKey.generate_key(2048, auto_kid=True)
    else:
        raise FhirError(f"backend client keys are ES384 or RS384, not {algorithm}")
    private = {**key.as_dict(private=True), "alg": algorithm}
    public = {**key.as_dict(private=False), "alg": algorithm, "use": "sig"}
    return private, {"keys": [public]}


def read_jwks(value: str | Path | dict | None):
    """A JWKS given as a dict, JSON text or the path of a JSON file."""
    if value is None or isinstance(value, dict):
        return value
    text = str(value)
    if not text.lstrip().startswith("{"):
        text = Path(text).read_text()
    return json.loads(text)


def add_client(store, client_id: str, *, name: str | None = None, kind: str = "backend", scopes: str,
               redirect_uris=(), jwks=None, roles=(), organizations=(), fhir_user: str | None = None,
               patient: str | None = None) -> Client:
    """Register a client (see ihs.auth.accounts.add_client); `jwks` may be a path to a JWKS file."""
    create_auth_schema(store.engine)
    with write_transaction(store.engine) as conn:
        return accounts.add_client(conn, client_id, name or client_id, kind=kind, scopes=scopes,
                                   redirect_uris=tuple(redirect_uris), jwks=read_jwks(jwks), roles=tuple(roles),
                                   organizations=tuple(organizations), fhir_user=fhir_user, patient=patient)


def issue_token(store, client_id: str, scope: str | None = None, *, base_url: str | None = None,
                lifetime: int | None = None) -> dict:
    """`ihs token`: an access token for a registered backend client, without its key (local operator).

    `scope` defaults to everything the client is registered for; it may only narrow that.
    """
    base_url = base_url or os.environ.get("IHS_BASE_URL") or DEFAULT_BASE_URL
    authority = Authority(store, base_url)
    with store.engine.connect() as conn:
        client = accounts.get_client(conn, client_id)
    if client is None or not client.active:
        raise FhirError(f"no active client {client_id!r}; register it with `ihs client add`", 404, code="not-found")
    allowed = parse_scopes(client.scopes)
    requested = parse_scopes(scope or client.scopes)
    wider = [s.text for s in requested.clinical if not any(s.within(a) for a in allowed.clinical)]
    if wider:
        raise FhirError(f"client {client_id!r} is not allowed {' '.join(wider)} (registered: {client.scopes})",
                        403, code="forbidden")
    return issue_client_token(authority, client, requested.text, lifetime)
