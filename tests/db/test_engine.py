"""The SQLite engine: transactions of one process take turns on a lock before SQLite's own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from creditfactory.db.engine import _WriterTurn, create_engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = create_engine(f"sqlite:///{(tmp_path / 'turns.db').as_posix()}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return eng


def test_a_waiting_transaction_starts_as_soon_as_the_one_before_ends(engine: Engine) -> None:
    """The second writer starts within a few milliseconds of the first's commit, where SQLite's
    busy handler alone would poll with pauses of up to 100 ms; both writes are kept."""
    holding = threading.Event()
    started: list[float] = []
    committed: list[float] = []

    def first() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            time.sleep(0.34)  # SQLite alone would look again only at 0.428 s
            committed.append(time.perf_counter())

    def second() -> None:
        assert holding.wait(5)
        with engine.begin() as conn:
            started.append(time.perf_counter())
            conn.execute(text("INSERT INTO t VALUES (2)"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert started[0] >= committed[0]
    assert started[0] - committed[0] < 0.05
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == [1, 2]


def test_rollbacks_and_closed_connections_give_the_turn_back(engine: Engine) -> None:
    for _ in range(3):
        with engine.connect() as conn:
            conn.begin()
            conn.execute(text("INSERT INTO t VALUES (9)"))
        # closed without commit: rolled back, the turn given back
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (3)"))
        conn.rollback()
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def test_a_turn_held_too_long_is_a_clear_error() -> None:
    turn = _WriterTurn(timeout=0.1)

    class Conn:
        def exec_driver_sql(self, sql: str) -> None:
            assert sql == "BEGIN IMMEDIATE"

    a, b = Conn(), Conn()
    turn.begin(a)
    with pytest.raises(OperationalError, match="database is locked"):
        turn.begin(b)
    turn.end(b)  # b holds nothing: the turn stays with a
    with pytest.raises(OperationalError):
        turn.begin(b)
    turn.end(a)
    turn.begin(b)
    turn.end(b)


def test_a_failed_begin_gives_the_turn_back() -> None:
    turn = _WriterTurn(timeout=0.1)

    class Busy:
        def exec_driver_sql(self, sql: str) -> None:
            raise RuntimeError("database is locked (another process)")

    class Conn:
        def exec_driver_sql(self, sql: str) -> None:
            pass

    with pytest.raises(RuntimeError):
        turn.begin(Busy())
    ok = Conn()
    turn.begin(ok)
    turn.end(ok)
