"""Reference data read on every request, kept in memory while it is unchanged.

A decision reads the same few rows each time: the active decision strategies, the newest
approved version of a model, the product's definition. They change a few times a year, and
each read is a statement (a quarter of a millisecond of the server's CPU, and PostgreSQL's).

The database keeps a stamp of that data (``db_reference_version``, one row: a random epoch and
a counter), raised by triggers on every insert, update and delete of the tables in
:data:`TABLES`, so that no writer can forget it (a migration, a hand-written ``UPDATE``); the
row deleted and written again gets a new epoch. A backup restored under running servers
brings back a stamp they may have seen with other data: restart them after a restore. The business date's
read, which every write request makes first, reads the stamp in the same statement and notes
it on the transaction's connection (:func:`note`). :func:`cached` then gives a value read
under the same stamp from memory, and reads it otherwise, keeping it under that stamp.

A value is thus given from memory only to a transaction that saw the same stamp when it read
the business date: to a request that started after a change had committed, the change.
Under READ COMMITTED each statement sees what had committed when it started; a request that
noted the old stamp just before a change may still get the old value, as it would have read it
a moment earlier. A transaction that writes one of those tables itself reads them from the
database from then on (its own writes are not committed, and the stamp it noted is no longer
its own); nothing it reads after such a write is kept. The session's flush tells of the
mapped rows it writes; a writer of those tables through SQLAlchemy Core calls :func:`wrote`
(``decisioning.records``, ``modeling.store``). What is noted belongs to the transaction it was
noted in. Without a noted stamp (a request that did not read the business date, a database
without the stamp's row) nothing is kept.

Nothing here listens to every statement or every transaction of an engine: an engine with such
listeners dispatches each of its events through them, which cost a decision more Python calls
than the three statements saved.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, Connection, Engine, Integer, String, Table, event, select
from sqlalchemy.orm import Session

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


def _current(conn: Connection) -> weakref.ref[Any] | None:
    # held weakly: the pool's record of the connection outlives the transaction, and must not
    # keep it (and its Connection) alive
    transaction = conn.get_transaction()
    return None if transaction is None else weakref.ref(transaction)


def note(conn: Connection, stamp: str | None) -> None:
    """The stamp the transaction on ``conn`` read (``None``: there is none to go by)."""
    conn.info[_SEEN] = (_current(conn), stamp)


def wrote(conn: Connection) -> None:
    """The transaction on ``conn`` has written reference data (call it after the write, within
    the transaction): from now on it reads it from the database, and keeps nothing it reads."""
    current = _current(conn)
    if current is not None:
        conn.info[_WROTE] = current


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
    seen = info.get(_SEEN)
    transaction = conn.get_transaction()
    if seen is None or seen[1] is None or transaction is None or seen[0]() is not transaction:
        return load()  # no stamp noted by this transaction
    if _wrote_in(info, transaction):
        return load()
    stamp = seen[1]
    kept = _of(conn.engine)
    found, value = kept.get(stamp, key)
    if found:
        result: T = value
        return result
    fresh = load()
    if not _wrote_in(info, transaction):  # the load itself did not write (a flush)
        kept.put(stamp, key, fresh)
    return fresh


def _wrote_in(info: dict[Any, Any], transaction: Any) -> bool:
    wrote_ref = info.get(_WROTE)
    return wrote_ref is not None and wrote_ref() is transaction


def forget(engine: Engine) -> None:
    """Drop what is kept for ``engine`` (the database was emptied or replaced under it)."""
    with _kept_lock:
        _kept.pop(engine, None)


# ------------------------------------------------------------------ what a transaction wrote


@event.listens_for(Session, "before_flush")
def _flushing(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if getattr(type(obj), "__tablename__", None) in TABLES:
            wrote(session.connection())
            return
