"""Password hashing with Argon2id.

The cost parameters are one of argon2-cffi's profiles, chosen by `IHS_ARGON2_PROFILE`:
RFC_9106_LOW_MEMORY (the default: 64 MiB, 3 passes), RFC_9106_HIGH_MEMORY (2 GiB, for servers
that can afford it) or CHEAPEST (tests only). Hashes carry their parameters, so changing the
profile keeps existing passwords valid.
"""
from __future__ import annotations

import os

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_state: dict = {}


def use_profile(name: str | None = None) -> None:
    """Hash new passwords with the argon2-cffi profile `name` (default: IHS_ARGON2_PROFILE or RFC_9106_LOW_MEMORY)."""
    name = name or os.environ.get("IHS_ARGON2_PROFILE") or "RFC_9106_LOW_MEMORY"
    hasher = PasswordHasher.from_parameters(getattr(profiles, name))
    _state["hasher"] = hasher
    # a hash to verify against when the account does not exist, so a wrong username costs as much
    # time as a wrong password and timing does not reveal which accounts exist
    _state["dummy"] = hasher.hash("no such account")


def _hasher() -> PasswordHasher:
    if "hasher" not in _state:
        use_profile()
    return _state["hasher"]


def hash_password(password: str) -> str:
    """An Argon2id hash of `password` in PHC string format (salt and parameters included)."""
    if len(password) < 8:
        raise ValueError("a password has at least 8 characters")
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash` (None: no such account; checked at the same cost)."""
    hasher = _hasher()
    try:
        return hasher.verify(stored_hash or _state["dummy"], password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
