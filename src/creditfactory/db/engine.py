"""Engine and session factories: SQLite pragmas for the embedded default, a pool for PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, exc
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

#: How long a new PostgreSQL connection may take (the URL's ``connect_timeout`` or the
#: environment's ``PGCONNECT_TIMEOUT`` wins).
CONNECT_TIMEOUT_SECONDS = 10


def create_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa_create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy own transactions: BEGIN IMMEDIATE is issued by the unit of work
        # for writes; the driver's own implicit transactions are switched off.
        _WriterTurn().install(engine)
        return engine
    # No JIT compilation: it spends a second or more compiling the end of day's large
    # aggregates, which run once, and nothing is gained on short statements.
    connect_args: dict[str, Any] = (
        {"options": "-c jit=off"} if parsed.get_backend_name() == "postgresql" else {}
    )
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        # A statement is prepared on a connection the second time it runs there, not the sixth
        # (psycopg's default): a pool's connections each pay the server's planning until then,
        # 0.8 ms for an applicant's graph neighbourhood. Decisions over HTTP: 128 -> 144 a second.
        connect_args["prepare_threshold"] = 1
    if (
        parsed.get_backend_name() == "postgresql"
        and "connect_timeout" not in parsed.query
        and not os.environ.get("PGCONNECT_TIMEOUT")  # libpq's own setting, where it is given
    ):
        # A server that cannot be reached fails the request that needs it within seconds, not
        # the two minutes psycopg waits by default: a server process working alone on a request
        # waits on the database on its event loop (api.admission), GET /health with it.
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    engine = sa_create_engine(url, echo=echo, pool_size=10, max_overflow=20, connect_args=connect_args)
    _PingAfterIdle().install(engine)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "handle_error", _stale_plan_renews_the_pool)
    return engine


class _PingAfterIdle:
    """A pooled connection is tested with a round trip before it is handed out only when it has
    been idle in the pool for :attr:`idle_seconds` (half a second, HikariCP's default) or more;
    one that ran a statement just before is handed out as it is. A connection found dead is
    replaced, and so is every connection of the pool opened before it (a server restarted or
    failed over drops them all), as SQLAlchemy's own ``pool_pre_ping`` does, which tests every
    connection at every checkout: a round trip and about 0.1 ms of CPU a request under load.

    A server that goes away while requests keep coming is met by a statement instead: the request
    fails (``connection_invalidated``: a 503 at the API) and the pool is renewed for the next."""

    idle_seconds = 0.5
    _KEY = "creditfactory_returned_at"

    def install(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        event.listen(engine.pool, "connect", self._returned)  # a new connection needs no test
        event.listen(engine.pool, "checkin", self._returned)
        event.listen(engine.pool, "checkout", self._checkout)

    def _returned(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[self._KEY] = time.monotonic()

    def _checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(self._KEY)
        if returned is not None and time.monotonic() - returned < self.idle_seconds:
            return
        try:
            self._dialect.do_ping(dbapi_connection)
        except self._dialect.loaded_dbapi.Error as err:
            if self._dialect.is_disconnect(err, dbapi_connection, None):
                # the pool replaces this connection and every one opened before it
                raise exc.InvalidatePoolError() from err
            raise


#: PostgreSQL's refusal to run a statement prepared before a change of the result's columns
#: (``ALTER TABLE … TYPE``, a column dropped) on the connection that prepared it: its SQLSTATE,
#: the server function that raises it (whatever the language of the server's messages), and
#: the English message for a server that does not report the function.
STALE_PLAN = ("0A000", "RevalidateCachedQuery", "cached plan must not change result type")


def _stale_plan_renews_the_pool(ctx: Any) -> None:
    """A statement prepared before a migration changed its result's columns fails on every
    connection that prepared it, once each (the rollback that follows makes psycopg forget its
    prepared statements). Counted as a disconnect, the first such error renews the whole pool:
    the request that met it fails (``DBAPIError.connection_invalidated``, a 503 at the API), as
    does a request in flight then that runs the statement on a connection it already holds;
    the requests after them run on new connections instead of failing one a connection."""
    orig = ctx.original_exception
    if getattr(orig, "sqlstate", None) != STALE_PLAN[0]:
        return
    function = getattr(getattr(orig, "diag", None), "source_function", None)
    if function == STALE_PLAN[1] or STALE_PLAN[2] in str(orig):
        ctx.is_disconnect = True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB of page cache: bulk loads touch big indexes
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


class _WriterTurn:
    """Every SQLite transaction here is ``BEGIN IMMEDIATE``: one at a time. Within one process
    the transactions take turns on a lock first, so that a waiting thread starts the moment the
    one before ends; SQLite's own busy handler, which sleeps and polls with growing pauses (up to
    100 ms), then only arbitrates between processes. Under eight concurrent requests the polling
    alone made the slowest answers wait more than a second.

    A turn belongs to the driver's connection. It is given back after the driver's own COMMIT or
    ROLLBACK (the dialect's ``do_commit`` / ``do_rollback``, wrapped by :meth:`install`), which
    includes the pool's rollback of a connection returned in a transaction (a session dropped
    without closing it), and when the pool takes the connection back, closes, detaches or
    invalidates it."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._guard = threading.Lock()  # the holder is read and cleared by one thread at a time
        self._timeout = timeout
        self._holder: int | None = None

    def install(self, engine: Engine) -> None:
        dialect = engine.dialect
        do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

        def commit(dbapi_connection: Any) -> None:
            do_commit(dbapi_connection)
            self.end(dbapi_connection)  # a failed COMMIT keeps the turn until its rollback

        def rollback(dbapi_connection: Any) -> None:
            try:
                do_rollback(dbapi_connection)
            finally:
                self.end(dbapi_connection)

        # the engine's own dialect instance (the pool's resets go through it too)
        dialect.do_commit = commit  # type: ignore[method-assign]
        dialect.do_rollback = rollback  # type: ignore[method-assign]
        event.listen(engine, "begin", self.begin)
        # given back at the latest when the connection goes back to the pool (a failed COMMIT
        # closed without a rollback is not reset by the pool)
        for name in ("checkin", "close", "detach", "invalidate"):
            event.listen(engine.pool, name, self._gone)

    @staticmethod
    def _key(dbapi_connection: Any) -> int:
        return id(getattr(dbapi_connection, "dbapi_connection", None) or dbapi_connection)

    def begin(self, conn: Any) -> None:
        if not self._lock.acquire(timeout=self._timeout):
            raise OperationalError(
                "BEGIN IMMEDIATE",
                {},
                sqlite3.OperationalError(
                    f"database is locked: another transaction of this process held it for {self._timeout:.0f} s"
                ),
            )
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        self._holder = self._key(conn.connection)

    def end(self, dbapi_connection: Any) -> None:
        # a connection that began no transaction of ours (or ended it already) holds no turn
        with self._guard:
            if self._holder is None or self._holder != self._key(dbapi_connection):
                return
            self._holder = None
        self._lock.release()

    def _gone(self, dbapi_connection: Any, *_args: Any) -> None:
        self.end(dbapi_connection)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
