"""Column types at the database edge: ``ScaledInt`` for money and rates, ``UTCDateTime`` for instants.

Each test writes through a real engine (SQLite, and PostgreSQL when available) into a table of
its own and reads the value back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from creditfactory.db.engine import create_engine
from creditfactory.db.types import ScaledInt, UTCDateTime

META = sa.MetaData()
ROWS = sa.Table(
    "test_db_types",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", ScaledInt(2)),
    sa.Column("rate", ScaledInt(8)),
    sa.Column("at", UTCDateTime()),
)

BEIJING = timezone(timedelta(hours=8))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    META.drop_all(engine)
    META.create_all(engine)
    yield engine
    META.drop_all(engine)
    engine.dispose()


def store(engine: Engine, **values: object) -> dict[str, object]:
    """Insert one row and read it back through a new connection."""
    with engine.begin() as conn:
        row_id = conn.execute(sa.insert(ROWS).values(**values)).inserted_primary_key[0]
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(ROWS).where(ROWS.c.id == row_id)).mappings().one())


def refused(engine: Engine, **values: object) -> BaseException:
    """The reason the row was refused; checks that nothing was stored."""
    with pytest.raises(StatementError) as caught:
        with engine.begin() as conn:
            conn.execute(sa.insert(ROWS).values(**values))
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(ROWS)) == 0
    assert caught.value.orig is not None
    return caught.value.orig


class TestScaledIntRoundTrip:
    @pytest.mark.parametrize(
        "amount",
        [
            "12345678901234567.89",  # what a Numeric column on SQLite turns into ...568.00
            "92233720368547758.07",  # the largest amount a BIGINT holds in fen
            "-92233720368547758.08",  # the smallest
            "0.01",
            "-0.01",
            "0.00",
        ],
    )
    def test_amounts_come_back_exactly(self, engine: Engine, amount: str) -> None:
        back = store(engine, amount=Decimal(amount))["amount"]
        assert isinstance(back, Decimal)
        assert str(back) == amount

    def test_rates_keep_eight_places(self, engine: Engine) -> None:
        assert str(store(engine, rate=Decimal("0.0435"))["rate"]) == "0.04350000"
        assert str(store(engine, rate=Decimal("92233720368.54775807"))["rate"]) == "92233720368.54775807"

    def test_a_value_comes_back_at_the_column_scale(self, engine: Engine) -> None:
        assert str(store(engine, amount=Decimal("5"))["amount"]) == "5.00"
        assert str(store(engine, amount=7)["amount"]) == "7.00"
        assert str(store(engine, amount=Decimal("1.5000"))["amount"]) == "1.50"

    def test_missing_stays_missing(self, engine: Engine) -> None:
        assert store(engine, amount=None)["amount"] is None

    def test_amounts_sum_exactly_in_sql(self, engine: Engine) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(ROWS), [{"amount": Decimal("0.10")}, {"amount": Decimal("0.20")}] * 5)
        with engine.connect() as conn:
            total = conn.scalar(sa.select(sa.func.sum(ROWS.c.amount)))
        assert total == Decimal("1.50")
        assert isinstance(total, Decimal)


class TestScaledIntRefuses:
    def test_floats(self, engine: Engine) -> None:
        reason = refused(engine, amount=0.1)
        assert isinstance(reason, TypeError)
        assert "float" in str(reason)

    def test_more_places_than_the_scale(self, engine: Engine) -> None:
        reason = refused(engine, amount=Decimal("1.005"))
        assert isinstance(reason, ValueError)
        assert "more than 2 decimal places" in str(reason)

    def test_more_places_than_a_rate_holds(self, engine: Engine) -> None:
        assert isinstance(refused(engine, rate=Decimal("0.043500001")), ValueError)

    @pytest.mark.parametrize("value", [True, "1.00", Decimal("NaN"), Decimal("Infinity")])
    def test_values_that_are_not_numbers(self, engine: Engine, value: object) -> None:
        assert isinstance(refused(engine, amount=value), TypeError | ValueError)

    @pytest.mark.parametrize("amount", ["92233720368547758.08", "-92233720368547758.09"])
    def test_amounts_beyond_bigint_the_same_way_on_every_database(self, engine: Engine, amount: str) -> None:
        reason = refused(engine, amount=Decimal(amount))
        assert isinstance(reason, ValueError)
        assert "BIGINT" in str(reason)


class TestUTCDateTime:
    def test_refuses_naive_datetimes(self, engine: Engine) -> None:
        reason = refused(engine, at=datetime(2025, 7, 1, 10, 0))
        assert isinstance(reason, ValueError)
        assert "aware" in str(reason)

    def test_refuses_a_date(self, engine: Engine) -> None:
        assert isinstance(refused(engine, at=datetime(2025, 7, 1).date()), ValueError)

    def test_returns_the_same_instant_in_utc(self, engine: Engine) -> None:
        back = store(engine, at=datetime(2025, 7, 1, 10, 0, 0, 123456, tzinfo=BEIJING))["at"]
        assert isinstance(back, datetime)
        assert back.tzinfo is UTC
        assert back == datetime(2025, 7, 1, 2, 0, 0, 123456, tzinfo=UTC)
        assert (back.hour, back.microsecond) == (2, 123456)

    def test_missing_stays_missing(self, engine: Engine) -> None:
        assert store(engine, at=None)["at"] is None

    def test_compares_instants_not_wall_clocks(self, engine: Engine) -> None:
        store(engine, at=datetime(2025, 7, 1, 9, 30, tzinfo=BEIJING))  # 01:30 UTC
        store(engine, at=datetime(2025, 7, 1, 2, 30, tzinfo=UTC))
        cutoff = datetime(2025, 7, 1, 10, 0, tzinfo=BEIJING)  # 02:00 UTC
        with engine.connect() as conn:
            before = conn.scalars(sa.select(ROWS.c.at).where(ROWS.c.at < cutoff)).all()
        assert before == [datetime(2025, 7, 1, 1, 30, tzinfo=UTC)]
