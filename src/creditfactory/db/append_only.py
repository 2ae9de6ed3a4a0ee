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

**Last writes carried by the commit.** :func:`commit_with` commits with one more ``UPDATE``
(a :class:`LastWrite`: a request's stored response, say) written by the commit's flush, and
:func:`carry` gives the session's next commit one to write (``db.base.write_changes(...,
at_commit=...)``: an application's decided move): on PostgreSQL in the statement of the rows
only ever added (their ``INSERT`` s and each ``UPDATE`` in ``WITH`` clauses, the statement
counting the rows each ``UPDATE`` changed), so that the commit sends one statement instead of
one more a write; else after them, one by one. A count other than a write's ``rows`` raises its
``refused()`` and fails the commit, as an ``UPDATE`` that found nothing would have failed just
before it. Only the transaction's own commit writes what it carries, never a savepoint's; the
end of the transaction, committed or not, forgets it.

The listeners are on :class:`~sqlalchemy.orm.Session` itself: every session of the process
writes these rows the same way.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    Connection,
    Dialect,
    Table,
    Update,
    bindparam,
    event,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from creditfactory.db.base import column_defaults, filled

_PENDING = "creditfactory.append_only"
_COMMITTING = "creditfactory.append_only.committing"
_LAST = "creditfactory.append_only.last_write"
_KEYS = "creditfactory.append_only.last_write_keys"
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


@dataclass(frozen=True, slots=True)
class LastWrite:
    """An ``UPDATE`` a commit carries (:func:`commit_with`, :func:`carry`). ``statement`` names
    each of its values with a ``bindparam`` (not ``a<digits>_<digits or s>_<digits>``, the
    names of the rows written with it, nor a name of another write the commit carries), none
    expanding; ``params`` gives them. Built once, the statement is compiled once (with each mix
    of rows and writes it goes with). It must change exactly ``rows`` rows, or ``refused()`` is
    raised."""

    statement: Update
    params: Mapping[str, Any]
    rows: int
    refused: Callable[[], Exception]


def commit_with(session: Session, last: LastWrite | None) -> None:
    """``session.commit()``, the commit's flush writing ``last`` as well, after any write
    :func:`carry` gave it (see the module's docstring): with the rows only ever added in one
    statement on PostgreSQL, else after what the flush writes. A commit that fails (a write's
    refusal, or anything else) is rolled back here: what it was to commit is never left to be
    committed without it."""
    if last is not None:
        carry(session, last)
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(_LAST, None)
        session.info.pop(_KEYS, None)


def carry(session: Session, last: LastWrite, *, key: object = None) -> None:
    """Give the session's next commit ``last`` to write (see the module's docstring). Until
    then the database has the row as it was: a read of it in SQL meanwhile reads it so. The
    end of the session's transaction, committed or not, forgets it. A write carried under a
    ``key`` (a table's, say) that another carried write has already is written at once first:
    a commit carries one a key (the later write may depend on the earlier, or name the same
    parameters). Only the transaction's own commit writes them, never a savepoint's: a write
    is not carried inside a savepoint."""
    if session.get_nested_transaction() is not None:
        raise RuntimeError("a write is carried by the transaction's commit, not inside a savepoint")
    session.connection()  # the transaction begins, if it had not: its end forgets the write
    if key is not None:
        send_carried(session, key)
        session.info.setdefault(_KEYS, {})[key] = last
    session.info.setdefault(_LAST, []).append(last)


def carried_under(session: Session, key: object) -> LastWrite | None:
    """The write carried under ``key``, if any."""
    found: LastWrite | None = session.info.get(_KEYS, {}).get(key)
    return found


def send_carried(session: Session, key: object) -> None:
    """Write at once the write carried under ``key``, if any: the commit carries it no longer.
    Not inside a savepoint, whose rollback would take it."""
    last = session.info.get(_KEYS, {}).get(key)
    if last is None:
        return
    if session.get_nested_transaction() is not None:
        raise RuntimeError(
            "a write carried by the transaction's commit cannot be sent inside a savepoint: "
            "write its row again outside the savepoint"
        )
    del session.info[_KEYS][key]
    session.info[_LAST].remove(last)
    write_now(session.connection(), last)


def carried(session: Session) -> list[LastWrite]:
    """The writes the session's next commit carries, in the order given."""
    return list(session.info.get(_LAST, ()))


