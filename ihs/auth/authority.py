"""The authorization server of one deployment: who it is, its key, and the tokens it issues and checks.

`Authority(store, base_url)` is built once per process (the API keeps it on `app.state`, see
`ihs.api.operations.smart.authority_of`). `authority.authenticate(headers)` turns a request's
headers into a Principal or raises Unauthorized (401, with the WWW-Authenticate header to send).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from functools import lru_cache

from joserfc.errors import JoseError

from ihs.auth.break_glass import HEADER as BREAK_GLASS_HEADER
from ihs.auth.config import PolicyConfig, TokenConfig
from ihs.auth.errors import Unauthorized
from ihs.auth.keys import SigningKey, load_signing_key
from ihs.auth.principal import BreakGlass, Principal
from ihs.auth.ratelimit import LoginLimits
from ihs.auth.schema import create_auth_schema
from ihs.auth.scopes import parse_scopes
from ihs.auth.tokens import RevocationList, new_jti

LEEWAY = 30  # seconds of clock skew tolerated on exp
_scopes = lru_cache(maxsize=4096)(parse_scopes)


class Authority:
    """Issuer `{base}/auth`, audience `{base}` (the FHIR base URL clients see)."""

    def __init__(self, store, base_url: str, *, key: SigningKey | None = None, tokens: TokenConfig | None = None,
                 limits: LoginLimits | None = None, policy: PolicyConfig | None = None, create_schema: bool = True):
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.issuer = f"{self.base_url}/auth"
        self.token_endpoint = f"{self.base_url}/auth/token"
        if create_schema:
            create_auth_schema(store.engine)
        self.key = key or load_signing_key(store.engine)
        self.tokens = tokens or TokenConfig()
        self.limits = limits or LoginLimits()
        self.policy = policy or PolicyConfig()
        self.revocations = RevocationList(store.engine)
        self._verified: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    # -- issuing -------------------------------------------------------------------------------

    def access_token(self, *, subject: str, client_id: str, scope: str, roles, organizations=(),
                     fhir_user: str | None = None, patient: str | None = None,
                     break_glass: str | None = None, lifetime: int | None = None) -> tuple[str, dict]:
        """A signed access token and its claims."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.base_url, "sub": subject, "client_id": client_id, "scope": scope,
                  "iat": now, "exp": now + (lifetime or self.tokens.access_seconds), "jti": new_jti(),
                  "ihs_roles": sorted(roles)}
        if organizations:
            claims["ihs_orgs"] = list(organizations)
        if fhir_user:
            claims["fhirUser"] = fhir_user
        if patient:
            claims["patient"] = patient
        if break_glass:
            claims["ihs_btg"] = break_glass
        return self.key.sign(claims), claims

    def id_token(self, *, subject: str, client_id: str, fhir_user: str | None, nonce: str | None,
                 display: str | None) -> str:
        """An OpenID Connect id token (openid fhirUser)."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": client_id, "iat": now,
                  "exp": now + self.tokens.access_seconds}
        if fhir_user:
            claims["fhirUser"] = f"{self.base_url}/{fhir_user}"
        if nonce:
            claims["nonce"] = nonce
        if display:
            claims["name"] = display
        return self.key.sign(claims)

    # -- checking ------------------------------------------------------------------------------

    def verify(self, token: str) -> dict:
        """The claims of a valid access token: signature, expiry, issuer, audience, not revoked."""
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = self.key.decode(token).claims
            except (JoseError, ValueError) as exc:
                raise Unauthorized(f"the access token is not valid ({getattr(exc, 'error', exc)})") from None
            if claims.get("iss") != self.issuer:
                raise Unauthorized(f"the access token was not issued by {self.issuer}")
            audience = claims.get("aud")
            if self.base_url not in (audience if isinstance(audience, list) else [audience]):
                raise Unauthorized(f"the access token is for another audience ({audience}), not {self.base_url}")
            self._remember(token, claims)
        if not isinstance(claims.get("exp"), int) or claims["exp"] + LEEWAY < time.time():
            raise Unauthorized("the access token has expired")
        if self.revocations.is_revoked(claims.get("jti", "")):
            raise Unauthorized("the access token has been revoked")
        return claims

    def _remember(self, token: str, claims: dict) -> None:
        # signature checks cost more than the rest of a cached read; remember recent good tokens
        with self._lock:
            self._verified[token] = claims
            if len(self._verified) > 10_000:
                self._verified.popitem(last=False)

    def authenticate(self, headers) -> Principal:
        """The Principal of a request (`Authorization: Bearer <token>`), or Unauthorized."""
        authorization = headers.get("authorization") or headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            raise Unauthorized("no access token: send Authorization: Bearer <token>", error="")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'", error="invalid_request")
        principal = principal_from_claims(self.verify(token.strip()))
        reason = headers.get(BREAK_GLASS_HEADER.lower()) or headers.get(BREAK_GLASS_HEADER)
        if reason and reason.strip():
            principal = principal.claiming_break_glass(reason.strip()[:500], "header")
        return principal


def principal_from_claims(claims: dict) -> Principal:
    """The Principal an access token's claims describe."""
    btg = claims.get("ihs_btg")
    return Principal(
        subject=claims["sub"],
        roles=frozenset(claims.get("ihs_roles", [])),
        scopes=_scopes(claims.get("scope", "")),
        client_id=claims.get("client_id"),
        fhir_user=claims.get("fhirUser"),
        organizations=tuple(claims.get("ihs_orgs", [])),
        patient=claims.get("patient"),
        break_glass=BreakGlass(btg, "token") if btg else None,
        token_id=claims.get("jti"),
        expires_at=claims.get("exp"),
    )


def authenticate(headers, authority: Authority) -> Principal:
    """The Principal of a request's headers under `authority` (Unauthorized when there is none)."""
    return authority.authenticate(headers)
