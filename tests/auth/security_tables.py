"""Resetting the auth and audit tables between tests on the shared PostgreSQL database."""
from __future__ import annotations

from sqlalchemy import text

from ihs.audit.chain import GENESIS, create_audit_schema
from ihs.audit.chain import metadata as audit_metadata
from ihs.auth.schema import create_auth_schema
from ihs.auth.schema import metadata as auth_metadata


def reset_security_tables(store) -> None:
    """Empty every auth_* and audit_* table (SQLite test stores are new anyway)."""
    create_auth_schema(store.engine)
    create_audit_schema(store.engine)
    if store.dialect != "postgresql":
        return
    names = ", ".join(t.name for t in list(auth_metadata.sorted_tables) + list(audit_metadata.sorted_tables))
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names}"))
        conn.execute(text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": GENESIS})
