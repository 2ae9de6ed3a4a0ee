"""Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from creditfactory import bootstrap
from creditfactory.config import Settings
from creditfactory.db import migrate
from creditfactory.db.engine import create_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (not the suite's shared one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'fresh.db').as_posix()}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def fresh(fresh_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_url)
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, migrate.metadata()))


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


class TestUpgrade:
    def test_fresh_database_matches_the_models(self, fresh: Engine) -> None:
        assert migrate.current(fresh) is None
        migrate.upgrade(fresh)
        assert migrate.current(fresh) == migrate.head()
        assert migrate.is_current(fresh)
        assert differences(fresh) == []
        assert table_names(fresh) == set(migrate.metadata().tables) | {"alembic_version"}

    def test_upgrading_twice_changes_nothing(self, fresh: Engine) -> None:
        migrate.upgrade(fresh)
        before = {name: sa.inspect(fresh).get_columns(name) for name in table_names(fresh)}
        migrate.upgrade(fresh)
        after = {name: sa.inspect(fresh).get_columns(name) for name in table_names(fresh)}
        assert migrate.current(fresh) == migrate.head()
        assert repr(after) == repr(before)

    def test_downgrade_to_base_and_back(self, fresh: Engine) -> None:
        migrate.upgrade(fresh)
        command.downgrade(migrate.alembic_config(fresh), "base")
        assert table_names(fresh) <= {"alembic_version"}
        assert migrate.current(fresh) is None
        migrate.upgrade(fresh)
        assert differences(fresh) == []


class TestBootstrap:
    def test_build_migrates_a_new_database(self, fresh_url: str, tmp_path: Path) -> None:
        container = bootstrap.build(Settings(data_dir=tmp_path / "var", database_url=fresh_url))
        try:
            assert migrate.is_current(container.engine)
        finally:
            container.close()

    def test_build_without_upgrade_leaves_the_database_alone(self, fresh_url: str, tmp_path: Path) -> None:
        container = bootstrap.build(
            Settings(data_dir=tmp_path / "var", database_url=fresh_url), upgrade=False
        )
        try:
            assert migrate.current(container.engine) is None
            assert table_names(container.engine) == set()
        finally:
            container.close()


class TestVersionFiles:
    def test_one_head_and_date_named_files(self) -> None:
        script = ScriptDirectory(str(migrate.MIGRATIONS))
        assert len(script.get_heads()) == 1
        names = sorted(p.name for p in (migrate.MIGRATIONS / "versions").glob("*.py"))
        assert names
        for name in names:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_[a-z0-9_]+\.py", name), name
