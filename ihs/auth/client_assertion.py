"""Client authentication with private_key_jwt (SMART Backend Services, RFC 7523).

The client signs a JWT with its own key (RS384 or ES384) whose `iss` and `sub` are its client id,
`aud` the token endpoint's URL, `exp` at most five minutes ahead and `jti` a value never used
before: a replayed assertion (same client, same jti) is rejected, for as long as it would be valid.
"""
from __future__ import annotations

import base64
import json
import time

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from ihs.auth.accounts import Client, get_client
from ihs.auth.errors import OAuthError
from ihs.auth.keys import client_key_set
from ihs.auth.schema import used_assertions

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
LEEWAY = 30  # seconds of clock skew tolerated


def _unverified_claims(assertion: str) -> dict:
    """The payload before verification: only to learn which client's keys verify it."""
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise OAuthError("invalid_client", "client_assertion is not a JWT", 401) from None
    if not isinstance(claims, dict):
        raise OAuthError("invalid_client", "client_assertion is not a JWT", 401)
    return claims


def authenticate_client(conn, assertion_type: str | None, assertion: str | None, endpoints: str | tuple[str, ...],
                        *, max_lifetime: int = 300) -> Client:
    """The backend client a client assertion proves, after every check (OAuthError invalid_client if not).

    `endpoints`: the URL(s) the assertion's `aud` may name (the token endpoint, or the endpoint called).
    """
    endpoints = (endpoints,) if isinstance(endpoints, str) else endpoints
    if assertion_type != ASSERTION_TYPE or not assertion:
        raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE} with a client_assertion",
                         401)
    client_id = _unverified_claims(assertion).get("iss")
    client = get_client(conn, client_id) if isinstance(client_id, str) else None
    if client is None or not client.active or client.kind != "backend" or not client.jwks:
        raise OAuthError("invalid_client", f"unknown or inactive backend client {client_id!r}", 401)
    try:
        token = jwt.decode(assertion, client_key_set(client.jwks), algorithms=list(ALGORITHMS))
    except JoseError as exc:
        raise OAuthError("invalid_client", f"the client assertion's signature does not verify ({exc.error})",
                         401) from None
    claims = token.claims
    now = int(time.time())
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("sub") != client.client_id:
        raise OAuthError("invalid_client", "the client assertion's sub must be the client id", 401)
    if not set(endpoints) & set(audiences):
        raise OAuthError("invalid_client", f"the client assertion's aud must be {endpoints[0]}", 401)
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp < now - LEEWAY:
        raise OAuthError("invalid_client", "the client assertion has expired", 401)
    if exp > now + max_lifetime + LEEWAY:
        raise OAuthError("invalid_client", f"the client assertion's exp is more than {max_lifetime} s ahead", 401)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise OAuthError("invalid_client", "the client assertion has no jti", 401)
    _remember(conn, client.client_id, jti, exp + LEEWAY)
    return client


def _remember(conn, client_id: str, jti: str, expires_at: int) -> None:
    """Record the assertion's jti; a second use is a replay."""
    conn.execute(delete(used_assertions).where(used_assertions.c.expires_at < int(time.time())))
    try:
        with conn.begin_nested():
            conn.execute(insert(used_assertions).values(client_id=client_id, jti=jti[:256], expires_at=expires_at))
    except IntegrityError:
        raise OAuthError("invalid_client", "this client assertion (jti) has been used already: replay rejected",
                         401) from None
