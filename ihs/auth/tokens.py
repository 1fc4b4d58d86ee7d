"""Access tokens (signed JWTs), refresh tokens, authorization codes and revocation.

An access token is a JWT signed RS384 by the server's key (ihs/auth/keys.py) with the claims
`iss`, `aud` (the FHIR base URL), `sub`, `client_id`, `scope`, `iat`, `exp`, `jti`, and where they
apply `fhirUser`, `patient`, `ihs_roles`, `ihs_orgs` and `ihs_btg` (a break-the-glass reason).
Refresh tokens and authorization codes are random strings stored only as their SHA-256.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ihs.auth.errors import OAuthError
from ihs.auth.schema import codes, refresh_tokens, revoked_tokens


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    """A random 256-bit URL-safe string (codes, refresh tokens)."""
    return secrets.token_urlsafe(32)


def new_jti() -> str:
    return uuid.uuid4().hex


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636 section 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


# -- authorization codes -------------------------------------------------------------------------

def issue_code(conn, *, client_id: str, username: str, redirect_uri: str, scope: str, code_challenge: str,
               patient: str | None, nonce: str | None, break_glass: str | None, lifetime: int) -> str:
    code = new_secret()
    conn.execute(insert(codes).values(code_hash=digest(code), client_id=client_id, username=username,
                                      redirect_uri=redirect_uri, scope=scope, code_challenge=code_challenge,
                                      patient=patient, nonce=nonce, break_glass=break_glass,
                                      expires_at=int(time.time()) + lifetime, used=False))
    return code


def redeem_code(conn, code: str, *, client_id: str, redirect_uri: str, verifier: str | None):
    """The authorization code's row after every check (single use, expiry, client, redirect URI, PKCE)."""
    row = conn.execute(select(codes).where(codes.c.code_hash == digest(code))).first()
    if row is None:
        raise OAuthError("invalid_grant", "unknown authorization code")
    # the conditional update lets only one of two concurrent exchanges of a code through
    taken = conn.execute(update(codes).where(codes.c.code_hash == row.code_hash, codes.c.used.is_(False))
                         .values(used=True)).rowcount
    if not taken:
        raise OAuthError("invalid_grant", "the authorization code has already been used")
    if row.expires_at < time.time():
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if row.client_id != client_id:
        raise OAuthError("invalid_grant", "the authorization code was issued to another client")
    if row.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    if not verifier:
        raise OAuthError("invalid_request", "code_verifier is required (PKCE)")
    if not secrets.compare_digest(pkce_challenge(verifier), row.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
    return row


# -- refresh tokens ------------------------------------------------------------------------------

def issue_refresh_token(conn, *, client_id: str, username: str, scope: str, patient: str | None,
                        lifetime: int) -> str:
    token = new_secret()
    now = int(time.time())
    conn.execute(insert(refresh_tokens).values(token_hash=digest(token), client_id=client_id, username=username,
                                               scope=scope, patient=patient, issued_at=now,
                                               expires_at=now + lifetime, revoked=False))
    return token


def use_refresh_token(conn, token: str, client_id: str):
    """The refresh token's row, revoked now (rotation: each refresh token works once)."""
    row = conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == digest(token))).first()
    if row is None or row.revoked:
        raise OAuthError("invalid_grant", "the refresh token is unknown or revoked")
    if row.expires_at < time.time():
        raise OAuthError("invalid_grant", "the refresh token has expired")
    if row.client_id != client_id:
        raise OAuthError("invalid_grant", "the refresh token was issued to another client")
    taken = conn.execute(update(refresh_tokens).where(refresh_tokens.c.token_hash == row.token_hash,
                                                      refresh_tokens.c.revoked.is_(False)).values(revoked=True))
    if not taken.rowcount:
        raise OAuthError("invalid_grant", "the refresh token has already been used")
    return row


def revoke_refresh_token(conn, token: str, client_id: str | None = None) -> bool:
    """Revoke a refresh token (of `client_id`, when given); False if there was none."""
    condition = [refresh_tokens.c.token_hash == digest(token)]
    if client_id:
        condition.append(refresh_tokens.c.client_id == client_id)
    return bool(conn.execute(update(refresh_tokens).where(*condition).values(revoked=True)).rowcount)


def refresh_token_info(conn, token: str):
    row = conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == digest(token))).first()
    if row is None or row.revoked or row.expires_at < time.time():
        return None
    return row


# -- revocation of access tokens -----------------------------------------------------------------

class RevocationList:
    """The ids of revoked, unexpired access tokens, re-read from the database at most every
    `refresh_seconds` (so a revocation in one worker reaches the others within that time)."""

    def __init__(self, engine: Engine, refresh_seconds: float = 2.0):
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self._ids: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def is_revoked(self, jti: str) -> bool:
        if time.monotonic() - self._loaded_at > self.refresh_seconds:
            self._reload()
        return jti in self._ids

    def _reload(self) -> None:
        with self._lock:
            now = int(time.time())
            with self.engine.connect() as conn:
                rows = conn.execute(select(revoked_tokens.c.jti).where(revoked_tokens.c.expires_at > now)).scalars()
                self._ids = frozenset(rows)
            self._loaded_at = time.monotonic()

    def revoke(self, conn, jti: str, expires_at: int) -> None:
        try:
            with conn.begin_nested():
                conn.execute(insert(revoked_tokens).values(jti=jti, expires_at=expires_at))
        except IntegrityError:
            pass  # already revoked
        self._ids = self._ids | {jti}

    def purge(self, conn) -> None:
        """Forget revocations of tokens that have expired anyway."""
        conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at <= int(time.time())))
