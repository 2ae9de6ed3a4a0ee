"""Column types that behave the same on SQLite and PostgreSQL.

* :class:`ScaledInt` keeps a ``Decimal`` as a ``BIGINT`` at a declared scale: amounts in fen
  (scale 2), rates at scale 8. It refuses floats and any value with more places than the scale,
  so nothing is rounded silently at the database edge. (A ``Numeric`` column on SQLite goes
  through float and loses digits.)
* :class:`UTCDateTime` stores aware UTC datetimes and refuses naive ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Enum, String
from sqlalchemy.types import TypeDecorator

from creditfactory.money import from_scaled, to_scaled

#: What a BIGINT column holds, on SQLite and PostgreSQL alike.
BIGINT_RANGE = (-(2**63), 2**63 - 1)


class ScaledInt(TypeDecorator[Decimal]):
    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"ScaledInt takes Decimal or int, got {type(value).__name__} {value!r}")
        scaled = to_scaled(Decimal(value), self.scale)
        if not BIGINT_RANGE[0] <= scaled <= BIGINT_RANGE[1]:
            raise ValueError(f"{value} at scale 10^-{self.scale} does not fit a BIGINT column")
        return scaled

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return from_scaled(int(value), self.scale)


Money = ScaledInt(2)
Rate = ScaledInt(8)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"UTCDateTime needs an aware datetime, got {value!r}")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column(enum_cls: type[StrEnum], length: int = 32) -> Enum:
    """A string enum stored as its value (not a native PostgreSQL enum: easy to migrate)."""
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


ShortText = String(64)
