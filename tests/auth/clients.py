"""Test helpers: registered clients, PKCE pairs and signed client assertions."""
from __future__ import annotations

import time
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from ihs.auth import admin
from ihs.auth.client_assertion import ASSERTION_TYPE
from ihs.auth.tokens import pkce_challenge

REDIRECT = "http://app.test/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def register_backend(store, client_id="his", algorithm="ES384", scopes="system/*.rs", **kwargs) -> dict:
    """Register a backend client; returns its private JWK."""
    private, public = admin.generate_client_key(algorithm)
    admin.add_client(store, client_id, kind="backend", scopes=scopes, jwks=public, **kwargs)
    return private


def register_app(store, client_id="app", scopes="patient/*.cruds user/*.cruds launch/patient openid fhirUser "
                                                 "offline_access"):
    admin.add_client(store, client_id, kind="public", scopes=scopes, redirect_uris=(REDIRECT,))


def assertion(private: dict, audience: str, *, client_id="his", jti: str | None = None, lifetime: int = 120,
              **overrides) -> str:
    """A client assertion JWT signed with `private`."""
    key = (ECKey if private["kty"] == "EC" else RSAKey).import_key(private)
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + lifetime,
              "jti": jti or uuid.uuid4().hex}
    claims.update(overrides)
    return jwt.encode({"alg": private["alg"], "kid": private["kid"], "typ": "JWT"}, claims, key,
                      algorithms=[private["alg"]])


def credentials(private: dict, audience: str, **kwargs) -> dict:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(private, audience, **kwargs)}


def authorization_params(scope: str, **extra) -> dict:
    params = {"response_type": "code", "client_id": "app", "redirect_uri": REDIRECT, "scope": scope,
              "state": "s-1", "code_challenge": pkce_challenge(VERIFIER), "code_challenge_method": "S256"}
    params.update(extra)
    return params
