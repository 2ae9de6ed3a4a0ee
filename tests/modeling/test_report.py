"""The validation figures and the committee's HTML page."""

from __future__ import annotations

import re

import numpy as np
import pytest

from creditfactory.modeling import LightGBMModel, ScorecardModel
from creditfactory.modeling.model import metrics
from creditfactory.modeling.report import render
from creditfactory.modeling.validation import Validation, validate
from tests.modeling.conftest import Split

MANIFEST = {
    "name": "german",
    "version": 3,
    "kind": "scorecard",
    "segment": None,
    "target": "class",
    "trained_by": "S001",
    "trained_at": "2025-07-01T02:00:00+00:00",
    "offered_features": [],
    "data": {"source": "german_credit.csv", "bad_value": 2, "fingerprint": "ab" * 32},
    "split": {"test_size": 0.3, "seed": 42},
    "windows": {"development": "2024-06-30", "out of time": "2024-12-31"},
    "scaling": {"base_score": 600, "base_odds": 50, "pdo": 20},
    "libraries": {"numpy": "2", "optbinning": "1"},
}


def samples(split: Split) -> dict[str, tuple]:
    half = split.X_test.height // 2
    return {
        "train": (split.X_train, split.y_train),
        "test": (split.X_test[:half], split.y_test[:half]),
        "oot": (split.X_test[half:], split.y_test[half:]),
    }


@pytest.fixture(scope="module")
def validation(german_scorecard: ScorecardModel, german_split: Split) -> Validation:
    return validate(german_scorecard, samples(german_split))


@pytest.fixture(scope="module")
def html(validation: Validation) -> str:
    return render(validation, MANIFEST)


class TestValidation:
    def test_figures_per_sample(
        self, validation: Validation, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        oot_x, oot_y = samples(german_split)["oot"]
        assert validation.headline == "oot"
        expected = metrics.auc(oot_y, german_scorecard.predict_proba(oot_x)[:, 1])
        assert validation.summary["oot"]["auc"] == pytest.approx(expected)
        assert set(validation.score_psi) == {"test", "oot"}
        assert validation.feature_psi["feature"].to_list() == german_scorecard.selected_features_
        assert validation.deciles["oot"]["rows"].sum() == oot_x.height

    def test_bands_are_cut_on_development_and_shared(self, validation: Validation) -> None:
        labels = {k: t["band"].to_list() for k, t in validation.bands.items()}
        assert labels["train"] == labels["test"] == labels["oot"]
        shares = validation.bands["train"]["share"].to_numpy()
        assert shares.max() < 0.2  # about ten equal bands

    def test_manifest_metrics_are_json_ready(self, validation: Validation) -> None:
        import json

        m = validation.metrics()
        assert m["headline"] == "oot" and m["auc"] == validation.summary["oot"]["auc"]
        json.dumps(m, allow_nan=False)

    def test_lightgbm_gets_iv_psi_and_importance_from_its_own_bins(self, german_split: Split) -> None:
        model = LightGBMModel(n_estimators=200, learning_rate=0.1, early_stopping_rounds=20).fit(
            german_split.X_train, german_split.y_train
        )
        v = validate(model, samples(german_split))
        assert v.importance is not None and v.importance.height == 20
        assert v.iv.height == 20 and v.feature_psi.height == 20
        assert v.points is None


class TestReport:
    def test_one_self_contained_page(self, html: str) -> None:
        assert html.startswith("<!DOCTYPE html>")
        assert html.count("<svg") >= 6
        assert "<script" not in html
        assert not re.search(r'(src|href)="https?:', html)
        assert "@import" not in html and "url(http" not in html

    def test_what_a_committee_reads(self, html: str, validation: Validation) -> None:
        for text in (
            "In-time and out-of-time comparison",
            "out-of-time",
            "Deciles",
            "Calibration and score bands",
            "Hosmer",
            "Information value",
            "Stability of each feature",
            "Correlation of WoE",
            "Scorecard",
            "600 points at odds of 50:1",
            "checking_status",
            "window: out of time",
            "2025-07-01 02:00 UTC",
        ):
            assert text in html, text
        auc = validation.summary["oot"]["auc"]
        assert f"<b>{auc:.3f}</b>" in html

    def test_the_same_model_gives_the_same_page(self, html: str, validation: Validation) -> None:
        assert render(validation, MANIFEST) == html

    def test_text_is_escaped(self, validation: Validation) -> None:
        html = render(validation, {**MANIFEST, "data": {"source": "<b>x</b>.csv"}})
        assert "&lt;b&gt;x&lt;/b&gt;.csv" in html

    def test_a_shifted_sample_is_flagged(self, german_scorecard: ScorecardModel, german_split: Split) -> None:
        shifted = german_split.X_test.filter(german_split.X_test["duration_months"] > 24)
        y = german_split.y_test[(german_split.X_test["duration_months"] > 24).to_numpy()]
        v = validate(
            german_scorecard, {"train": (german_split.X_train, german_split.y_train), "test": (shifted, y)}
        )
        assert v.score_psi["test"] > 0.1
        html = render(v, MANIFEST)
        assert "Features that shifted" in html and "duration_months" in html
        assert np.isfinite(v.summary["test"]["auc"])
