"""Reads of at most one row each, sent together (``db.reads.together``): on PostgreSQL one
statement, elsewhere one a read; the same answers either way, each as its own read gives it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event

from creditfactory.db.engine import create_engine
from creditfactory.db.reads import together
from creditfactory.db.types import Money

META = sa.MetaData()
OFFERS = sa.Table(
    "test_reads_offer",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.String(10)),
    sa.Column("amount", Money),  # fen at rest, Decimal read
    sa.Column("expiry", sa.Date()),
)
PEOPLE = sa.Table(
    "test_reads_person",
    META,
    sa.Column("customer_id", sa.String(10), primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("note", sa.String(20)),
)

NEWEST_OFFER = (
    sa.select(OFFERS.c.id, OFFERS.c.amount, OFFERS.c.expiry)
    .where(OFFERS.c.customer_id == sa.bindparam("customer_id"), OFFERS.c.expiry >= sa.bindparam("on"))
    .order_by(OFFERS.c.expiry.desc())
    .limit(1)
)
OFFER_COUNT = sa.select(sa.func.count()).where(OFFERS.c.customer_id == sa.bindparam("customer_id"))
PERSON = sa.select(PEOPLE.c.name, PEOPLE.c.note).where(PEOPLE.c.customer_id == sa.bindparam("customer_id"))
READS = (NEWEST_OFFER, OFFER_COUNT, PERSON)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    META.drop_all(engine)
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(OFFERS),
            [
                {"id": 1, "customer_id": "C1", "amount": Decimal("5000.00"), "expiry": date(2025, 7, 31)},
                {"id": 2, "customer_id": "C1", "amount": Decimal("8000.50"), "expiry": date(2025, 9, 30)},
                {"id": 3, "customer_id": "C2", "amount": Decimal("100.00"), "expiry": date(2025, 6, 30)},
            ],
        )
        conn.execute(sa.insert(PEOPLE), [{"customer_id": "C1", "name": "王小明", "note": None}])
    yield engine
    META.drop_all(engine)
    engine.dispose()


def _read(engine: Engine, customer_id: str, on: date) -> tuple[list[Any], list[str]]:
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.connect() as conn:
            answers = together(conn, READS, {"customer_id": customer_id, "on": on})
            alone = [conn.execute(read, {"customer_id": customer_id, "on": on}).first() for read in READS]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # the answers are each read's own, as its statement alone gives it
    assert answers == [None if row is None else tuple(row) for row in alone]
    return answers, sent[: len(sent) - len(READS)]


def test_each_read_answers_its_row_typed_as_it_types_it(engine: Engine) -> None:
    answers, sent = _read(engine, "C1", date(2025, 7, 1))
    assert answers == [(2, Decimal("8000.50"), date(2025, 9, 30)), (2,), ("王小明", None)]
    assert len(sent) == (1 if engine.dialect.name == "postgresql" else len(READS))


def test_a_read_without_a_row_is_none_and_an_aggregate_always_has_one(engine: Engine) -> None:
    """A row whose columns are all NULL is a row: only a read that finds none is ``None``."""
    assert _read(engine, "C2", date(2025, 7, 1))[0] == [None, (1,), None]
    assert _read(engine, "C9", date(2025, 7, 1))[0] == [None, (0,), None]
    with engine.begin() as conn:
        conn.execute(sa.insert(PEOPLE).values(customer_id="C3", name=None, note=None))
    assert _read(engine, "C3", date(2025, 7, 1))[0] == [None, (0,), (None, None)]


def test_a_read_of_more_than_one_row_is_refused_on_every_database(engine: Engine) -> None:
    from sqlalchemy.exc import MultipleResultsFound

    every_offer = sa.select(OFFERS.c.id).where(OFFERS.c.customer_id == sa.bindparam("customer_id"))
    with engine.connect() as conn, pytest.raises(MultipleResultsFound):
        together(conn, (PERSON, every_offer), {"customer_id": "C1"})


def test_a_value_and_reads_after_it_in_one_statement_on_postgresql(engine: Engine) -> None:
    """``after``: a data-modifying ``WITH`` clause's value and the reads, one statement; the
    reads do not see the row the clause adds (one snapshot), and SQLite is refused."""
    from creditfactory.db.reads import after

    added = (
        sa.select(
            sa.insert(PEOPLE)
            .values(customer_id=sa.bindparam("new_id"), name="李四")
            .returning(PEOPLE.c.customer_id)
            .cte("added")
            .c.customer_id
        )
    ).scalar_subquery()
    with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            with pytest.raises(ValueError, match="PostgreSQL"):
                after(conn, added, [PERSON], {"customer_id": "C1", "new_id": "C5"})
            return
        first, answers = after(conn, added, [PERSON, OFFER_COUNT], {"customer_id": "C1", "new_id": "C5"})
        assert (first, answers) == ("C5", [("王小明", None), (2,)])
        _, unseen = after(conn, added, [PERSON], {"customer_id": "C6", "new_id": "C6"})
        assert unseen == [None]  # added by the same statement: not in its snapshot
        assert conn.execute(PERSON, {"customer_id": "C6"}).one() == ("李四", None)