def _commits_lasts(session: Session) -> tuple[LastWrite, ...]:
    """The carried writes, taken by the transaction's own commit: none at a savepoint's (a
    savepoint's release runs ``before_commit`` too)."""
    if not session.info.get(_LAST) or session.get_nested_transaction() is not None:
        return ()
    session.info.pop(_KEYS, None)
    return tuple(session.info.pop(_LAST))


def write_now(conn: Connection, last: LastWrite) -> None:
    """``last`` written alone, at once: what a commit does with it when nothing else is written."""
    _check(last, conn.execute(last.statement, dict(last.params)).rowcount)


def _check(last: LastWrite, changed: int) -> None:
    if changed != last.rows:
        raise last.refused()


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


def _write(
    session: Session, rows: dict[Table, list[dict[str, Any]]], lasts: tuple[LastWrite, ...] = ()
) -> None:
    conn = session.connection()
    if (
        (rows or len(lasts) > 1)
        and conn.dialect.name == "postgresql"
        and _values(rows) <= ONE_STATEMENT_VALUES
    ):
        _one_statement(conn, rows, lasts)
        return
    for table, batch in rows.items():
        conn.execute(insert(table), batch)
    for last in lasts:
        write_now(conn, last)


def _one_statement(
    conn: Connection, rows: dict[Table, list[dict[str, Any]]], lasts: tuple[LastWrite, ...] = ()
) -> None:
    """Every table's rows in one statement: ``INSERT … VALUES (…), (…)`` a table, the others
    in ``WITH`` clauses of the last (PostgreSQL's data-modifying ``WITH``). One round trip and
    one statement for what a request adds (an application's move and its event), instead of a
    pipelined ``executemany`` a table. A constraint that one row checks against another written
    with it holds: the statement's constraint checks run when all of it is written. With
    ``lasts`` (writes the commit carries), every ``INSERT`` is a ``WITH`` clause, as is each
    ``UPDATE``, and the statement counts the rows each changed.

    The statement is compiled once for so many rows of each table, and sent as its SQL with
    each value put through its column type's bind processor: SQLAlchemy would otherwise walk
    the whole statement again, parameter by parameter, at every execution to find it in its
    cache. A value its type refuses raises :class:`~sqlalchemy.exc.StatementError`, as
    SQLAlchemy's own execution would, before anything is sent."""
    shape = []
    columns_of = []
    for table, batch in rows.items():
        # a row's values are in its table's column order (``_row``); a column that is NULL in
        # every row and has no default is left out (NULL all the same), and a value the same
        # in every row of several is sent once: fewer parameters (psycopg translates a
        # statement of more than 50 again at every execution)
        columns = list(zip(*[row.values() for row in batch], strict=True))
        count, nullable = len(batch), _left_out_when_null(table)
        kept = tuple(j for j, col in enumerate(columns) if j not in nullable or col.count(None) != count)
        shared = tuple(count > 1 and _same(columns[j]) for j in kept)
        shape.append((table, count, kept, shared))
        columns_of.append(columns)
    sql, processors, last_processors = _compiled(
        conn.dialect, tuple(shape), tuple(w.statement for w in lasts)
    )
    params: dict[str, Any] = {}
    try:
        for t, (_, _, kept, shared) in enumerate(shape):
            columns = columns_of[t]
            for k, (j, once, process) in enumerate(zip(kept, shared, processors[t], strict=True)):
                if once:
                    value = columns[j][0]
                    params[f"a{t}_s_{k}"] = value if process is None else process(value)
                    continue
                for i, value in enumerate(columns[j]):
                    params[f"a{t}_{i}_{k}"] = value if process is None else process(value)
        for last in lasts:
            for name, value in last.params.items():
                process = last_processors.get(name)
                params[name] = value if process is None else process(value)
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
    if not lasts:
        conn.exec_driver_sql(sql, params)
        return
    given = [name for last in lasts for name in last.params]
    if len(set(given)) != len(given):
        raise ValueError(f"the last writes of a commit name the same parameter: {sorted(given)}")
    if last_processors.keys() != set(given):  # a literal or a name not given
        raise ValueError(
            f"a last write's parameters must be every value of its statement: they have "
            f"{sorted(last_processors)}, given {sorted(given)}"
        )
    for last, changed in zip(lasts, conn.exec_driver_sql(sql, params).one(), strict=True):
        _check(last, changed)


def _same(values: tuple[Any, ...]) -> bool:
    """Every value the first, of its type and written as it is: ``1`` is not ``True``,
    ``Decimal("1.0")`` not ``Decimal("1.00")``, ``{"a": 1}`` not ``{"a": 1.0}``, nor one time
    the same instant in another zone."""
    first, count = values[0], len(values)
    return (
        list(map(type, values)).count(type(first)) == count
        and list(map(repr, values)).count(repr(first)) == count
    )


