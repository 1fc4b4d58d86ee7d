"""The server's token-signing key: generated on first start, then kept.

Where it is kept (`IHS_SIGNING_KEY`, or the `location` argument):
- a file path: a JWK file readable by its owner only (0600, in a 0700 directory). The default for
  SQLite, next to the database file: `ihs-data/keys/signing-key.jwk` for `sqlite:///ihs-data/ihs.db`;
- `database`: the `auth_signing_keys` table, the default for PostgreSQL, so every worker and every
  machine behind the load balancer signs with the same key without copying files.
Whichever process comes first creates the key; the others read it (creation is exclusive).
"""
from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ihs.auth.schema import signing_keys

log = logging.getLogger("ihs.auth")

ALGORITHM = "RS384"
KEY_BITS = 2048


class SigningKey:
    """An RSA key signing the server's access and id tokens (RS384)."""

    def __init__(self, key: RSAKey):
        key.ensure_kid()
        self.key = key
        self.kid = key.kid

    def sign(self, claims: dict, *, typ: str = "JWT") -> str:
        return jwt.encode({"alg": ALGORITHM, "kid": self.kid, "typ": typ}, claims, self.key, algorithms=[ALGORITHM])

    def decode(self, token: str):
        """The token's header and claims after checking its signature (joserfc errors if it is bad)."""
        return jwt.decode(token, self.key, algorithms=[ALGORITHM])

    def public_jwks(self) -> dict:
        public = self.key.as_dict(private=False)
        public.update({"alg": ALGORITHM, "use": "sig", "kid": self.kid})
        return {"keys": [public]}


def _new_key() -> RSAKey:
    return RSAKey.generate_key(KEY_BITS, auto_kid=True)


def default_location(database_url: str) -> str:
    """Where the key lives by default: beside the SQLite file, or in the database for PostgreSQL."""
    if database_url.startswith("sqlite") and "///" in database_url:
        path = database_url.split("///", 1)[1]
        if path and path != ":memory:":
            return str(Path(path).resolve().parent / "keys" / "signing-key.jwk")
        return str(Path("ihs-data/keys/signing-key.jwk").resolve())
    return "database"


def load_signing_key(engine: Engine, location: str | None = None) -> SigningKey:
    """The server's signing key at `location` (see the module docstring), created if missing."""
    location = location or os.environ.get("IHS_SIGNING_KEY") or default_location(str(engine.url))
    if location == "database":
        return SigningKey(_from_database(engine))
    return SigningKey(_from_file(Path(location)))


def _from_file(path: Path) -> RSAKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        key = _new_key()
        try:
            # O_EXCL: when two workers start together only one key is written; the other reads it
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.2)
        else:
            with os.fdopen(fd, "w") as f:
                json.dump(key.as_dict(private=True), f)
            log.info("generated the token signing key at %s", path)
            return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the signing key %s was readable by others (mode %o); restricting it to its owner", path, mode)
        path.chmod(0o600)
    return RSAKey.import_key(json.loads(path.read_text()))


def _from_database(engine: Engine) -> RSAKey:
    with engine.begin() as conn:
        row = conn.execute(select(signing_keys.c.private_jwk).where(signing_keys.c.name == "current")).first()
    if row:
        return RSAKey.import_key(json.loads(row[0]))
    key = _new_key()
    try:
        with engine.begin() as conn:
            conn.execute(insert(signing_keys).values(name="current", private_jwk=json.dumps(key.as_dict(private=True)),
                                                     created_at=int(time.time())))
        log.info("generated the token signing key (kept in the database)")
        return key
    except IntegrityError:
        return _from_database(engine)


def client_key_set(jwks: dict | str) -> KeySet:
    """A client's registered public keys (a JWKS) as a joserfc KeySet."""
    data = json.loads(jwks) if isinstance(jwks, str) else jwks
    if "keys" not in data:
        data = {"keys": [data]}
    return KeySet.import_key_set(data)
