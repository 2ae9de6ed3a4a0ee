"""Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
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
from creditfactory.servicing.model import months_current


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

    def test_the_migrations_head_is_read_once_a_process(
        self, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        read: list[str] = []

        class Counted(ScriptDirectory):
            def get_current_head(self) -> str | None:
                read.append(self.dir)
                return super().get_current_head()

        monkeypatch.setattr(migrate, "ScriptDirectory", Counted)
        migrate.head.cache_clear()
        try:
            for _ in range(3):
                bootstrap.build(Settings(data_dir=tmp_path / "var", database_url=fresh_url)).close()
            head = migrate.head()
        finally:
            migrate.head.cache_clear()
        assert read == [str(migrate.MIGRATIONS)]
        assert head == ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()


class TestVersionFiles:
    def test_one_head_and_date_named_files(self) -> None:
        script = ScriptDirectory(str(migrate.MIGRATIONS))
        assert len(script.get_heads()) == 1
        names = sorted(p.name for p in (migrate.MIGRATIONS / "versions").glob("*.py"))
        assert names
        for name in names:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_[a-z0-9_]+\.py", name), name


class TestMonthsCurrentBecomeADate:
    """``20261201_current_since``: a loan's months current are counted from a date after the
    upgrade, and each loan keeps its count."""

    LOANS = [  # id, drawn, last classified, months current
        (1, date(2025, 1, 15), None, 0),
        (2, date(2024, 3, 10), date(2025, 5, 31), 14),
        (3, date(2024, 3, 10), date(2025, 6, 12), 0),  # past due at the May month end
        (4, date(2024, 12, 31), date(2025, 6, 12), 5),  # current at every month end since drawn
    ]

    def _insert(self, engine: Engine) -> None:
        columns = (
            "id, customer_id, product_code, method, day_count, rounding, principal, annual_rate, "
            "penalty_rate, grace_days, term, start_date, maturity_date, status, outstanding_principal, "
            "interest_receivable, penalty_receivable, accrual_carry, penalty_carry, last_accrued_date, dpd, "
            "tier, months_current, last_classified_date, version, created_at"
        )
        with engine.begin() as conn:
            for loan_id, drawn, classified, months in self.LOANS:
                conn.execute(
                    sa.text(
                        f"INSERT INTO servicing_loan ({columns}) VALUES (:id, 'C1', 'p', 'equal_installment', "
                        "'30/360', 'half_up', 100, 1, 1, 3, 12, :drawn, :drawn, 'active', 100, 0, 0, 0, 0, "
                        ":drawn, 0, 'normal', :months, :classified, 1, :drawn)"
                    ),
                    {"id": loan_id, "drawn": drawn, "months": months, "classified": classified},
                )

    def test_each_loan_keeps_its_count(self, fresh: Engine) -> None:
        config = migrate.alembic_config(fresh)
        command.upgrade(config, "20261201_eod_storage")
        self._insert(fresh)
        command.upgrade(config, "20261201_current_since")
        with fresh.connect() as conn:
            since = dict(conn.execute(sa.text("SELECT id, current_since FROM servicing_loan")).all())
        since = {k: v if isinstance(v, date) else date.fromisoformat(v) for k, v in since.items()}
        assert since == {
            1: date(2025, 1, 14),
            2: date(2024, 3, 31),
            3: date(2025, 5, 31),
            4: date(2024, 12, 31),
        }
        for loan_id, drawn, classified, months in self.LOANS:
            assert months_current(since[loan_id], classified or drawn) == months
        assert months_current(since[4], date(2025, 6, 30)) == 6  # the next month end counts without a write
        # Down again: each loan's count on the last closed business date, 12 June 2025.
        with fresh.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO jobs_business_date (name, business_date, last_closed_date, version, updated_at) "
                    "VALUES ('default', :open, :closed, 1, :closed)"
                ),
                {"open": date(2025, 6, 13), "closed": date(2025, 6, 12)},
            )
        command.downgrade(config, "20261201_eod_storage")
        with fresh.connect() as conn:
            back = dict(conn.execute(sa.text("SELECT id, months_current FROM servicing_loan")).all())
        assert back == {1: 5, 2: 14, 3: 0, 4: 5}  # loan 1: January to May, current since drawn
