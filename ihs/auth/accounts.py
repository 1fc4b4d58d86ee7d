"""User accounts and registered clients (the auth_users and auth_clients tables)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ihs.auth.keys import client_key_set
from ihs.auth.passwords import hash_password
from ihs.auth.principal import ROLES
from ihs.auth.scopes import parse_scopes
from ihs.auth.schema import clients, users
from ihs.fhir.errors import Conflict, FhirError

CLIENT_KINDS = ("public", "backend")


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    roles: tuple[str, ...]
    organizations: tuple[str, ...]
    fhir_user: str | None
    display: str | None
    active: bool


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    kind: str
    redirect_uris: tuple[str, ...]
    scopes: str
    jwks: str | None
    roles: tuple[str, ...]
    organizations: tuple[str, ...]
    fhir_user: str | None
    patient: str | None
    active: bool


def _words(value: str | None) -> tuple[str, ...]:
    return tuple((value or "").split())


def _check_roles(roles) -> None:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise FhirError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")


def _check_reference(value: str | None, types: tuple[str, ...], what: str) -> None:
    if value and (value.split("/", 1)[0] not in types or "/" not in value):
        raise FhirError(f"{what} is a reference to one of {', '.join(types)} (e.g. {types[0]}/123), not {value!r}")


def add_user(conn, username: str, password: str, *, roles, fhir_user: str | None = None,
             organizations=(), display: str | None = None) -> User:
    """Create an account; its password is stored as an Argon2id hash."""
    roles = tuple(roles)
    _check_roles(roles)
    _check_reference(fhir_user, ("Practitioner", "Patient", "RelatedPerson"), "fhirUser")
    for org in organizations:
        _check_reference(org, ("Organization",), "an organization")
    row = dict(username=username, password_hash=hash_password(password), fhir_user=fhir_user,
               roles=" ".join(roles), organizations=" ".join(organizations), display=display, active=True,
               created_at=int(time.time()))
    try:
        with conn.begin_nested():
            conn.execute(insert(users).values(**row))
    except IntegrityError:
        raise Conflict(f"the account {username!r} exists already") from None
    return get_user(conn, username)


def get_user(conn, username: str) -> User | None:
    row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        return None
    return User(row.username, row.password_hash, _words(row.roles), _words(row.organizations), row.fhir_user,
                row.display, row.active)


def set_password(conn, username: str, password: str) -> None:
    conn.execute(update(users).where(users.c.username == username).values(password_hash=hash_password(password)))


def set_active(conn, username: str, active: bool) -> None:
    conn.execute(update(users).where(users.c.username == username).values(active=active))


def add_client(conn, client_id: str, name: str, *, kind: str, scopes: str, redirect_uris=(), jwks=None,
               roles=(), organizations=(), fhir_user: str | None = None, patient: str | None = None) -> Client:
    """Register a client: `public` (an app using the authorization code flow with PKCE) or `backend`
    (a system using client_credentials, authenticated by a JWT signed with a key of its `jwks`)."""
    if kind not in CLIENT_KINDS:
        raise FhirError(f"a client's kind is one of {', '.join(CLIENT_KINDS)}, not {kind!r}")
    parse_scopes(scopes)
    roles = tuple(roles) or (("system",) if kind == "backend" else ())
    _check_roles(roles)
    if kind == "public" and not redirect_uris:
        raise FhirError("a public client needs at least one redirect URI")
    if kind == "backend":
        if not jwks:
            raise FhirError("a backend client needs its public keys (a JWKS) for private_key_jwt")
        client_key_set(jwks)
    _check_reference(fhir_user, ("Device", "Organization", "Practitioner"), "a client's fhirUser")
    row = dict(client_id=client_id, name=name, kind=kind, redirect_uris=" ".join(redirect_uris), scopes=scopes,
               jwks=json.dumps(jwks) if isinstance(jwks, dict) else jwks, roles=" ".join(roles),
               organizations=" ".join(organizations), fhir_user=fhir_user, patient=patient, active=True,
               created_at=int(time.time()))
    try:
        with conn.begin_nested():
            conn.execute(insert(clients).values(**row))
    except IntegrityError:
        raise Conflict(f"the client {client_id!r} is registered already") from None
    return get_client(conn, client_id)


def get_client(conn, client_id: str) -> Client | None:
    row = conn.execute(select(clients).where(clients.c.client_id == client_id)).first()
    if row is None:
        return None
    return Client(row.client_id, row.name, row.kind, _words(row.redirect_uris), row.scopes, row.jwks,
                  _words(row.roles), _words(row.organizations), row.fhir_user, row.patient, row.active)
