"""Authenticating CDS clients by the signed JWT the CDS Hooks specification prescribes.

Each call carries `Authorization: Bearer <JWT>` signed with the client's private key. The service
trusts only clients registered in the file IHS_CDS_CLIENTS names:

    {"clients": [{"iss": "https://ehr.example.org", "jwks": {"keys": [...]},
                  "jku": ["https://ehr.example.org/jwks.json"]}]}

and checks: an asymmetric `alg` (never `none` or HMAC), `typ` JWT, a `kid` found in the client's
registered JWK Set, a `jku` (if given) that the client registered, `iss` registered, `aud` the URL
of the endpoint called, `exp`, `iat` and a `jti` not seen before. Keys are only ever taken from
the registration, never fetched from a URL in the token. Without IHS_CDS_CLIENTS the endpoints are
open (development).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jwt
import orjson

from ihs.fhir.errors import FhirError

ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
LEEWAY = 30  # seconds of clock skew tolerated on exp and iat


@dataclass(frozen=True)
class Client:
    iss: str
    jwks: dict
    jku: tuple[str, ...] = ()


class Unauthorized(FhirError):
    def __init__(self, message: str):
        super().__init__(message, 401, code="login")


@lru_cache(maxsize=4)
def _registry(path: str) -> dict[str, Client]:
    data = orjson.loads(Path(path).read_bytes())
    return {c["iss"]: Client(c["iss"], c["jwks"], tuple(c.get("jku", []))) for c in data.get("clients", [])}


def registry() -> dict[str, Client] | None:
    """The registered CDS clients by issuer, or None when client authentication is off."""
    path = os.environ.get("IHS_CDS_CLIENTS")
    return _registry(path) if path else None


class _Replays:
    """jti values seen, kept until their token expires (a replayed token is refused)."""

    def __init__(self):
        self.seen: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()

    def first_use(self, iss: str, jti: str, exp: float) -> bool:
        now = time.time()
        with self.lock:
            for key in [k for k, until in self.seen.items() if until < now - LEEWAY]:
                del self.seen[key]
            if (iss, jti) in self.seen:
                return False
            self.seen[(iss, jti)] = exp
            return True


REPLAYS = _Replays()


def authenticate(authorization: str | None, audiences: list[str]) -> Client | None:
    """The client a request's Authorization header proves, or None when authentication is off."""
    clients = registry()
    if clients is None:
        return None
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("CDS clients must send 'Authorization: Bearer <JWT>' signed with their registered key")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the bearer token is not a JWT: {exc}") from exc
    alg = header.get("alg")
    if alg not in ASYMMETRIC:
        raise Unauthorized(f"JWT alg '{alg}' is not allowed: sign with an asymmetric algorithm (e.g. ES384, RS384)")
    if header.get("typ") != "JWT":
        raise Unauthorized("the JWT header 'typ' must be 'JWT'")
    client = clients.get(claims.get("iss"))
    if client is None:
        raise Unauthorized(f"issuer {claims.get('iss')!r} is not a registered CDS client")
    if header.get("jku") and header["jku"] not in client.jku:
        raise Unauthorized(f"jku {header['jku']!r} is not registered for {client.iss}")
    key = next((k for k in client.jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if not header.get("kid") or key is None:
        raise Unauthorized(f"kid {header.get('kid')!r} is not in the JWK Set registered for {client.iss}")
    try:
        verified = jwt.decode(token, jwt.PyJWK(key, algorithm=alg).key, algorithms=[alg], audience=audiences,
                              issuer=client.iss, leeway=LEEWAY,
                              options={"require": ["iss", "aud", "exp", "iat", "jti"]})
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the JWT was refused: {exc}") from exc
    if not REPLAYS.first_use(client.iss, str(verified["jti"]), float(verified["exp"])):
        raise Unauthorized("the JWT's jti was already used; sign a new token for every call")
    return client
