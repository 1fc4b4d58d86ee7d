"""Sensitive identifiers (the resident ID number) encrypted at rest and searchable through a keyed hash.

An Identifier whose `system` is protected (`IHS_PROTECTED_IDENTIFIER_SYSTEMS`, comma-separated;
by default the GB 11643 citizen identity number, `urn:oid:2.16.156.10011.1.1`) is written with
its value sealed: `"value"` gives way to a primitive extension,

    "_value": {"extension": [{"url": ENCRYPTED_VALUE, "valueBase64Binary": "<nonce + AES-256-GCM>"}]}

an element without a value, valid FHIR if the row ever leaks raw. Its search-index rows hold
`hmac:<HMAC-SHA-256 of the value>` instead of the value, and a search for the value looks up the
same hash. The store opens sealed values as it reads a row, so every reader sees the plain value.

The key and the database's record of it: ihs/store/identifier_key.py.
"""
from __future__ import annotations

import base64
import hmac
import os
import re
import secrets
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

import orjson
from cryptography.exceptions import InvalidTag
from sqlalchemy.engine import Engine

from ihs.fhir.errors import FhirError
from ihs.store import identifier_key
from ihs.store.identifier_key import IdentifierKeyError, WorkingKeys

RESIDENT_ID = "urn:oid:2.16.156.10011.1.1"  # GB 11643 citizen identity number
ENCRYPTED_VALUE = "https://ihs.example.org/fhir/StructureDefinition/encrypted-value"
HASH_PREFIX = "hmac:"
NONCE_BYTES = 12


def protected_systems() -> frozenset[str]:
    """The identifier systems whose values are sealed (configuration, read once per store)."""
    configured = os.environ.get("IHS_PROTECTED_IDENTIFIER_SYSTEMS")
    if configured is None:
        return frozenset({RESIDENT_ID})
    return frozenset(s.strip() for s in configured.split(",") if s.strip())


@dataclass(frozen=True)
class Sealed:
    """A resource ready to store: the variant to index (hashes for values) and the text to write (ciphertext)."""

    indexed: dict
    text: str


