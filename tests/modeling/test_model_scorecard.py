"""The scorecard estimator: scikit-learn's contract, selection, and optbinning's pipeline as oracle."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from creditfactory.modeling import ScorecardModel, TargetHasOneClass, TrainingDataError
from creditfactory.modeling.errors import ColumnMissing
from creditfactory.modeling.model import metrics
from creditfactory.modeling.model.scorecard import Logit
from tests.modeling.conftest import Split


def optbinning_pipeline_auc(split: Split) -> float:
    """optbinning's standard Scorecard (BinningProcess + LogisticRegression) on the same split."""
    from optbinning import BinningProcess, Scorecard

    X_train = split.X_train.to_pandas()
    X_test = split.X_test.to_pandas()
    categorical = [c for c in X_train.columns if split.X_train.schema[c] == pl.String]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = Scorecard(
            binning_process=BinningProcess(list(X_train.columns), categorical_variables=categorical),
            estimator=LogisticRegression(),
            scaling_method="min_max",
            scaling_method_params={"min": 300, "max": 850},
        ).fit(X_train, split.y_train)
        return metrics.auc(split.y_test, card.predict_proba(X_test)[:, 1])


class TestEstimatorContract:
    def test_constructor_stores_parameters_only(self) -> None:
        model = ScorecardModel(pdo=40, selection="stepwise")
        assert model.get_params()["pdo"] == 40
        assert not [k for k in vars(model) if k.endswith("_")]
        copy = clone(model)
        assert copy.get_params() == model.get_params()

    def test_fit_returns_self_and_sets_fitted_attributes(self, german_split: Split) -> None:
        model = ScorecardModel(features=["duration_months", "checking_status", "credit_amount"])
        assert model.fit(german_split.X_train, german_split.y_train) is model
        for attr in ("binning_", "iv_table_", "selected_features_", "coef_", "intercept_", "points_table_"):
            assert hasattr(model, attr)
        assert model.n_features_in_ == 3
        assert model.feature_types_ == {
            "duration_months": "number",
            "checking_status": "string",
            "credit_amount": "number",
        }

    @pytest.mark.parametrize("method", ["predict_proba", "score", "transform", "reason_codes"])
    def test_using_before_fit_raises(self, method: str, german_split: Split) -> None:
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(ScorecardModel(), method)(german_split.X_test)

    def test_outputs(self, german_scorecard: ScorecardModel, german_split: Split) -> None:
        X = german_split.X_test
        proba = german_scorecard.predict_proba(X)
        assert proba.shape == (X.height, 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        woe = german_scorecard.transform(X)
        assert woe.columns == german_scorecard.selected_features_
        assert german_scorecard.predict(X).dtype == np.int8
        # higher score, lower probability of bad
        score = german_scorecard.score(X)
        order = np.argsort(score)
        assert np.all(np.diff(proba[order, 1]) <= 1e-12)

    def test_accepts_pandas(self, german_scorecard: ScorecardModel, german_split: Split) -> None:
        np.testing.assert_array_equal(
            german_scorecard.score(german_split.X_test.to_pandas()),
            german_scorecard.score(german_split.X_test),
        )


class TestGermanCredit:
    def test_as_good_as_optbinnings_pipeline_on_the_same_split(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        ours = metrics.auc(german_split.y_test, german_scorecard.predict_proba(german_split.X_test)[:, 1])
        theirs = optbinning_pipeline_auc(german_split)
        assert ours >= theirs - 0.01, (ours, theirs)
        assert ours > 0.78

    def test_every_coefficient_lowers_risk_as_woe_rises(self, german_scorecard: ScorecardModel) -> None:
        assert (german_scorecard.coef_ < 0).all()

    def test_selection_drops_weak_features_with_a_reason(self, german_scorecard: ScorecardModel) -> None:
        dropped = german_scorecard.dropped_features_
        assert "num_dependents" in dropped and "IV" in dropped["num_dependents"]
        assert set(dropped).isdisjoint(german_scorecard.selected_features_)
        assert set(dropped) | set(german_scorecard.selected_features_) == set(
            german_scorecard.feature_names_in_
        )
        iv = dict(german_scorecard.iv_table_.select("feature", "iv").iter_rows())
        assert all(iv[f] >= 0.01 for f in german_scorecard.selected_features_)

    def test_stepwise_keeps_fewer_features(
        self, german_split: Split, german_scorecard: ScorecardModel
    ) -> None:
        step = ScorecardModel(selection="stepwise").fit(german_split.X_train, german_split.y_train)
        assert 3 <= len(step.selected_features_) <= len(german_scorecard.selected_features_)
        assert any("stepwise" in why for why in step.dropped_features_.values())

    def test_correlation_filter_keeps_the_higher_iv(self, german_split: Split) -> None:
        X = german_split.X_train.with_columns((pl.col("duration_months") * 30 + 1).alias("duration_days"))
        model = ScorecardModel(features=["duration_months", "duration_days", "checking_status"]).fit(
            X, german_split.y_train
        )
        assert len({"duration_months", "duration_days"} & set(model.selected_features_)) == 1
        dropped = [f for f in ("duration_months", "duration_days") if f in model.dropped_features_]
        assert "correlation" in model.dropped_features_[dropped[0]]

    def test_numeric_codes_as_categories(self, german_split: Split) -> None:
        model = ScorecardModel(
            features=["installment_rate_pct", "checking_status"], categorical=["installment_rate_pct"]
        )
        model.fit(german_split.X_train, german_split.y_train)
        binning = model.binning_["installment_rate_pct"]
        assert binning.dtype == "string" and binning.source_dtype == "number"
        assert model.score(german_split.X_test).shape == (german_split.X_test.height,)


class TestLogit:
    def test_same_coefficients_as_scikit_learn(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        woe = german_scorecard.transform(german_split.X_train).to_numpy()
        ours = Logit(C=1.0).fit(woe, german_split.y_train)
        theirs = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(woe, german_split.y_train)
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-5)

    def test_separable_data_does_not_diverge(self) -> None:
        x = np.r_[np.zeros(50), np.ones(50)][:, None]
        y = np.r_[np.zeros(50), np.ones(50)].astype(np.int8)
        fitted = Logit(C=1.0).fit(x, y)
        assert np.isfinite(fitted.coef_).all() and fitted.coef_[0, 0] > 0


class TestBadInput:
    def test_a_target_with_one_class(self, german_split: Split) -> None:
        with pytest.raises(TargetHasOneClass, match="only one class"):
            ScorecardModel().fit(german_split.X_train, np.zeros(german_split.X_train.height))

    def test_labels_other_than_0_1(self, german_split: Split) -> None:
        with pytest.raises(TrainingDataError, match="1 = bad"):
            ScorecardModel().fit(german_split.X_train, np.full(german_split.X_train.height, 2))

    def test_a_missing_column(self, german_split: Split) -> None:
        with pytest.raises(ColumnMissing, match="'income' not in the data"):
            ScorecardModel(features=["income", "age"]).fit(german_split.X_train, german_split.y_train)
        with pytest.raises(ColumnMissing, match="'age' not in the data to score"):
            ScorecardModel(features=["age"]).fit(german_split.X_train, german_split.y_train).score(
                german_split.X_test.drop("age")
            )

    def test_text_where_a_number_is_expected(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        X = german_split.X_test.with_columns(pl.col("duration_months").cast(pl.String))
        with pytest.raises(
            TrainingDataError, match="'duration_months' must hold numbers, but the data has a String"
        ):
            german_scorecard.score(X)

    def test_a_date_column(self) -> None:
        from datetime import date

        X = pl.DataFrame({"opened": [date(2020, 1, d) for d in range(1, 21)], "n": list(range(20))})
        with pytest.raises(TrainingDataError, match="'opened' is a Date column"):
            ScorecardModel().fit(X, np.r_[np.zeros(10), np.ones(10)])

    def test_rows_disagree(self, german_split: Split) -> None:
        with pytest.raises(TrainingDataError, match="rows but y has"):
            ScorecardModel().fit(german_split.X_train, german_split.y_train[:10])

    def test_no_signal(self) -> None:
        X = pl.DataFrame(
            {"constant": [1.0] * 400, "empty": [None] * 400},
            schema={"constant": pl.Float64, "empty": pl.Float64},
        )
        y = np.r_[np.zeros(300), np.ones(100)]
        with pytest.raises(TrainingDataError, match="no feature passes selection"):
            ScorecardModel().fit(X, y)
