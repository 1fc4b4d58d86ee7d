"""Sealing identifier values stored in plain text before their system was protected.

A database written before resident ID numbers were encrypted (or before a system was added to
`IHS_PROTECTED_IDENTIFIER_SYSTEMS`) holds their values plain in `resources`, `resource_history`
and the index. At start, `Store.create_schema()` asks the protection which configured systems the
database has not recorded as sealed, and `seal_stored_identifiers` rewrites every version holding
one of them: the content sealed, the current version's index rows hashed. It runs once per newly
protected system (the record is kept in `identifier_key.systems`); on a new database it finds nothing.
"""
from __future__ import annotations

import logging

from sqlalchemy import Text, cast, or_, select, update

from ihs.store.protected import ENCRYPTED_VALUE
from ihs.store.schema import resource_history, resources
from ihs.store.store import Store, StoredResource, UnitOfWork

log = logging.getLogger("ihs.store")
BATCH = 500


def seal_stored_identifiers(store: Store, systems: set[str]) -> int:
    """Seal the stored values of `systems`; the number of versions rewritten."""
    rewritten = _seal_current(store, systems) + _seal_history(store, systems)
    if rewritten:
        _merge_full_text_indexes(store)
        log.info("sealed the identifiers of %s in %d stored versions; the old row versions may remain in free "
                 "database pages until VACUUM", ", ".join(sorted(systems)), rewritten)
    return rewritten


def _merge_full_text_indexes(store: Store) -> None:
    """SQLite FTS5 keeps a deleted row's words in its segments until they merge: merge them now."""
    if store.dialect != "sqlite":
        return
    with store.session(write=True) as uow:
        tables = uow.conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'").scalars().all()
        for table in tables:
            uow.conn.exec_driver_sql(f'INSERT INTO "{table}" ("{table}") VALUES (\'optimize\')')


def _holding(content, systems: set[str]):
    """Rows whose JSON names one of `systems` as an identifier system (a cheap superset, checked per row)."""
    return or_(*(content.like(f'%"{system}"%') for system in sorted(systems)))


def _text(store: Store, column):
    return cast(column, Text) if store.dialect == "postgresql" else column


def _seal_current(store: Store, systems: set[str]) -> int:
    r = resources.c
    content = _text(store, r.content)
    last, count = 0, 0
    while True:
        with store.session(write=True) as uow:
            batch = (select(r.rid, r.res_type, r.res_id, r.version, r.last_updated, r.deleted, content)
                     .where(r.rid > last, r.deleted.is_(False), _holding(content, systems)).order_by(r.rid).limit(BATCH))
            if store.dialect == "postgresql":
                batch = batch.with_for_update()  # a concurrent update must not interleave with the rewrite
            rows = uow.conn.execute(batch).all()
            if not rows:
                return count
            for row in rows:
                count += _seal_version(uow, row[6], uow._opened(row))
            last = rows[-1][0]


def _seal_version(uow: UnitOfWork, stored: str, current: StoredResource) -> int:
    sealed = uow.store.protection.seal(current.resource(), current.content)
    if sealed is None or not _more_sealed(sealed.text, stored):
        return 0
    uow.conn.execute(update(resources).where(resources.c.rid == current.rid).values(content=sealed.text))
    uow._delete_index(current)
    uow._append_index(current.rid, current.type, uow.store.extract(sealed.indexed), current.last_updated)
    return 1


def _more_sealed(sealed: str, stored: str) -> bool:
    """Whether sealing found plain values (versions sealed already are left as they are)."""
    return sealed.count(ENCRYPTED_VALUE) > stored.count(ENCRYPTED_VALUE)


def _seal_history(store: Store, systems: set[str]) -> int:
    h = resource_history.c
    content = _text(store, h.content)
    protection = store.protection
    last, count = (0, 0), 0
    while True:
        with store.session(write=True) as uow:
            rows = uow.conn.execute(
                select(h.rid, h.version, content)
                .where((h.rid > last[0]) | ((h.rid == last[0]) & (h.version > last[1])),
                       h.content.is_not(None), _holding(content, systems))
                .order_by(h.rid, h.version).limit(BATCH)).all()
            if not rows:
                return count
            for rid, version, stored in rows:
                sealed = protection.sealed_text(protection.open_text(stored))
                if _more_sealed(sealed, stored):
                    uow.conn.execute(update(resource_history).where(h.rid == rid, h.version == version)
                                     .values(content=sealed))
                    count += 1
            last = rows[-1][0], rows[-1][1]
