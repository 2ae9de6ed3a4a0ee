"""Fixtures shared by the whole suite: the database under test, the clock, settings, the container.

``db_url`` runs a test once on SQLite (a migrated file in the test's ``tmp_path``) and once on
PostgreSQL. PostgreSQL is used when ``CREDITFACTORY_TEST_POSTGRES_URL`` names a reachable server
(e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); otherwise those runs are skipped
with the reason. One fresh database ``cf_test_<hex>`` is created and migrated per pytest session
and dropped at the end; every test leaves it empty again (all rows deleted, children first).

Tests that need no database take none of these fixtures.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from creditfactory import bootstrap
from creditfactory.bootstrap import Container
from creditfactory.clock import FixedClock
from creditfactory.config import Settings
from creditfactory.db import migrate
from creditfactory.db.engine import create_engine

POSTGRES_ENV = "CREDITFACTORY_TEST_POSTGRES_URL"

#: The instant every test starts at: 10:00 in Beijing on 1 July 2025.
START = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a test marked ``slow`` run first, in the order collected, then the rest.

    ``scripts/test`` hands whole files to its workers in this order (``--dist loadfile
    --no-loadscope-reorder``): a file of a few long tests started last would run on one worker
    while the other has nothing left, as xdist's own order (most tests first) made happen."""
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)  # stable: collection order within each


class PostgresServer:
    """The server named by ``CREDITFACTORY_TEST_POSTGRES_URL``: creates and drops databases."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"cf_test_{secrets.token_hex(6)}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    raw = os.environ.get(POSTGRES_ENV)
    if not raw:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    url = make_url(raw)
    server = PostgresServer(url)
    try:
        with server.admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        server.admin.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        pytest.skip(f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable: {reason}")
    yield server
    server.admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Iterator[sa.Engine]:
    """One migrated database for the whole session (its engine is used to empty it)."""
    url = postgres_server.create_database()
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        postgres_server.drop_database(url)


def _delete_all_rows(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(migrate.metadata().sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating every test's file is slow)."""
    path = tmp_path_factory.mktemp("template") / "creditfactory.db"
    engine = create_engine(f"sqlite:///{path.as_posix()}")
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "creditfactory.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path.as_posix()}"
        return
    engine: sa.Engine = request.getfixturevalue("postgres_database")
    yield engine.url.render_as_string(hide_password=False)
    _delete_all_rows(engine)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url)


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    built = bootstrap.build(settings, clock=clock)
    yield built
    built.close()