@lru_cache(maxsize=256)  # one a mix of tables, row counts, columns sent and shared (and last writes)
def _compiled(
    dialect: Dialect,
    shape: tuple[tuple[Table, int, tuple[int, ...], tuple[bool, ...]], ...],
    lasts: tuple[Update, ...] = (),
) -> tuple[str, list[list[Any]], dict[str, Any]]:
    """The SQL of :func:`_one_statement` for so many rows of each table, with the columns sent
    (positions in the table's column order) and which of them are one value for every row, and
    ``lasts``: its parameters named by table, row and position among the columns sent
    (``a<t>_<row>_<k>``, ``a<t>_s_<k>`` for a value shared by the rows), each table's bind
    processors in that order, and the last writes' by parameter name."""
    inserts = []
    processors = []
    for t, (table, count, kept, shared) in enumerate(shape):
        every = list(column_defaults(table))
        keys = [every[j] for j in kept]
        processors.append([table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys])
        inserts.append(
            insert(table).values(
                [
                    {
                        key: bindparam(
                            f"a{t}_s_{j}" if shared[j] else f"a{t}_{i}_{j}", type_=table.c[key].type
                        )
                        for j, key in enumerate(keys)
                    }
                    for i in range(count)
                ]
            )
        )
    if lasts:
        changed = [last.returning(literal_column("1")).cte(f"last_write_{n}") for n, last in enumerate(lasts)]
        counted = select(*(select(func.count()).select_from(c).scalar_subquery() for c in changed))
        compiled = counted.add_cte(*(ins.cte(f"append_{k}") for k, ins in enumerate(inserts))).compile(
            dialect=dialect
        )
        last_processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
            if not _ROW_PARAM.fullmatch(name)
        }
        return str(compiled), processors, last_processors
    final = inserts[-1]
    if len(inserts) > 1:
        final = final.add_cte(*(ins.cte(f"append_{k}") for k, ins in enumerate(inserts[:-1])))
    return str(final.compile(dialect=dialect)), processors, {}


@cache  # one a table
def _left_out_when_null(table: Table) -> frozenset[int]:
    """The positions (in ``column_defaults`` order) of the columns without a default, the
    server's or SQLAlchemy's, whose type writes ``None`` as NULL: a NULL left out of the
    ``INSERT`` is a NULL all the same (of a column with a default, it would be the default; a
    ``JSON`` column writes ``None`` as JSON's ``null``)."""
    return frozenset(
        j
        for j, key in enumerate(column_defaults(table))
        if table.c[key].server_default is None
        and table.c[key].default is None
        and not table.c[key].type.should_evaluate_none
    )


#: the parameters of the rows only ever added (``a<table>_<row>_<column>``, ``a<table>_s_<column>``)
_ROW_PARAM = re.compile(r"a\d+_(?:\d+|s)_\d+")


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
        # savepoint of its own (the flag goes with this flush, failed or not); the commit's
        # last writes go with the rows
        _write(session, rows, _commits_lasts(session))
        return
    # in a savepoint, so that a failing INSERT leaves the session's transaction as it was
    with session.begin_nested():
        _write(session, rows)


@event.listens_for(Session, "before_commit")
def _committing(session: Session) -> None:
    session.info[_COMMITTING] = True
    if session.info.get(_LAST) and session.get_nested_transaction() is None:
        # the commit's flush, here, so that it carries the last writes (``_take``, ``_put``); a
        # flush that writes nothing leaves them to be written without rows
        session.flush()
        lasts = _commits_lasts(session)
        if lasts:
            _write(session, {}, lasts)


@event.listens_for(Session, "after_transaction_end")  # of the transaction or of a savepoint
@event.listens_for(Session, "after_soft_rollback")
def _committed(session: Session, _transaction: Any) -> None:
    session.info.pop(_COMMITTING, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_carried(session: Session, transaction: Any) -> None:
    # a savepoint's end leaves them: they are for the transaction's own commit
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_LAST, None)  # committed, or gone with the transaction
        session.info.pop(_KEYS, None)


@event.listens_for(Session, "after_flush")
def _put(session: Session, flush_context: Any) -> None:
    rows = flush_context.attributes.pop(_PENDING, None)
    # after the unit of work's statements of the commit's flush: its last writes, with any rows
    lasts = _commits_lasts(session) if session.info.get(_COMMITTING) else ()
    if rows or lasts:
        _write(session, rows or {}, lasts)
