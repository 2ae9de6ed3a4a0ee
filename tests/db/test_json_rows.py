"""Rows in one JSON parameter (``db.base.json_rows``), as PostgreSQL's ``json_to_recordset``
reads them back: every value as it was, the rows in the order given."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from creditfactory.db.base import json_rows
from creditfactory.db.engine import create_engine

ROWS: list[dict[str, Any]] = [
    {"id": 9_007_199_254_740_993, "key": 'a"b\\c\n', "flag": True, "day": date(2025, 7, 1)},
    {"id": 1, "key": "王小明 ☎", "flag": False, "day": None},
    {"id": -2, "key": "", "flag": None, "day": date(1999, 12, 31)},
]


def test_plain_values_and_dates_as_json_in_the_order_given() -> None:
    assert json.loads(json_rows(ROWS)) == [
        {**row, "day": None if row["day"] is None else row["day"].isoformat()} for row in ROWS
    ]
    assert json_rows([]) == "[]"
    assert "王小明" in json_rows(ROWS)  # as it is, not escaped


@pytest.mark.parametrize(
    "value",
    [datetime(2025, 7, 1, 9, 30, tzinfo=UTC), Decimal("1.50"), {1, 2}],
    ids=["datetime", "decimal", "set"],
)
def test_a_value_of_another_type_is_refused(value: object) -> None:
    """A datetime is not a date here (its time would be lost), nor is a Decimal a number (its
    scale would be): a ``TypeError`` names the value. A number that is not finite, which
    PostgreSQL's JSON refuses, is a ``ValueError``."""
    with pytest.raises((TypeError, ValueError), match="JSON rows|JSON compliant"):
        json_rows([{"v": value}])


@pytest.mark.postgres
def test_postgresql_reads_back_every_value_in_order(postgres_server: Any) -> None:
    url = postgres_server.create_database()
    engine: Engine = create_engine(url)
    try:
        with engine.connect() as conn:
            got = conn.execute(
                text(
                    "SELECT * FROM json_to_recordset(CAST(:rows AS JSON)) "
                    "AS r(id BIGINT, key VARCHAR, flag BOOLEAN, day DATE)"
                ),
                {"rows": json_rows(ROWS)},
            ).all()
    finally:
        engine.dispose()
        postgres_server.drop_database(url)  # a database of its own: not left behind
    assert [tuple(r) for r in got] == [tuple(row.values()) for row in ROWS]