class IdentifierProtection:
    """Seals, opens and hashes protected identifier values for one store."""

    def __init__(self, engine: Engine, systems: frozenset[str] | None = None):
        self.engine = engine
        self.systems = protected_systems() if systems is None else systems
        # `"system":"<protected>","value":"<value>"`: how nearly every Identifier is written
        self._plain = re.compile(r'("system":"(?:' + "|".join(re.escape(s) for s in sorted(self.systems)) +
                                 r')",)"value":"((?:[^"\\]|\\.)*)"') if self.systems else None
        self._keys: WorkingKeys | None = None
        self._lock = threading.Lock()

    # -- the key ---------------------------------------------------------------------------------

    def check_key(self) -> set[str]:
        """Load the key and check it against the one the database records (call at start).

        Returns the protected systems whose stored values may still be plain (the database has not
        recorded them as sealed): `ihs.store.sealing` seals them, then `record_sealed` records them.
        """
        return identifier_key.unsealed_systems(self.engine, self._working_keys(), set(self.systems))

    def record_sealed(self, systems: set[str]) -> None:
        """Record that no stored value of `systems` is plain any more."""
        identifier_key.record_sealed(self.engine, systems)

    def _working_keys(self) -> WorkingKeys:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    self._keys = identifier_key.load_keys(self.engine)
        return self._keys

    # -- writing ---------------------------------------------------------------------------------

    def seal(self, resource: dict, text: str) -> Sealed | None:
        """`resource` (serialized as `text`) ready to store, or None when it holds no protected identifier."""
        if ENCRYPTED_VALUE in text:
            raise FhirError(f"the extension {ENCRYPTED_VALUE} is reserved for the server's encryption of "
                            "identifiers; send the identifier's value instead", code="invalid")
        if not any(system in text for system in self.systems):
            return None  # the common case: no substring, nothing more to do
        found = len(self._plain.findall(text))
        if found and found == sum(text.count(f'"system":"{system}"') for system in self.systems):
            # every protected system is an Identifier's, its value next to it: rewrite the text, no walk
            indexed = self._plain.sub(lambda m: f'{m[1]}"value":"{self.digest(_unescaped(m[2]))}"', text)
            return Sealed(orjson.loads(indexed), self._plain.sub(self._sealed_match, text))
        indexed, sealed = self._split(resource)
        if indexed is resource:
            return None
        return Sealed(indexed, orjson.dumps(sealed).decode())

    def sealed_text(self, text: str) -> str:
        """The stored form of a resource's plain JSON text (for a version moving to history)."""
        if not any(system in text for system in self.systems):
            return text
        found = self.seal(orjson.loads(text), text)
        return found.text if found else text

    def indexed(self, resource: dict) -> dict:
        """The variant of a plain resource whose search-index rows may be written (values hashed)."""
        return self._split(resource)[0] if self.systems else resource

    def _split(self, node):
        """(indexed, sealed) copies of `node`, sharing what holds no protected identifier."""
        if isinstance(node, dict):
            indexed = sealed = None
            for name, child in node.items():
                if isinstance(child, (dict, list)):
                    child_indexed, child_sealed = self._split(child)
                    if child_indexed is not child:
                        if indexed is None:
                            indexed, sealed = dict(node), dict(node)
                        indexed[name], sealed[name] = child_indexed, child_sealed
            system, value = node.get("system"), node.get("value")
            if isinstance(system, str) and system in self.systems and isinstance(value, str):
                indexed = dict(indexed or node)
                indexed["value"] = self.digest(value)
                sealed = self._sealed_identifier(sealed or node, value)
            return (indexed, sealed) if indexed is not None else (node, node)
        if isinstance(node, list):
            pairs = [self._split(item) for item in node]
            if all(i is item for (i, _), item in zip(pairs, node)):
                return node, node
            return [i for i, _ in pairs], [s for _, s in pairs]
        return node, node

    def _box(self, value: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return base64.b64encode(nonce + self._working_keys().aead.encrypt(nonce, value.encode(), None)).decode()

    def _sealed_match(self, match) -> str:
        return f'{match[1]}"_value":{{"extension":[{{"url":"{ENCRYPTED_VALUE}","valueBase64Binary":' \
               f'"{self._box(_unescaped(match[2]))}"}}]}}'

    def _sealed_identifier(self, identifier: dict, value: str) -> dict:
        extension = {"url": ENCRYPTED_VALUE, "valueBase64Binary": self._box(value)}
        primitive = dict(identifier.get("_value") or {})
        primitive["extension"] = [*primitive.get("extension", []), extension]
        out = {}
        for name, item in identifier.items():
            if name == "value":
                out["_value"] = primitive  # where the value was, so opening restores the order
            elif name != "_value":
                out[name] = item
        return out

    # -- reading ---------------------------------------------------------------------------------

    def open_text(self, text: str) -> str:
        """The plain JSON text of a stored resource (unchanged unless it holds sealed values)."""
        if ENCRYPTED_VALUE not in text:
            return text
        # a sealed value without other extensions of its own is replaced in the text; anything else by a walk
        text = _SEALED.sub(lambda m: f'"value":{orjson.dumps(self._opened(m[1])).decode()}', text)
        if ENCRYPTED_VALUE not in text:
            return text
        return orjson.dumps(self.open(orjson.loads(text))).decode()

    def open(self, node):
        """A stored resource (or part of one) with its sealed values opened."""
        if isinstance(node, dict):
            out = {}
            for name, child in node.items():
                sealed = _sealed_extension(child) if name == "_value" and isinstance(child, dict) else None
                if sealed:
                    out["value"] = self._opened(sealed["valueBase64Binary"])
                    rest = {k: v for k, v in child.items() if k != "extension"}
                    others = [e for e in child["extension"] if e is not sealed]
                    if others:
                        rest["extension"] = others
                    if rest:
                        out["_value"] = rest
                else:
                    out[name] = self.open(child) if isinstance(child, (dict, list)) else child
            return out
        if isinstance(node, list):
            return [self.open(item) if isinstance(item, (dict, list)) else item for item in node]
        return node

    def _opened(self, sealed: str) -> str:
        box = base64.b64decode(sealed)
        keys = self._working_keys()
        try:
            return keys.aead.decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], None).decode()
        except InvalidTag as exc:
            raise IdentifierKeyError(
                f"a stored identifier cannot be decrypted with the identifier key (fingerprint "
                f"{keys.fingerprint}): it was sealed with another key, or altered") from exc

    # -- searching -------------------------------------------------------------------------------

    def digest(self, value: str) -> str:
        """The index value standing for a protected identifier value."""
        return HASH_PREFIX + hmac.digest(self._working_keys().mac, value.encode(), "sha256")[:16].hex()

    def searched_codes(self, system: str | None, code: str) -> list[str]:
        """The index codes an identifier search for `system|code` looks up: the hash for a protected system;
        without a system, the value and its hash (the value may be protected under any system)."""
        if system is None:
            return [code, self.digest(code)] if self.systems else [code]
        return [self.digest(code)] if system in self.systems else [code]

    def masked_query(self, query: str) -> str:
        """A search's query string with its identifier values that may be protected replaced by their hash.

        For the audit trail: a search by resident ID number is recorded (and can be found by the hash
        of the number) without the number itself. Values of a system that is not protected stay.
        """
        if not self.systems or "identifier" not in query:
            return query
        masked = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "identifier" in name or name.endswith(":of-type"):
                value = ",".join(self._masked_token(item, name.endswith(":of-type")) for item in value.split(","))
            masked.append((name, value))
        return urlencode(masked, quote_via=quote, safe="|,:/")

    def _masked_token(self, token: str, of_type: bool) -> str:
        if of_type:
            head, bar, value = token.rpartition("|")
            return f"{head}|{self.digest(value)}" if bar and value else token
        system, bar, value = token.rpartition("|")
        if not bar:
            return self.digest(token) if token else token
        return f"{system}|{self.digest(value)}" if system in self.systems and value else token


_SEALED = re.compile(r'"_value":\{"extension":\[\{"url":"' + re.escape(ENCRYPTED_VALUE) +
                     r'","valueBase64Binary":"([A-Za-z0-9+/=]+)"\}\]\}')


def _unescaped(json_string_body: str) -> str:
    return orjson.loads(f'"{json_string_body}"') if "\\" in json_string_body else json_string_body


def _sealed_extension(primitive: dict) -> dict | None:
    for extension in primitive.get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == ENCRYPTED_VALUE:
            return extension
    return None


# -- the store in use, for compiling searches -------------------------------------------------------

_active: ContextVar[IdentifierProtection | None] = ContextVar("ihs_identifier_protection", default=None)


@contextmanager
def in_use(protection: IdentifierProtection):
    """Make `protection` the one searches compiled in this block hash their identifier values with."""
    token = _active.set(protection)
    try:
        yield
    finally:
        _active.reset(token)


def searched_codes(system: str | None, code: str) -> list[str]:
    """The index codes to look up for an identifier search (see `IdentifierProtection.searched_codes`)."""
    protection = _active.get()
    if protection is None:
        raise RuntimeError("an identifier search was compiled outside a store session")
    return protection.searched_codes(system, code)
