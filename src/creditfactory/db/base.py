"""Declarative base with one constraint-naming convention (stable names for Alembic)."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from sqlalchemy import MetaData, Table, event
from sqlalchemy.orm import DeclarativeBase, Session, configure_mappers, make_transient_to_detached

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
