"""Declarative base with one constraint-naming convention (stable names for Alembic)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Column, MetaData, Table, bindparam, event, inspect, update
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

T = TypeVar("T")
_CONFIGURED: set[type] = set()

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def filled(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of mapped class ``cls`` holding ``values``, made without its constructor:
    no attribute event for each value (the constructor's cost), nothing tracked as changed. For
    a row about to be inserted as it is, or to be held as already written."""
    if cls not in _CONFIGURED:  # the constructor would configure the mappers first
        configure_mappers()
        _CONFIGURED.add(cls)
    obj: T = cls.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
    obj.__dict__.update(values)  # the instance's dict is its state's
    return obj


_HELD = "creditfactory.held"


def _iso_date(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"a row value of JSON rows is text, a number, a boolean, None or a date, not {value!r}")


#: rows as JSON text: compact, dates as ISO dates (``json_rows``)
_ROWS_JSON = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_iso_date
).encode


def json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows (dicts of plain values: text, finite numbers, booleans, ``None``, dates) as one JSON
    parameter, for PostgreSQL to expand with ``json_to_recordset(CAST(:p AS JSON)) AS r(<column>
    <type>, …)``: one statement text whatever the number of rows, as arrays would give, with one
    parameter instead of one a column; psycopg adapts a string without the work an array's
    elements take, and the server reads it faster than so many arrays. The rows come out in the
    order given."""
    return _ROWS_JSON(rows)


@cache
def column_defaults(table: Table) -> dict[str, Any]:
    """What each column of ``table`` takes when a row leaves it out, its generated key aside:
    its default when that is a plain value, else ``NULL``. Spread a row's values over it to
    insert, or hold, every column."""
    return {
        c.key: (c.default.arg if c.default is not None and c.default.is_scalar else None)
        for c in table.columns
        if not (c.primary_key and c.autoincrement)
    }


def hold(session: Session, obj: T) -> T:
    """Put ``obj`` (a :func:`filled` instance whose row the caller has just inserted with a
    statement of its own) in the session as a loaded row: its values become its unchanged state,
    its id its identity key. A rollback of the transaction that wrote the row, or of a savepoint
    around it, takes it out of the session again, as it would a row the unit of work inserted."""
    make_transient_to_detached(obj)
    session.add(obj)
    during = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_HELD, []).append((during, obj))
    return obj


@event.listens_for(Session, "after_soft_rollback")
def _forget_held(session: Session, previous_transaction: Any) -> None:
    held = session.info.get(_HELD)
    if not held:
        return
    kept = []
    for during, obj in held:
        t = during
        while t is not None and t is not previous_transaction:
            t = t.parent
        if t is None:  # written outside what was rolled back
            kept.append((during, obj))
        elif obj in session:
            session.expunge(obj)
    session.info[_HELD] = kept


@event.listens_for(Session, "after_commit")
def _settle_held(session: Session) -> None:
    session.info.pop(_HELD, None)  # committed: rows like any other


def write_changes(session: Session, obj: Any, *, at_commit: Callable[[], Exception] | None = None) -> bool:
    """Write what changed on ``obj`` now: one ``UPDATE … SET <the changed columns>, version =
    version + 1 WHERE id = … AND version = <as read>`` on the session's connection, the new
    values becoming the object's unchanged state. It is what the unit of work's flush would
    write for a row of a mapper with a version column, with about a third of the work. ``False``
    when no row had the version read: another transaction changed the row meanwhile.

    The flush writes instead (``False`` too when it finds the version changed) when ``obj`` is
    not a loaded or held row of a versioned mapper with one key column, when its version is not
    loaded, when a change is not of a column, inside a savepoint (whose rollback expires what
    the flush wrote, and only that), or when anything else waits for the unit of work: other
    changed or deleted rows, or new rows other than those written apart at the flush
    (``written_apart``, see :mod:`creditfactory.db.append_only`), which may have to go first.

    With ``at_commit`` (what a refusal raises), the ``UPDATE`` is not sent now but carried by
    the transaction's commit (``append_only.carry``: on PostgreSQL in the commit's own
    statement), and the new values are the object's unchanged state at once; a change by
    another transaction meanwhile then fails the commit with ``at_commit()``. For a row no
    other request can change before the commit (one this transaction inserted) and that
    nothing reads again in SQL nor changes but through this function before it; the flush's
    fallback writes at once all the same. A commit carries one such write a table: another
    carried write of the table, or a write of the row whose change is carried, sends the
    earlier at once first (not inside a savepoint, whose rollback would take it: that raises)."""
    from creditfactory.db import append_only

    state = inspect(obj)
    table = state.mapper.local_table
    earlier = append_only.carried_under(session, table)
    if earlier is not None:
        same_row = (
            state.identity is not None
            and earlier.params[f"{_carried_prefix(table)}_key"] == state.identity[0]
        )
        carrying = at_commit is not None and session.get_nested_transaction() is None
        if same_row or carrying:
            # the row's change carried before goes first (this one follows its version; not
            # inside a savepoint, which raises), as does another row's when this one is carried
            # too (it would name the same parameters)
            append_only.send_carried(session, table)
    changed = state.committed_state
    versioned = _versioned(state.mapper)
    if (
        versioned is None
        or not state.persistent
        or not changed
        or not changed.keys() <= versioned.columns.keys()
        or versioned.version_key in state.unloaded
        or session.get_nested_transaction() is not None
        or session.deleted
        or any(o is not obj for o in session.dirty)
        or any(not getattr(o, "written_apart", False) for o in session.new)
    ):
        try:
            session.flush()
        except StaleDataError:
            return False
        return True
    values = state.dict
    read = values[versioned.version_key]
    # the carried UPDATE names its parameters after the table; the one sent now, plainly
    prefix = "" if at_commit is None else _carried_prefix(table)
    params = {f"{prefix}{versioned.columns[key].key}": values[key] for key in changed}
    params[f"{prefix}{versioned.version_column}"] = read + 1
    params[f"{prefix}_key"], params[f"{prefix}_read"] = state.identity[0], read
    if at_commit is not None:
        statement = _carried_update(
            state.mapper, tuple(sorted(versioned.columns[key].key for key in changed))
        )
        last = append_only.LastWrite(statement=statement, params=params, rows=1, refused=at_commit)
        append_only.carry(session, last, key=table)
    elif session.connection().execute(versioned.update, params).rowcount != 1:
        return False
    values[versioned.version_key] = read + 1
    # the row as written is the object's unchanged state (what the flush does after its UPDATE)
    state._commit_all(values, session.identity_map)
    return True


def _carried_prefix(table: Table) -> str:
    """What a carried ``UPDATE``'s parameters begin with: the commit's statement may carry
    writes of other tables."""
    return f"{table.name}_"


@cache  # one a mapper and set of columns changed
def _carried_update(mapper: Mapper[Any], columns: tuple[str, ...]) -> Any:
    """The ``UPDATE`` of :func:`write_changes` carried by the commit, setting ``columns`` and
    the version, each value a parameter named after the table (:func:`_carried_prefix`)."""
    versioned = _versioned(mapper)
    assert versioned is not None
    prefix = _carried_prefix(mapper.local_table)
    (key,) = mapper.primary_key
    version = mapper.version_id_col
    values = {name: bindparam(f"{prefix}{name}") for name in (*columns, versioned.version_column)}
    statement = (
        update(mapper.local_table)
        .where(key == bindparam(f"{prefix}_key"), version == bindparam(f"{prefix}_read"))
        .values(values)
    )
    return statement


class _Versioned(NamedTuple):
    columns: dict[str, Column[Any]]  # attribute key -> its one column
    version_key: str  # the version's attribute
    version_column: str  # and its column
    update: Any  # UPDATE <table> WHERE <key> = :_key AND <version> = :_read


@cache
def _versioned(mapper: Mapper[Any]) -> _Versioned | None:
    """What :func:`write_changes` needs of a mapper, worked out once: its attributes that are
    each one column of its table, its version, and its ``UPDATE`` (the columns set are the
    parameters given besides ``_key`` and ``_read``); ``None`` when the mapper has no version
    column or not one key column."""
    version = mapper.version_id_col
    if version is None or len(mapper.primary_key) != 1:
        return None
    (key,) = mapper.primary_key
    return _Versioned(
        columns={
            prop.key: prop.columns[0]
            for prop in mapper.column_attrs
            if len(prop.columns) == 1 and isinstance(prop.columns[0], Column)
        },
        version_key=mapper.get_property_by_column(version).key,
        version_column=version.key,
        update=update(mapper.local_table).where(key == bindparam("_key"), version == bindparam("_read")),
    )
