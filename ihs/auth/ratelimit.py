"""Login rate limiting per account and per client IP, shared by every worker through the database.

A key ("account:<username>", "address:<ip>") that collects `limit` failed logins within a window of
`window` seconds is refused until the window ends, whether the next password is right or not; a
successful login clears its account's count. Counting in the database (not in process memory) makes
the limit hold however many API workers there are.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ihs.auth.errors import TooManyAttempts
from ihs.auth.schema import login_attempts


@dataclass(frozen=True)
class LoginLimits:
    account_failures: int = int(os.environ.get("IHS_LOGIN_ACCOUNT_LIMIT", 5))
    address_failures: int = int(os.environ.get("IHS_LOGIN_ADDRESS_LIMIT", 20))
    window: int = int(os.environ.get("IHS_LOGIN_WINDOW_SECONDS", 900))


def _keys(username: str, address: str | None, limits: LoginLimits) -> list[tuple[str, int]]:
    keys = [(f"account:{username.lower()}", limits.account_failures)]
    if address:
        keys.append((f"address:{address}", limits.address_failures))
    return keys


def check(conn: Connection, username: str, address: str | None, limits: LoginLimits, now: int | None = None) -> None:
    """Raise TooManyAttempts if the account or the address is locked out now."""
    now = now or int(time.time())
    for key, limit in _keys(username, address, limits):
        row = conn.execute(select(login_attempts.c.window_start, login_attempts.c.failures)
                           .where(login_attempts.c.key == key)).first()
        if row and row.failures >= limit and now < row.window_start + limits.window:
            raise TooManyAttempts(row.window_start + limits.window - now)


def record_failure(conn: Connection, username: str, address: str | None, limits: LoginLimits,
                   now: int | None = None) -> None:
    """Count one failed login against the account and the address."""
    now = now or int(time.time())
    for key, _limit in _keys(username, address, limits):
        row = conn.execute(select(login_attempts.c.window_start).where(login_attempts.c.key == key)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(login_attempts).values(key=key, window_start=now, failures=1))
                continue
            except IntegrityError:
                pass  # another worker counted the first failure at the same moment
            row = conn.execute(select(login_attempts.c.window_start).where(login_attempts.c.key == key)).first()
        if now >= row.window_start + limits.window:
            conn.execute(update(login_attempts).where(login_attempts.c.key == key).values(window_start=now, failures=1))
        else:
            conn.execute(update(login_attempts).where(login_attempts.c.key == key)
                         .values(failures=login_attempts.c.failures + 1))


def record_success(conn: Connection, username: str) -> None:
    """Forget the account's failures (the address keeps its count: one IP guessing many accounts)."""
    conn.execute(delete(login_attempts).where(login_attempts.c.key == f"account:{username.lower()}"))
