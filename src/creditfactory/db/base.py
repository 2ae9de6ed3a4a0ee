"""Declarative base with one constraint-naming convention (stable names for Alembic)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, configure_mappers

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
