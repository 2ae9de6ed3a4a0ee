"""The reference data's stamp and what is kept under it (``creditfactory.db.reference``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select, text, update

from creditfactory.db import reference
from creditfactory.db.engine import create_engine
from creditfactory.decisioning import records
from creditfactory.decisioning.records import strategy_table


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    built = create_engine(db_url)
    yield built
    reference.forget(built)
    built.dispose()


def stamp(conn: Any) -> str | None:
    value: str | None = conn.execute(select(reference.STAMP)).scalar()
    return value


STRATEGY = {
    "name": "s",
    "version": 1,
    "sha256": "0" * 64,
    "source": "test",
    "role": "champion",
    "share_bp": 10_000,
    "mode": "live",
    "active": True,
}


def strategy_row(**changes: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    at = datetime(2026, 12, 2, tzinfo=UTC)
    return {**STRATEGY, "text": "x", "published_at": at, "published_by": "ra-1", **changes}


class Reads:
    """Counts the reads of the strategies' table on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM decisioning_strategy" in statement:
            self.n += 1


def names(conn: Any) -> tuple[str, ...]:
    def load() -> tuple[str, ...]:
        return tuple(conn.execute(select(strategy_table.c.name).order_by(strategy_table.c.id)).scalars())

    return reference.cached(conn, "names", load)


def noted(conn: Any) -> None:
    reference.note(conn, stamp(conn))


def test_every_write_of_a_reference_table_raises_the_stamp_and_others_do_not(engine: Engine) -> None:
    """Whether or not the stamp's row is there at first (emptied by another test, say)."""
    with engine.begin() as conn:
        conn.execute(insert(strategy_table), strategy_row())
        after_insert = stamp(conn)
        conn.execute(update(strategy_table).values(share_bp=5_000))
        after_update = stamp(conn)
        conn.execute(strategy_table.delete())
        after_delete = stamp(conn)
        conn.execute(text("UPDATE jobs_business_date SET version = version"))  # not reference data
        assert stamp(conn) == after_delete
    seen = [after_insert, after_update, after_delete]
    assert all(s is not None for s in seen)
    versions = [int(s.split(":")[1]) for s in seen]  # type: ignore[union-attr]
    assert versions == sorted(set(versions))  # each write raised it
    assert len({s.split(":")[0] for s in seen}) == 1  # type: ignore[union-attr]


def test_a_value_is_read_once_under_a_stamp_and_again_after_a_change(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(strategy_table), strategy_row(name="first"))
    reads = Reads(engine)
    for _ in range(3):
        with engine.begin() as conn:
            noted(conn)
            assert names(conn) == ("first",)
    assert reads.n == 1
    with engine.begin() as other:  # another server, or the command line, publishes
        other.execute(insert(strategy_table), strategy_row(name="second", version=2))
    with engine.begin() as conn:
        noted(conn)
        assert names(conn) == ("first", "second")
        assert names(conn) == ("first", "second")
    assert reads.n == 2


def test_a_transaction_that_writes_reference_data_reads_its_own_and_keeps_nothing(engine: Engine) -> None:
    """Through the strategies' own writer (SQLAlchemy Core), which says so."""
    with engine.begin() as conn:
        conn.execute(insert(strategy_table), strategy_row(name="first"))
    with engine.begin() as conn:
        noted(conn)
        assert names(conn) == ("first",)  # kept
    conn = engine.connect()
    try:
        noted(conn)
        records.add_strategy(conn, **strategy_row(name="draft", version=2))
        assert names(conn) == ("first", "draft")  # its own write, not what was kept
        conn.rollback()
    finally:
        conn.close()
    reads = Reads(engine)
    with engine.begin() as conn:
        noted(conn)
        assert names(conn) == ("first",)  # the rolled-back write left nothing kept
    assert reads.n == 0


def test_a_session_that_flushes_a_reference_row_reads_its_own(engine: Engine) -> None:
    """The ORM's flush of a mapped reference row (a product) marks the transaction."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from creditfactory.servicing.store import Product

    def definition(conn: Any) -> str | None:
        read = select(Product.definition).where(Product.code == "p")
        value: str | None = reference.cached(conn, ("definition", "p"), lambda: conn.execute(read).scalar())
        return value

    at = datetime(2026, 12, 2, tzinfo=UTC)
    with Session(engine) as session:
        session.add(Product(code="p", definition="v1", version=1, updated_at=at))
        session.commit()
        noted(session.connection())
        assert definition(session.connection()) == "v1"  # kept under this stamp
        session.get(Product, "p").definition = "v2"  # type: ignore[union-attr]
        session.flush()
        assert definition(session.connection()) == "v2"
        session.rollback()
        noted(session.connection())
        assert definition(session.connection()) == "v1"


def test_without_a_noted_stamp_every_read_goes_to_the_database(engine: Engine) -> None:
    reads = Reads(engine)
    for _ in range(2):
        with engine.begin() as conn:
            assert names(conn) == ()
    with engine.connect() as conn:
        noted(conn)
        conn.commit()  # the next transaction starts without the stamp
        assert names(conn) == ()
        conn.commit()
    assert reads.n == 3


def test_a_stamp_row_written_afresh_has_a_new_epoch(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(strategy_table), strategy_row(name="first"))
        old = stamp(conn)
        conn.execute(text("DELETE FROM db_reference_version"))
        assert stamp(conn) is None
        conn.execute(update(strategy_table).values(share_bp=5_000))
        new = stamp(conn)
    assert old is not None and new is not None
    assert new.split(":")[0] != old.split(":")[0]  # not a count that could meet an old one again


def test_what_is_noted_does_not_keep_a_connection_alive(engine: Engine) -> None:
    """The pool's record of a connection outlives the transaction noted on it: it holds the
    transaction weakly, so a Connection left unclosed can still be collected and its driver
    connection go back to the pool."""
    import gc
    import weakref

    conn = engine.connect()
    noted(conn)
    reference.wrote(conn)
    gone = weakref.ref(conn)
    checked_out = engine.pool.checkedout()
    del conn  # never closed
    gc.collect()
    assert gone() is None
    assert engine.pool.checkedout() == checked_out - 1


def test_a_model_approved_in_the_transaction_is_the_newest_approved_there(engine: Engine) -> None:
    """The model versions' status writer (a Core ``UPDATE``) marks its transaction too."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from creditfactory.modeling import store
    from creditfactory.modeling.model.lifecycle import ModelStatus

    at = datetime(2026, 12, 2, tzinfo=UTC)
    with Session(engine) as session:
        row = store.add(
            session,
            store.ModelVersion(
                name="m",
                version=1,
                kind="scorecard",
                status=ModelStatus.DRAFT,
                trained_by="ra-1",
                trained_at=at,
                artefact_path="m/v1",
                manifest_sha256="0" * 64,
            ),
        )
        session.commit()
        noted(session.connection())
        assert store.newest_approved(session, "m") is None  # kept under this stamp
        assert store.save_status(
            session, row, expected=ModelStatus.DRAFT, status=ModelStatus.APPROVED, by="ra-2", at=at
        )
        assert store.newest_approved(session, "m") == 1  # its own approval
        session.rollback()
        noted(session.connection())
        assert store.newest_approved(session, "m") is None  # the approval was rolled back
