"""The LightGBM challenger: contract, monotone constraints, reason codes, native artefacts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError

from creditfactory.modeling import LightGBMModel, TrainingDataError
from creditfactory.modeling.model import metrics
from tests.modeling.conftest import Split

FAST = {"n_estimators": 300, "learning_rate": 0.08, "early_stopping_rounds": 30}


@pytest.fixture(scope="module")
def gbm(german_split: Split) -> LightGBMModel:
    return LightGBMModel(monotone_constraints={"duration_months": 1, "credit_amount": 1}, **FAST).fit(
        german_split.X_train, german_split.y_train
    )


class TestContract:
    def test_before_fit(self, german_split: Split) -> None:
        assert not [k for k in vars(LightGBMModel()) if k.endswith("_")]
        with pytest.raises(NotFittedError):
            LightGBMModel().predict_proba(german_split.X_test)

    def test_fitted(self, gbm: LightGBMModel, german_split: Split) -> None:
        proba = gbm.predict_proba(german_split.X_test)
        assert proba.shape == (german_split.X_test.height, 2)
        assert 1 <= gbm.best_iteration_ <= 300
        assert gbm.booster_.num_trees() == gbm.best_iteration_
        assert gbm.categories_["checking_status"] == ["A11", "A12", "A13", "A14"]
        assert metrics.auc(german_split.y_test, proba[:, 1]) > 0.72

    def test_early_stopping_on_the_given_window(self, german_split: Split) -> None:
        model = LightGBMModel(**FAST).fit(
            german_split.X_train, german_split.y_train, eval_set=(german_split.X_test, german_split.y_test)
        )
        assert model.validation_auc_ == pytest.approx(
            metrics.auc(german_split.y_test, model.predict_proba(german_split.X_test)[:, 1]), abs=1e-6
        )

    def test_score_uses_the_scorecard_scaling(self, gbm: LightGBMModel, german_split: Split) -> None:
        logit = gbm.logit(german_split.X_test)
        np.testing.assert_allclose(gbm.score(german_split.X_test), gbm.scaling.score_of_logit(logit))


class TestMonotoneConstraints:
    def test_risk_never_falls_as_duration_rises(self, gbm: LightGBMModel, german_split: Split) -> None:
        base = german_split.X_test.head(40)
        previous = None
        for months in range(4, 73, 4):
            pd_bad = gbm.predict_proba(base.with_columns(pl.lit(months).alias("duration_months")))[:, 1]
            if previous is not None:
                assert (pd_bad >= previous - 1e-12).all()
            previous = pd_bad

    def test_constraints_are_checked(self, german_split: Split) -> None:
        with pytest.raises(TrainingDataError, match="not a feature"):
            LightGBMModel(monotone_constraints={"salary": 1}).fit(german_split.X_train, german_split.y_train)
        with pytest.raises(TrainingDataError, match="categorical"):
            LightGBMModel(monotone_constraints={"purpose": 1}).fit(german_split.X_train, german_split.y_train)


class TestReasons:
    def test_contributions_add_up_to_the_log_odds(self, gbm: LightGBMModel, german_split: Split) -> None:
        X = german_split.X_test.head(25)
        contrib = gbm.booster_.predict(gbm._matrix(X), pred_contrib=True)
        np.testing.assert_allclose(contrib.sum(axis=1), gbm.logit(X), atol=1e-9)

    def test_reasons_are_the_strongest_positive_contributions(
        self, gbm: LightGBMModel, german_split: Split
    ) -> None:
        X = german_split.X_test.head(25)
        contrib = gbm.contributions(X)
        names = list(gbm.feature_names_in_)
        for i, row in enumerate(gbm.reason_codes(X, top=3)):
            values = [contrib[i, names.index(r)] for r in row]
            assert all(v > 0 for v in values)
            assert values == sorted(values, reverse=True)
            assert values[0] == pytest.approx(max(contrib[i].max(), 0)) if row else contrib[i].max() <= 0


class TestArtefacts:
    def test_text_model_and_spec_rebuild_identical_predictions(
        self, gbm: LightGBMModel, german_split: Split
    ) -> None:
        rebuilt = LightGBMModel.from_artefacts(gbm.model_text(), gbm.spec())
        X = german_split.X_test.with_columns(
            pl.when(pl.int_range(pl.len()) < 5)
            .then(pl.lit("A999"))
            .otherwise(pl.col("purpose"))
            .alias("purpose")
        )
        np.testing.assert_array_equal(rebuilt.predict_proba(X), gbm.predict_proba(X))
        assert rebuilt.reason_codes(X) == gbm.reason_codes(X)

    def test_a_damaged_model_text_is_refused(self, gbm: LightGBMModel) -> None:
        with pytest.raises(ValueError, match="not readable|different features"):
            LightGBMModel.from_artefacts("tree\nversion=v4\n", gbm.spec())
