"""Rows that are only ever added: written by the session's flush with one plain ``INSERT`` per
table, not through the unit of work.

An event in the outbox or a move in an application's history is added by one transaction,
which never changes it afterwards (a later one may load and update it, as the outbox's
dispatcher marks a message delivered). The unit of work would still track each such object,
order it, insert the lot with ``RETURNING`` to learn their ids and keep them in the identity
map: about as much work again as the statement. A mapped class that derives from
:class:`AppendOnly` is added to the session as usual (``session.add``), and is visible to every
query of the session from its next flush on (an ORM query's autoflush, ``flush``, the commit),
like any pending row. At that flush its objects leave the session (transient again, without an
id) and their rows are inserted, on PostgreSQL in one statement (up to
:data:`ONE_STATEMENT_VALUES` values, rows times columns), else with one ``executemany`` per
table: after the unit of work's own statements, within the flush, so that a row they refer to
is written first and a flush that fails takes them with it; when nothing else is pending, in
a savepoint of their own, so that a failing ``INSERT`` (a duplicate deduplication key) leaves
the rest of the transaction usable, unless the flush is a commit's: a failure then fails the
commit, and what it was to commit is only good for the rollback that follows (the unit of
work's and the API's boundaries make it).
Read such a row back with a query when its id is needed; add a new object to write a row again.

The listeners are on :class:`~sqlalchemy.orm.Session` itself: every session of the process
writes these rows the same way.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Connection, Dialect, Table, bindparam, event, insert
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from creditfactory.db.base import column_defaults, filled

_PENDING = "creditfactory.append_only"
_COMMITTING = "creditfactory.append_only.committing"
T = TypeVar("T", bound="AppendOnly")


class AppendOnly:
    """Mixin of a mapped class whose new rows are only added (see the module's docstring). Its
    columns' defaults, when the object leaves one unset, must be plain values."""

    __table__: ClassVar[Table]
    #: pending objects of the class do not hold up ``db.base.write_changes``: the flush writes
    #: them apart, after the unit of work's statements
    written_apart: ClassVar[bool] = True


def add(session: Session, cls: type[T], **values: Any) -> T:
    """A new ``cls`` row added to the session: as ``session.add(cls(**values))``, without the
    attribute events a mapped constructor fires for each value (nobody tracks changes of an
    object that only waits to be inserted)."""
    obj = filled(cls, values)
    session.add(obj)
    return obj


def _row(obj: Any, table: Table) -> dict[str, Any]:
    values = obj.__dict__
    return {key: values.get(key, default) for key, default in column_defaults(table).items()}


#: at most this many values (rows times columns) are written in one statement on PostgreSQL;
#: more, one ``executemany`` a table. Measured on a table of four columns, client CPU: 2 rows
#: 0.08 ms in one statement against 0.15 ms by ``executemany``, 10 rows 0.11 against 0.24, 50
#: rows 0.72 against 0.82, 250 rows even, 500 rows 11.1 against 6.0 (psycopg converts a
#: statement of more than 50 parameters again at every execution); and each new mix of row
#: counts is compiled once, about 0.08 ms a row. What a request adds (a move and its message,
#: about 20 values) gains the most.
ONE_STATEMENT_VALUES = 200


def _values(rows: dict[Table, list[dict[str, Any]]]) -> int:
    return sum(len(batch) * len(batch[0]) for batch in rows.values() if batch)


def _write(session: Session, rows: dict[Table, list[dict[str, Any]]]) -> None:
    conn = session.connection()
    if conn.dialect.name == "postgresql" and _values(rows) <= ONE_STATEMENT_VALUES:
        _one_statement(conn, rows)
        return
    for table, batch in rows.items():
        conn.execute(insert(table), batch)


def _one_statement(conn: Connection, rows: dict[Table, list[dict[str, Any]]]) -> None:
    """Every table's rows in one statement: ``INSERT … VALUES (…), (…)`` a table, the others
    in ``WITH`` clauses of the last (PostgreSQL's data-modifying ``WITH``). One round trip and
    one statement for what a request adds (an application's move and its event), instead of a
    pipelined ``executemany`` a table. A constraint that one row checks against another written
    with it holds: the statement's constraint checks run when all of it is written.

    The statement is compiled once for so many rows of each table, and sent as its SQL with
    each value put through its column type's bind processor: SQLAlchemy would otherwise walk
    the whole statement again, parameter by parameter, at every execution to find it in its
    cache. A value its type refuses raises :class:`~sqlalchemy.exc.StatementError`, as
    SQLAlchemy's own execution would, before anything is sent."""
    shape = tuple((table, len(batch)) for table, batch in rows.items())
    sql, processors = _compiled(conn.dialect, shape)
    params: dict[str, Any] = {}
    for t, batch in enumerate(rows.values()):
        for i, row in enumerate(batch):
            # a row's values are in its table's column order (``_row``), as the processors
            for j, (value, process) in enumerate(zip(row.values(), processors[t], strict=True)):
                try:
                    params[f"a{t}_{i}_{j}"] = value if process is None else process(value)
                except Exception as exc:
                    cls = type(exc)
                    raise StatementError(
                        f"({cls.__module__}.{cls.__name__}) {exc}",
                        sql,
                        params,
                        exc,
                        hide_parameters=conn.engine.hide_parameters,
                        ismulti=False,
                    ) from exc
    conn.exec_driver_sql(sql, params)


@lru_cache(maxsize=256)  # one a mix of tables and row counts
def _compiled(dialect: Dialect, shape: tuple[tuple[Table, int], ...]) -> tuple[str, list[list[Any]]]:
    """The SQL of :func:`_one_statement` for so many rows of each table, its parameters named
    by table, row and column position, and each table's bind processors in column order."""
    inserts = []
    processors = []
    for t, (table, count) in enumerate(shape):
        keys = list(column_defaults(table))
        processors.append([table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys])
        inserts.append(
            insert(table).values(
                [
                    {key: bindparam(f"a{t}_{i}_{j}", type_=table.c[key].type) for j, key in enumerate(keys)}
                    for i in range(count)
                ]
            )
        )
    last = inserts[-1]
    if len(inserts) > 1:
        last = last.add_cte(*(ins.cte(f"append_{k}") for k, ins in enumerate(inserts[:-1])))
    return str(last.compile(dialect=dialect)), processors


@event.listens_for(Session, "before_flush")
def _take(session: Session, flush_context: Any, _instances: Any) -> None:
    taken = [obj for obj in session.new if isinstance(obj, AppendOnly)]
    if not taken:
        return
    rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    for obj in taken:
        table = type(obj).__table__
        rows[table].append(_row(obj, table))
        session.expunge(obj)
    if session.new or session.dirty or session.deleted:
        # after the unit of work's rows, which they may refer to, within the flush's own
        # transaction: a flush that fails takes them with it
        flush_context.attributes[_PENDING] = rows
        return
    # the flush ends here (nothing else to write), before it opens a transaction of its own
    if session.info.pop(_COMMITTING, None):
        # the commit's flush (of the transaction or of a savepoint): a failing INSERT fails the
        # commit, and what it was to commit is then only good for a rollback, so it needs no
        # savepoint of its own (the flag goes with this flush, failed or not)
        _write(session, rows)
        return
    # in a savepoint, so that a failing INSERT leaves the session's transaction as it was
    with session.begin_nested():
        _write(session, rows)


@event.listens_for(Session, "before_commit")
def _committing(session: Session) -> None:
    session.info[_COMMITTING] = True


@event.listens_for(Session, "after_transaction_end")  # of the transaction or of a savepoint
@event.listens_for(Session, "after_soft_rollback")
def _committed(session: Session, _transaction: Any) -> None:
    session.info.pop(_COMMITTING, None)


@event.listens_for(Session, "after_flush")
def _put(session: Session, flush_context: Any) -> None:
    rows = flush_context.attributes.pop(_PENDING, None)
    if rows:
        _write(session, rows)
