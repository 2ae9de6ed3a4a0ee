"""Registry use cases on SQLite and PostgreSQL: train, approve (four eyes), load, retire, tamper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from creditfactory import modeling
from creditfactory.bootstrap import Container
from creditfactory.modeling import (
    ColumnMissing,
    FeatureSchemaMismatch,
    IllegalTransition,
    MakerCheckerViolation,
    ModelArtefactError,
    ModelNotApproved,
    ModelNotFound,
    NotAScorecard,
    TargetHasOneClass,
    TrainingDataError,
)
from creditfactory.modeling.model.data import schema_of

FEATURES = [
    "checking_status",
    "duration_months",
    "credit_history",
    "savings_status",
    "credit_amount",
    "age",
    "purpose",
]


def models_dir(c: Container) -> Path:
    return c.data_dir / "models"


def train(c: Container, german: pl.DataFrame, **changes: object) -> modeling.TrainingResult:
    options: dict[str, object] = {
        "models_dir": models_dir(c),
        "name": "german",
        "kind": "scorecard",
        "segment": None,
        "dev": german,
        "oot": None,
        "target": "class",
        "features": FEATURES,
        "trained_by": "S001",
        "seed": 42,
        "clock": c.clock,
    }
    options.update(changes)
    with c.uow() as uow:
        result = modeling.train_and_register(uow, **options)  # type: ignore[arg-type]
        uow.commit()
    return result


def approve(c: Container, version: int, by: str = "S002", **kw: object) -> None:
    with c.uow() as uow:
        modeling.approve_version(
            uow, models_dir=models_dir(c), name="german", version=version, approved_by=by, clock=c.clock, **kw
        )  # type: ignore[arg-type]
        uow.commit()


def load(c: Container, version: int | None = None, **kw: object) -> modeling.LoadedModel:
    with c.uow() as uow:
        return modeling.load_version(uow, models_dir=models_dir(c), name="german", version=version, **kw)  # type: ignore[arg-type]


class TestTrainAndRegister:
    def test_a_draft_version_with_its_artefacts(self, container: Container, german: pl.DataFrame) -> None:
        result = train(container, german)
        assert (result.name, result.version, result.status) == ("german", 1, "draft")
        path = models_dir(container) / "german" / "v1"
        assert result.path == path
        assert sorted(p.name for p in path.iterdir()) == [
            "manifest.json",
            "points.csv",
            "points.json",
            "report.html",
        ]
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["features"] == {f: schema_of(german)[f] for f in result.validation.features}
        assert manifest["split"]["rows"] == {"train": 700, "test": 300}
        assert manifest["data"]["bad_value"] == 2 and len(manifest["data"]["fingerprint"]) == 64
        assert manifest["trained_by"] == "S001" and manifest["seed"] == 42
        assert {"numpy", "polars", "optbinning", "lightgbm", "scikit-learn"} <= set(manifest["libraries"])
        assert manifest["metrics"]["auc"] == pytest.approx(result.test["auc"])
        with container.uow() as uow:
            [row] = modeling.list_versions(uow, name="german")
            assert row.status.value == "draft" and row.trained_by == "S001"
            assert row.trained_at == container.clock.now()
            assert row.artefact_path == "german/v1" and row.auc == pytest.approx(result.test["auc"])

    def test_versions_count_up(self, container: Container, german: pl.DataFrame) -> None:
        train(container, german)
        second = train(container, german, kind="lightgbm", params={"n_estimators": 100, "learning_rate": 0.1})
        assert second.version == 2 and second.kind == "lightgbm"
        assert (second.path / "model.txt").is_file()

    def test_out_of_time_sample_is_the_headline(self, container: Container, german: pl.DataFrame) -> None:
        dev, oot = german[:700], german[700:]
        result = train(
            container,
            german,
            dev=dev,
            oot=oot,
            windows={"development": "rows 1-700", "out of time": "701-1000"},
        )
        m = result.manifest
        assert m["metrics"]["headline"] == "oot" and m["split"]["rows"]["oot"] == 300
        assert m["windows"]["out of time"] == "701-1000"
        assert "out-of-time" in result.report_path.read_text()

    def test_bad_input(self, container: Container, german: pl.DataFrame) -> None:
        with pytest.raises(TargetHasOneClass, match="'class' has only one value"):
            train(container, german.filter(pl.col("class") == 1))
        with pytest.raises(ColumnMissing, match="'income' not in the development data"):
            train(container, german, features=["income", "age"])
        with pytest.raises(ColumnMissing, match="'default' not in the development data"):
            train(container, german, target="default")
        with pytest.raises(TrainingDataError, match="model name"):
            train(container, german, name="../escape")
        with pytest.raises(TargetHasOneClass, match="out-of-time sample"):
            train(container, german, oot=german.filter(pl.col("class") == 2))
        with container.uow() as uow:
            assert modeling.list_versions(uow) == []


class TestMakerChecker:
    def test_a_draft_cannot_be_used_in_production(self, container: Container, german: pl.DataFrame) -> None:
        train(container, german)
        with pytest.raises(ModelNotApproved, match="german v1 is draft"):
            load(container, 1)
        with pytest.raises(ModelNotApproved, match=r"no approved version \(v1 draft\)"):
            load(container)
        with pytest.raises(ModelNotFound, match="no model named 'other'"):
            with container.uow() as uow:
                modeling.load_version(uow, models_dir=models_dir(container), name="other")

    def test_the_trainer_cannot_approve(self, container: Container, german: pl.DataFrame) -> None:
        train(container, german)
        with pytest.raises(MakerCheckerViolation, match="trained by S001"):
            approve(container, 1, by="S001")
        with pytest.raises(MakerCheckerViolation, match="trained by S001"):
            approve(container, 1, by=" s001 ")

    def test_approved_version_loads_and_scores_as_trained(
        self, container: Container, german: pl.DataFrame
    ) -> None:
        result = train(container, german)
        container.clock.advance(hours=2)  # type: ignore[attr-defined]
        approve(container, 1)
        loaded = load(container)
        assert (loaded.name, loaded.version, loaded.status, loaded.kind) == (
            "german",
            1,
            "approved",
            "scorecard",
        )
        assert loaded.features == result.manifest["features"]
        X = german.drop("class")
        np.testing.assert_array_equal(loaded.score(X), result.estimator.score(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), result.estimator.predict_proba(X)[:, 1])
        np.testing.assert_allclose(X.select(loaded.score_expr()).to_series().to_numpy(), loaded.score(X))
        assert loaded.sql_case().startswith("(CASE WHEN")
        assert loaded.reasons(X.head(3)) == result.estimator.reason_codes(X.head(3))
        with container.uow() as uow:
            row = modeling.get_version(uow, name="german", version=1)
            assert row.approved_by == "S002" and row.approved_at == container.clock.now()

    def test_newest_approved_wins_and_retired_is_refused(
        self, container: Container, german: pl.DataFrame
    ) -> None:
        train(container, german)
        train(container, german, features=FEATURES[:4])
        approve(container, 1)
        assert load(container).version == 1
        approve(container, 2)
        assert load(container).version == 2
        with container.uow() as uow:
            modeling.retire_version(uow, name="german", version=2, retired_by="S003", clock=container.clock)
            uow.commit()
        assert load(container).version == 1
        with pytest.raises(ModelNotApproved, match="german v2 is retired"):
            load(container, 2)
        assert load(container, 2, allow_unapproved=True).status == "retired"
        with pytest.raises(IllegalTransition, match="is retired: it cannot be approved"):
            approve(container, 2)
        with pytest.raises(IllegalTransition, match="cannot be retired"), container.uow() as uow:
            modeling.retire_version(uow, name="german", version=2, retired_by="S003", clock=container.clock)

    def test_approval_checks_the_feature_schema(self, container: Container, german: pl.DataFrame) -> None:
        result = train(container, german)
        schema = schema_of(german)
        used = result.validation.features
        missing = {k: v for k, v in schema.items() if k != used[0]}
        with pytest.raises(FeatureSchemaMismatch, match=f"feature '{used[0]}' .* is not in the data"):
            approve(container, 1, schema=missing)
        retyped = {**schema, "duration_months": "string"}
        if "duration_months" in used:
            with pytest.raises(
                FeatureSchemaMismatch, match="'duration_months' is number in the model but string"
            ):
                approve(container, 1, schema=retyped)
        approve(container, 1, schema=schema)
        assert load(container).check_schema(missing)

    def test_lightgbm_through_the_registry(self, container: Container, german: pl.DataFrame) -> None:
        result = train(container, german, kind="lightgbm", params={"n_estimators": 120, "learning_rate": 0.1})
        approve(container, 1)
        loaded = load(container, 1)
        X = german.drop("class").head(50)
        np.testing.assert_array_equal(loaded.predict_proba(X), result.estimator.predict_proba(X)[:, 1])
        assert loaded.reasons(X, top=2) == result.estimator.reason_codes(X, top=2)
        with pytest.raises(NotAScorecard, match="german v1 is a lightgbm model"):
            loaded.sql_case()


class TestDamagedArtefacts:
    @pytest.fixture
    def trained(self, container: Container, german: pl.DataFrame) -> Path:
        train(container, german)
        approve(container, 1)
        return models_dir(container) / "german" / "v1"

    def test_an_edited_points_table(self, container: Container, trained: Path) -> None:
        data = json.loads((trained / "points.json").read_text())
        data["features"][0]["points"][0] += 10
        (trained / "points.json").write_text(json.dumps(data))
        with pytest.raises(ModelArtefactError, match=r"points.json: content does not match the manifest"):
            load(container)

    def test_an_edited_manifest(self, container: Container, trained: Path) -> None:
        text = (trained / "manifest.json").read_text().replace('"trained_by": "S001"', '"trained_by": "S009"')
        (trained / "manifest.json").write_text(text)
        with pytest.raises(ModelArtefactError, match="manifest hash does not match the registry"):
            load(container)

    def test_a_missing_file_or_directory(self, container: Container, trained: Path) -> None:
        (trained / "report.html").unlink()
        with pytest.raises(ModelArtefactError, match="is missing report.html"):
            load(container)
        for p in trained.iterdir():
            p.unlink()
        trained.rmdir()
        with pytest.raises(ModelArtefactError, match="model directory .*german/v1 is missing"):
            load(container)

    def test_a_damaged_model_is_not_approved(self, container: Container, german: pl.DataFrame) -> None:
        result = train(container, german, features=FEATURES[:3])
        (result.path / "points.csv").write_text("feature\n")
        with pytest.raises(ModelArtefactError, match="points.csv"):
            approve(container, result.version)


class TestCompare:
    def test_two_versions_on_the_same_data(self, container: Container, german: pl.DataFrame) -> None:
        train(container, german)
        train(container, german, kind="lightgbm", params={"n_estimators": 120, "learning_rate": 0.1})
        with container.uow() as uow:
            result = modeling.compare_versions(
                uow,
                models_dir=models_dir(container),
                refs=[("german", 1), ("german", 2)],
                data=german,
                target="class",
            )
        assert result.rows == 1000 and result.bads == 300
        assert [m["kind"] for m in result.models] == ["scorecard", "lightgbm"]
        assert all(0.7 < m["auc"] < 1 for m in result.models)
        assert result.rank_correlation is not None and 0.5 < result.rank_correlation < 1

    def test_data_without_a_models_feature(self, container: Container, german: pl.DataFrame) -> None:
        train(container, german)
        with pytest.raises(ColumnMissing, match="for german v1"), container.uow() as uow:
            modeling.compare_versions(
                uow,
                models_dir=models_dir(container),
                refs=[("german", 1)],
                data=german.drop("checking_status"),
                target="class",
            )
