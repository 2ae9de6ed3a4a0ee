"""The registry table's queries, and the scorecard's SQL run by the database itself."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from creditfactory.db.engine import create_engine, session_factory
from creditfactory.modeling import ScorecardModel, store
from creditfactory.modeling.model.lifecycle import ModelStatus
from tests.modeling.conftest import Split

AT = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)


def row(name: str, version: int) -> store.ModelVersion:
    return store.ModelVersion(
        name=name,
        version=version,
        kind="scorecard",
        segment="farmer",
        status=ModelStatus.DRAFT,
        trained_by="S001",
        trained_at=AT,
        artefact_path=f"{name}/v{version}",
        manifest_sha256="0" * 64,
    )


class TestRegistryTable:
    def test_versions_and_conditional_status_moves(self, db_url: str) -> None:
        engine = create_engine(db_url)
        try:
            with session_factory(engine)() as session:
                assert store.next_version(session, "farmer") == 1
                first = store.add(session, row("farmer", 1))
                store.add(session, row("farmer", 2))
                store.add(session, row("merchant", 1))
                assert store.next_version(session, "farmer") == 3
                assert [r.version for r in store.list_versions(session, "farmer")] == [1, 2]
                assert store.get_newest_approved(session, "farmer") is None
                moved = store.save_status(
                    session, first, expected=ModelStatus.DRAFT, status=ModelStatus.APPROVED, by="S002", at=AT
                )
                assert moved and first.status is ModelStatus.APPROVED and first.approved_by == "S002"
                again = store.save_status(
                    session, first, expected=ModelStatus.DRAFT, status=ModelStatus.APPROVED, by="S003", at=AT
                )
                assert not again and first.approved_by == "S002"
                assert store.get_newest_approved(session, "farmer") is first
                with pytest.raises(sa.exc.IntegrityError):
                    store.add(session, row("farmer", 2))
                session.rollback()
        finally:
            engine.dispose()


class TestSqlCaseOnTheDatabase:
    def test_the_database_computes_the_same_points(
        self, db_url: str, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        X = german_split.X_test.with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("age")).alias("age"),
            pl.when(pl.int_range(pl.len()) == 1)
            .then(pl.lit("A999"))
            .otherwise(pl.col("purpose"))
            .alias("purpose"),
        ).with_row_index("row_id")
        metadata = sa.MetaData()
        columns = [sa.Column("row_id", sa.Integer, primary_key=True)]
        for name, dtype in X.schema.items():
            if name == "row_id":
                continue
            columns.append(sa.Column(name, sa.String(16) if dtype == pl.String else sa.Float))
        table = sa.Table("scorecard_sql_check", metadata, *columns)
        engine = create_engine(db_url)
        try:
            metadata.create_all(engine)
            with engine.begin() as conn:
                conn.execute(table.insert(), X.to_dicts())
                sql = german_scorecard.sql_case()
                got = (
                    conn.execute(sa.text(f"SELECT {sql} AS score FROM scorecard_sql_check ORDER BY row_id"))
                    .scalars()
                    .all()
                )
            np.testing.assert_allclose(np.array(got, dtype=float), german_scorecard.score(X), atol=1e-9)
        finally:
            metadata.drop_all(engine)
            engine.dispose()


def test_the_newest_approved_version_sees_a_version_approved_in_the_same_session(db_url: str) -> None:
    """The look-up runs on the connection; a version approved or added in the session and not
    yet written is written first, as an ORM query would see it."""
    engine = create_engine(db_url)
    try:
        with session_factory(engine)() as session:
            first = store.add(session, row("farmer", 1))
            assert store.newest_approved(session, "farmer") is None
            first.status = ModelStatus.APPROVED  # changed in memory only
            assert store.newest_approved(session, "farmer") == 1
            second = row("farmer", 2)
            second.status = ModelStatus.APPROVED
            session.add(second)  # new, not written
            assert store.newest_approved(session, "farmer") == 2
            session.rollback()
    finally:
        engine.dispose()
