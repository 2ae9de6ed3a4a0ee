"""Database ground: base, column types, engine, unit of work, command log, migrations."""

from creditfactory.db.base import Base
from creditfactory.db.engine import create_engine, is_sqlite, session_factory
from creditfactory.db.types import Money, Rate, ScaledInt, UTCDateTime, enum_column
from creditfactory.db.uow import UnitOfWork, flush_pending

__all__ = [
    "Base",
    "Money",
    "Rate",
    "ScaledInt",
    "UTCDateTime",
    "UnitOfWork",
    "create_engine",
    "enum_column",
    "flush_pending",
    "is_sqlite",
    "session_factory",
]
