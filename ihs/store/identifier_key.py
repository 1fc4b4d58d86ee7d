"""The key that seals protected identifiers (ihs/store/protected.py): where it is kept, and the database's record of it.

The key is `IHS_IDENTIFIER_KEY` (base64 of 32 bytes), else the file `IHS_IDENTIFIER_KEY_FILE`, else
`keys/identifier.key` beside the SQLite database, or in the data directory (`IHS_DATA_DIR`, else
./ihs-data) for PostgreSQL: never in the database it protects. The file is made on first start
(mode 0600, created exclusively so workers starting together agree). The `identifier_key` table
records the key's fingerprint, never the key, so a missing or different key stops the start
(`IdentifierKeyError`) instead of serving ciphertext or sealing with a second key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import BigInteger, Column, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ihs.store.schema import metadata

log = logging.getLogger("ihs.store")

KEY_BYTES = 32
_GENERATE = "the output of `openssl rand -base64 32`"

# The fingerprint of the key that sealed this database's identifiers, and the systems sealed (one row).
identifier_key = Table(
    "identifier_key", metadata,
    Column("name", String(16), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("systems", Text, nullable=False),  # space-separated: every stored value of these is sealed
    Column("created_at", BigInteger, nullable=False),  # seconds since the epoch
)


class IdentifierKeyError(RuntimeError):
    """The identifier key is missing, malformed or not the one this database's identifiers were sealed with."""


class WorkingKeys:
    """The keys derived from the identifier key (HKDF-SHA-256): one encrypts, one hashes for search."""

    def __init__(self, key: bytes):
        self.aead = AESGCM(_derive(key, b"ihs identifier encryption"))
        self.mac = _derive(key, b"ihs identifier search hash")
        self.fingerprint = hmac.new(key, b"ihs identifier key fingerprint", hashlib.sha256).hexdigest()[:16]


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(key)


def key_location(database_url: str) -> Path:
    """Where the key file is kept unless configured: beside the SQLite file, else in the data directory."""
    configured = os.environ.get("IHS_IDENTIFIER_KEY_FILE")
    if configured:
        return Path(configured)
    if database_url.startswith("sqlite") and "///" in database_url:
        path = database_url.split("///", 1)[1]
        if path and path != ":memory:":
            return Path(path).resolve().parent / "keys" / "identifier.key"
    return Path(os.environ.get("IHS_DATA_DIR") or "ihs-data").resolve() / "keys" / "identifier.key"


def load_keys(engine: Engine) -> WorkingKeys:
    """The configured key, checked against the database's record (recorded first if there is none)."""
    metadata.create_all(engine, tables=[identifier_key])
    expected = _registered_fingerprint(engine)
    key, source = _read_key(engine, may_create=expected is None)
    keys = WorkingKeys(key)
    _check(keys, expected or _register(engine, keys.fingerprint), f"the identifier key from {source}")
    return keys


def unsealed_systems(engine: Engine, keys: WorkingKeys, systems: set[str]) -> set[str]:
    """Which of `systems` the database has not recorded as sealed (checking the key again: the row may be new)."""
    _check(keys, _registered_fingerprint(engine) or _register(engine, keys.fingerprint), "the identifier key")
    return systems - _sealed_systems(engine)


def record_sealed(engine: Engine, systems: set[str]) -> None:
    """Record that no stored value of `systems` is plain any more."""
    with engine.begin() as conn:
        conn.execute(update(identifier_key).where(identifier_key.c.name == "current").values(
            systems=" ".join(sorted(_sealed_systems(engine) | systems))))


def _check(keys: WorkingKeys, expected: str, what: str) -> None:
    if keys.fingerprint != expected:
        raise IdentifierKeyError(
            f"{what} (fingerprint {keys.fingerprint}) is not the key this database's resident ID numbers were "
            f"encrypted with (fingerprint {expected}); configure that key (IHS_IDENTIFIER_KEY or "
            f"IHS_IDENTIFIER_KEY_FILE)")


def _read_key(engine: Engine, *, may_create: bool) -> tuple[bytes, str]:
    configured = os.environ.get("IHS_IDENTIFIER_KEY")
    if configured:
        return _decoded(configured, "IHS_IDENTIFIER_KEY"), "IHS_IDENTIFIER_KEY"
    path = key_location(str(engine.url))
    if not path.exists():
        if not may_create:
            raise IdentifierKeyError(
                f"this database's resident ID numbers are encrypted, but IHS_IDENTIFIER_KEY is not set and there "
                f"is no key file at {path}; restore the key file or set IHS_IDENTIFIER_KEY (base64)")
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the identifier key %s was readable by others (mode %o); restricting it to its owner", path, mode)
        path.chmod(0o600)
    return _decoded(path.read_text(), f"the key file {path}"), f"the key file {path}"


def _decoded(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise IdentifierKeyError(f"{source} is not base64; give the base64 of {KEY_BYTES} random bytes, "
                                 f"e.g. {_GENERATE}") from exc
    if len(key) != KEY_BYTES:
        raise IdentifierKeyError(f"{source} is {len(key)} bytes long; the identifier key must be {KEY_BYTES} "
                                 f"random bytes (AES-256), e.g. {_GENERATE}")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: when two workers start together one writes the key, the other reads it
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        time.sleep(0.2)
        return
    with os.fdopen(descriptor, "w") as out:
        out.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
    log.info("generated the identifier encryption key at %s", path)


def _registered_fingerprint(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(identifier_key.c.fingerprint).where(identifier_key.c.name == "current")).scalar()


def _sealed_systems(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        recorded = conn.execute(select(identifier_key.c.systems).where(identifier_key.c.name == "current")).scalar()
    return set((recorded or "").split())


def _register(engine: Engine, fingerprint: str) -> str:
    """Record `fingerprint` as the database's key unless another process did first; the one recorded.

    No system is recorded as sealed yet: the next start seals what an earlier version stored plain.
    """
    try:
        with engine.begin() as conn:
            conn.execute(insert(identifier_key).values(name="current", fingerprint=fingerprint, systems="",
                                                       created_at=int(time.time())))
        return fingerprint
    except IntegrityError:
        return _registered_fingerprint(engine)
