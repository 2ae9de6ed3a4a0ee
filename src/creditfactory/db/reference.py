"""Reference data read on every request, kept in memory while it is unchanged.

A decision reads the same few rows each time: the active decision strategies, the newest
approved version of a model, the product's definition. They change a few times a year, and
each read is a statement (a quarter of a millisecond of the server's CPU, and PostgreSQL's).

The database keeps a stamp of that data (``db_reference_version``, one row: a random epoch and
a counter), raised by triggers on every insert, update and delete of the tables in
:data:`TABLES`, so that no writer can forget it (a migration, a hand-written ``UPDATE`` or a
restore included; the row deleted and written again gets a new epoch). The business date's
read, which every write request makes first, reads the stamp in the same statement and notes
it on the transaction's connection (:func:`note`). :func:`cached` then gives a value read
under the same stamp from memory, and reads it otherwise, keeping it under that stamp.

A value is thus given from memory only to a transaction that saw the same stamp when it read
the business date: to a request that started after a change had committed, the change.
Under READ COMMITTED each statement sees what had committed when it started; a request that
noted the old stamp just before a change may still get the old value, as it would have read it
a moment earlier. A transaction that writes one of those tables itself reads them from the
database from then on (its own writes are not committed, and the stamp it noted is no longer
its own); nothing it reads after such a write is kept. Without a noted stamp (a request that
did not read the business date, a database without the stamp's row) nothing is kept.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, Connection, Engine, Integer, String, Table, event, select

from creditfactory.db.base import Base

T = TypeVar("T")

#: The tables whose every write raises the stamp.
TABLES = ("decisioning_strategy", "modeling_model_version", "servicing_product")

version_table = Table(
    "db_reference_version",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("epoch", String(32), nullable=False),
    Column("version", BigInteger, nullable=False),
)

#: The stamp as one text (``epoch:version``), for a read that selects it beside its own columns.
STAMP = (
    select(version_table.c.epoch + ":" + version_table.c.version.cast(String))
    .where(version_table.c.id == 1)
    .scalar_subquery()
)

_SEEN = "creditfactory.reference.seen"
_WROTE = "creditfactory.reference.wrote"
#: Stamps kept at once: requests in flight across a change hold the old one for a moment.
_STAMPS = 4


def note(conn: Connection, stamp: str | None) -> None:
    """The stamp the transaction on ``conn`` read (``None``: there is none to go by)."""
    if stamp is None:
        conn.info.pop(_SEEN, None)
    else:
        conn.info[_SEEN] = stamp


class _Kept:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_stamp: OrderedDict[str, dict[Hashable, Any]] = OrderedDict()

    def get(self, stamp: str, key: Hashable) -> tuple[bool, Any]:
        values = self.by_stamp.get(stamp)
        if values is None or key not in values:
            return False, None
        return True, values[key]

    def put(self, stamp: str, key: Hashable, value: Any) -> None:
        with self.lock:
            values = self.by_stamp.get(stamp)
            if values is None:
                values = self.by_stamp[stamp] = {}
                while len(self.by_stamp) > _STAMPS:
                    self.by_stamp.popitem(last=False)
            values[key] = value


_kept: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def _of(engine: Engine) -> _Kept:
    kept = _kept.get(engine)
    if kept is None:
        with _kept_lock:
            kept = _kept.setdefault(engine, _Kept())
    return kept


def cached(conn: Connection, key: Hashable, load: Callable[[], T]) -> T:
    """``load()``'s value for ``key`` under the stamp this transaction noted: from memory when
    it was read under that stamp before, else read now (and kept, unless this transaction has
    written reference data). The value is shared between threads: give only immutable ones."""
    info = conn.info
    stamp = info.get(_SEEN)
    if stamp is None or info.get(_WROTE):
        return load()
    kept = _of(conn.engine)
    found, value = kept.get(stamp, key)
    if found:
        result: T = value
        return result
    fresh = load()
    if not info.get(_WROTE):  # the load itself did not write (a flush of pending rows)
        kept.put(stamp, key, fresh)
    return fresh


def forget(engine: Engine) -> None:
    """Drop what is kept for ``engine`` (the database was emptied or replaced under it)."""
    with _kept_lock:
        _kept.pop(engine, None)


# ------------------------------------------------------------------ what a transaction did


def _wrote_reference(statement: str, context: Any) -> bool:
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        name = getattr(table, "name", None)
        if name is not None:
            return name in TABLES
    head = statement.lstrip()[:6].upper()
    if head in ("INSERT", "UPDATE", "DELETE") or head.startswith("TRUNC"):
        return any(t in statement for t in TABLES)
    return False


@event.listens_for(Engine, "before_cursor_execute")
def _watch(
    conn: Connection, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    if _wrote_reference(statement, context):
        conn.info[_WROTE] = True


@event.listens_for(Engine, "begin")
@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _transaction_bounds(conn: Connection) -> None:
    if conn.invalidated:  # lost: its DBAPI connection (and what was noted on it) is gone
        return
    info = conn.info
    info.pop(_SEEN, None)
    info.pop(_WROTE, None)
