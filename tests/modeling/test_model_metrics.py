"""AUC, KS, deciles, bands, PSI and Hosmer-Lemeshow: worked examples and scikit-learn as oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from creditfactory.modeling.model import metrics


class TestDiscrimination:
    def test_auc_by_hand(self) -> None:
        # bads score 0.9, 0.4; goods 0.8, 0.3, 0.1: of 6 bad-good pairs, 5 are ranked right
        y = [1, 1, 0, 0, 0]
        p = [0.9, 0.4, 0.8, 0.3, 0.1]
        assert metrics.auc(y, p) == pytest.approx(5 / 6)
        assert metrics.gini(5 / 6) == pytest.approx(2 / 3)

    def test_ties_count_half(self) -> None:
        assert metrics.auc([1, 0], [0.5, 0.5]) == 0.5

    def test_auc_and_ks_agree_with_scikit_learn(self) -> None:
        rng = np.random.default_rng(11)
        y = rng.integers(0, 2, 5000)
        p = np.round(rng.random(5000) * 0.6 + 0.3 * y, 2)  # with ties
        assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        fpr, tpr, _ = roc_curve(y, p)
        assert metrics.ks(y, p) == pytest.approx(float(np.max(tpr - fpr)), abs=1e-12)

    def test_ks_by_hand(self) -> None:
        # riskiest first: B B G B G G -> after 2 rows 2/3 of bads and 0 goods: KS = 2/3
        y = [1, 1, 0, 1, 0, 0]
        p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
        assert metrics.ks(y, p) == pytest.approx(2 / 3)

    def test_one_class_gives_nan(self) -> None:
        assert math.isnan(metrics.auc([0, 0], [0.1, 0.2]))

    def test_summary(self) -> None:
        s = metrics.summary([1, 0, 0, 1], [0.8, 0.2, 0.4, 0.6])
        assert s["rows"] == 4 and s["bads"] == 2 and s["bad_rate"] == 0.5
        assert s["auc"] == 1.0 and s["gini"] == 1.0 and s["ks"] == 1.0
        assert s["brier"] == pytest.approx((0.04 + 0.04 + 0.16 + 0.16) / 4)


class TestTables:
    def test_deciles(self) -> None:
        y = np.array([1] * 10 + [0] * 90)
        p = np.linspace(1, 0, 100)  # the ten bads are the ten riskiest
        table = metrics.deciles(y, p)
        assert table.height == 10
        assert table["rows"].to_list() == [10] * 10
        assert table["bads"].to_list() == [10] + [0] * 9
        assert table["lift"][0] == pytest.approx(10.0)
        assert table["cum_bad_capture"].to_list()[0] == 1.0

    def test_band_edges_are_whole_points_from_the_development_scores(self) -> None:
        scores = np.arange(400, 700, 0.5)
        edges = metrics.band_edges(scores, bands=4)
        assert edges == [475.0, 550.0, 625.0]
        assert metrics.band_labels(edges) == ["< 475", "475-550", "550-625", ">= 625"]

    def test_bands_calibration(self) -> None:
        y = np.array([1, 0, 0, 0, 1, 1])
        pd_ = np.array([0.5, 0.3, 0.1, 0.1, 0.7, 0.9])
        score = np.array([450, 520, 600, 610, 430, 410])
        table = metrics.bands(y, pd_, score, [500, 580])
        assert table["rows"].to_list() == [3, 1, 2]
        assert table["bad_rate"].to_list() == [1.0, 0.0, 0.0]
        assert table["mean_pd"].to_list() == pytest.approx([0.7, 0.3, 0.1])

    def test_hosmer_lemeshow_accepts_a_calibrated_model(self) -> None:
        rng = np.random.default_rng(1)
        p = rng.uniform(0.02, 0.5, 20_000)
        y = (rng.random(20_000) < p).astype(int)
        calibrated = metrics.hosmer_lemeshow(y, p)
        assert calibrated["dof"] == 10 and calibrated["p_value"] > 0.01
        assert metrics.hosmer_lemeshow(y, p, fitted=True)["dof"] == 8
        assert metrics.hosmer_lemeshow(y, p * 0.5)["p_value"] < 1e-6


class TestStability:
    def test_psi_by_hand(self) -> None:
        # shares 0.5/0.5 against 0.6/0.4: (0.1 ln 1.2) + (-0.1 ln 0.8)
        expected = 0.1 * math.log(1.2) - 0.1 * math.log(0.8)
        assert metrics.psi([50, 50], [60, 40]) == pytest.approx(expected)
        assert metrics.psi([10, 20, 30], [10, 20, 30]) == 0.0

    def test_an_empty_bin_stays_finite(self) -> None:
        assert math.isfinite(metrics.psi([10, 0], [5, 5]))

    def test_psi_of_values_with_missing(self) -> None:
        dev = np.array([1.0, 2.0, 3.0, np.nan])
        new = np.array([1.0, 1.0, 3.0, np.nan])
        # bins (<2, 2-3, >=3, missing): 1,1,1,1 against 2,0,1,1
        assert metrics.psi_of_values(dev, new, [2.0, 3.0]) == pytest.approx(
            metrics.psi([1, 1, 1, 1], [2, 0, 1, 1])
        )

    def test_readings(self) -> None:
        assert metrics.psi_reading(0.05) == "stable"
        assert metrics.psi_reading(0.2) == "some shift"
        assert metrics.psi_reading(0.3) == "significant shift"
