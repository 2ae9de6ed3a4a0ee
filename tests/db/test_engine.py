"""The engines: on SQLite, transactions of one process take turns on a lock before SQLite's own;
on PostgreSQL, statements prepared before a migration changed their columns renew the pool."""

from __future__ import annotations

import gc
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from creditfactory.db.engine import CONNECT_TIMEOUT_SECONDS, _PingAfterIdle, _WriterTurn, create_engine


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


def test_a_session_dropped_in_a_transaction_gives_the_turn_back(engine: Engine) -> None:
    """The pool rolls back a connection returned in a transaction (a session dropped without
    closing it); that rollback gives the turn back, so the next transaction starts at once."""
    session = Session(engine)
    session.execute(text("INSERT INTO t VALUES (5)"))
    del session
    gc.collect()
    done: list[int] = []

    def next_one() -> None:
        with engine.begin() as conn:
            done.append(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    worker = threading.Thread(target=next_one)
    worker.start()
    worker.join(timeout=5)
    assert done == [0]


def test_the_turn_is_given_back_after_the_commit_not_before(engine: Engine) -> None:
    """A waiting transaction begins only once the COMMIT before it is done: its BEGIN IMMEDIATE
    never meets SQLite's lock (which would hold it in the busy handler until the commit)."""
    import sqlite3

    class SlowCommit(sqlite3.Connection):
        def commit(self) -> None:
            # the window in which a turn given back before the COMMIT would be taken: a BEGIN
            # then waits in SQLite's busy handler for most of it, against well under a
            # millisecond otherwise (half the window as the bound leaves room for a busy
            # machine's scheduling)
            time.sleep(0.03)
            super().commit()

    @event.listens_for(engine, "do_connect")
    def slow(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["factory"] = SlowCommit

    engine.dispose()  # new connections, of the slow kind
    begins: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            begins.append(time.perf_counter() - conn.info["t0"])

    def writer(n: int) -> None:
        for _ in range(8):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 24
    assert len(begins) >= 24
    assert max(begins) < 0.015, sorted(begins)[-5:]


class _Raw:
    """A stand-in for the pool's connection: what ``begin`` is handed and keys the turn on."""

    def __init__(self) -> None:
        self.dbapi_connection = object()

    def exec_driver_sql(self, sql: str) -> None:
        assert sql == "BEGIN IMMEDIATE"

    @property
    def connection(self) -> _Raw:
        return self


def test_a_turn_held_too_long_is_a_clear_error() -> None:
    turn = _WriterTurn(timeout=0.1)
    a, b = _Raw(), _Raw()
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

    class Busy(_Raw):
        def exec_driver_sql(self, sql: str) -> None:
            raise RuntimeError("database is locked (another process)")

    with pytest.raises(RuntimeError):
        turn.begin(Busy())
    ok = _Raw()
    turn.begin(ok)
    turn.end(ok)


@pytest.mark.postgres
def test_a_migration_that_changes_a_result_s_columns_fails_one_request_not_one_a_connection(
    postgres_database: Engine,
) -> None:
    """Three pooled connections have a read prepared; a column's type then changes (as a
    migration run beside live servers would change it). The first read after it fails, marked
    as a lost connection, and renews the pool: the next reads, on new connections, succeed.
    Without that, each of the three connections failed once (the fourth read succeeded)."""
    url = postgres_database.url.render_as_string(hide_password=False)
    engine = create_engine(url)
    with postgres_database.begin() as admin:
        admin.execute(text("CREATE TABLE stale_plan (id INTEGER PRIMARY KEY, name VARCHAR(5))"))
        admin.execute(text("INSERT INTO stale_plan VALUES (1, 'a')"))
    read = text("SELECT id, name FROM stale_plan WHERE id = :id")
    try:
        held = [engine.connect() for _ in range(3)]
        for conn in held:
            for _ in range(2):  # prepared at the second run (prepare_threshold=1)
                assert conn.execute(read, {"id": 1}).all() == [(1, "a")]
            conn.commit()
        for conn in held:
            conn.close()
        with postgres_database.begin() as admin:
            admin.execute(text("ALTER TABLE stale_plan ALTER COLUMN name TYPE VARCHAR(10)"))
        outcomes: list[str] = []
        for _ in range(3):
            try:
                with engine.begin() as conn:
                    conn.execute(read, {"id": 1}).all()
                outcomes.append("ok")
            except DBAPIError as exc:
                assert "cached plan must not change result type" in str(exc.orig)
                outcomes.append("renewed" if exc.connection_invalidated else "failed")
        assert outcomes == ["renewed", "ok", "ok"]
    finally:
        engine.dispose()
        with postgres_database.begin() as admin:
            admin.execute(text("DROP TABLE stale_plan"))


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The server pids of the connections pinged on ``engine`` from now on."""
    pinged: list[int] = []
    do_ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pinged.append(dbapi_connection.info.backend_pid)
        return do_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pinged


def _pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_just_before_is_handed_out_without_a_round_trip(
    postgres_database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load a connection goes back to the pool and out again within milliseconds: it is
    not tested then. A new connection is not tested either; one idle past the window is."""
    monkeypatch.setattr(_PingAfterIdle, "idle_seconds", 0.2)
    engine = create_engine(postgres_database.url.render_as_string(hide_password=False))
    try:
        pinged = _pings(engine, monkeypatch)
        first = _pid(engine)
        assert [_pid(engine) for _ in range(5)] == [first] * 5
        assert pinged == []
        time.sleep(0.3)
        assert _pid(engine) == first
        assert pinged == [first]
    finally:
        engine.dispose()


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_it_is_handed_out(
    postgres_database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends a pooled connection (a restart, a fail-over, an idle timeout): after the
    window, the next checkout finds it dead, opens a new one, and the statement runs there."""
    monkeypatch.setattr(_PingAfterIdle, "idle_seconds", 0.2)
    engine = create_engine(postgres_database.url.render_as_string(hide_password=False))
    try:
        pinged = _pings(engine, monkeypatch)
        old = _pid(engine)
        with postgres_database.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old}).scalar_one()
        time.sleep(0.3)
        new = _pid(engine)
        assert new != old
        assert pinged == [old]  # the new connection was not tested again
    finally:
        engine.dispose()


def test_a_connection_dropped_within_the_window_fails_one_statement_and_renews_the_pool(
    postgres_database: Engine,
) -> None:
    """Within the window a dead connection is handed out untested: its statement fails as a lost
    connection (a 503 at the API) and the next checkout gets a new one."""
    engine = create_engine(postgres_database.url.render_as_string(hide_password=False))
    try:
        old = _pid(engine)
        with postgres_database.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old}).scalar_one()
        time.sleep(0.05)  # the backend is gone
        with pytest.raises(DBAPIError) as failed:
            _pid(engine)
        assert failed.value.connection_invalidated
        assert _pid(engine) != old
    finally:
        engine.dispose()


def test_a_postgresql_server_that_never_answers_fails_the_connection_within_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that takes the connection and says nothing (a hung host behind a proxy): the
    connection gives up after ``connect_timeout`` (10 s unless the URL sets one) instead of
    psycopg's two minutes."""

    class Stop(Exception):
        pass

    asked: list[dict[str, Any]] = []

    def ask_only(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        asked.append(dict(cparams))
        raise Stop

    default = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    event.listen(default, "do_connect", ask_only)
    with pytest.raises(Stop), default.connect():
        pass  # pragma: no cover
    assert asked == [{**asked[0], "connect_timeout": CONNECT_TIMEOUT_SECONDS}]
    assert CONNECT_TIMEOUT_SECONDS == 10
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "3")  # libpq's own setting is left to libpq
    from_env = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    event.listen(from_env, "do_connect", ask_only)
    with pytest.raises(Stop), from_env.connect():
        pass  # pragma: no cover
    assert "connect_timeout" not in asked[1]
    monkeypatch.delenv("PGCONNECT_TIMEOUT")

    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen()
    try:
        port = mute.getsockname()[1]
        engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2")
        t0 = time.perf_counter()
        with pytest.raises(OperationalError, match="timeout"), engine.connect():
            pass  # pragma: no cover
        assert time.perf_counter() - t0 < 8  # the URL's 2 s, not the default's 10
    finally:
        mute.close()
