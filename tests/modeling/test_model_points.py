"""Points scaling by hand, and the points table scored four ways that must agree."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import polars as pl
import pytest

from creditfactory.modeling import ScorecardModel
from creditfactory.modeling.model.binning import Bin, BinKind, FeatureBinning
from creditfactory.modeling.model.points import PointsTable, PointsTableError, Scaling
from tests.modeling.conftest import Split

FACTOR = 20 / math.log(2)  # 28.8539...
OFFSET = 600 - FACTOR * math.log(50)  # 487.1229...


def one_feature_table(*, round_points: bool = False) -> PointsTable:
    binning = FeatureBinning(
        name="x",
        dtype="number",
        source_dtype="number",
        bins=(
            Bin(kind=BinKind.INTERVAL, lower=None, upper=10.0, woe=0.5),
            Bin(kind=BinKind.INTERVAL, lower=10.0, upper=None, woe=-0.5),
            Bin(kind=BinKind.MISSING, woe=0.0),
        ),
    )
    return PointsTable.build([binning], [-0.8], -1.0, Scaling(600, 50, 20), round_points=round_points)


class TestScaling:
    def test_factor_and_offset_for_600_at_50_to_1_and_20_pdo(self) -> None:
        s = Scaling(base_score=600, base_odds=50, pdo=20)
        assert s.factor == pytest.approx(28.853901, abs=1e-6)
        assert s.offset == pytest.approx(487.122876, abs=1e-6)

    def test_base_odds_give_the_base_score_and_doubling_adds_the_pdo(self) -> None:
        s = Scaling(600, 50, 20)
        # odds good:bad of 50 -> P(bad) = 1/51 -> logit = ln(1/50)
        assert s.score_of_logit(math.log(1 / 50)) == pytest.approx(600)
        assert s.score_of_logit(math.log(1 / 100)) == pytest.approx(620)
        assert s.score_of_logit(math.log(1 / 25)) == pytest.approx(580)
        assert s.pd_of_score(np.array([600.0]))[0] == pytest.approx(1 / 51)

    def test_points_of_each_bin_by_hand(self) -> None:
        table = one_feature_table()
        low, high, missing = table.features[0].points
        # points = -factor * beta * woe + (offset - factor * intercept) / n_features
        assert low == pytest.approx(-FACTOR * -0.8 * 0.5 + OFFSET + FACTOR)  # 527.5184
        assert low == pytest.approx(527.518, abs=1e-3)
        # the same from the odds: logit = -1 - 0.8 * 0.5 = -1.4, score = offset + factor * 1.4
        assert low == pytest.approx(OFFSET + FACTOR * 1.4)
        assert high == pytest.approx(OFFSET + FACTOR * 0.6)  # 504.435
        assert missing == pytest.approx(OFFSET + FACTOR * 1.0)

    def test_rounded_points(self) -> None:
        assert one_feature_table(round_points=True).features[0].points == (528.0, 504.0, 516.0)

    def test_scoring_a_frame(self) -> None:
        table = one_feature_table()
        df = pl.DataFrame({"x": [3.0, 10.0, None, 99.0]})
        expected = [OFFSET + FACTOR * 1.4, OFFSET + FACTOR * 0.6, OFFSET + FACTOR, OFFSET + FACTOR * 0.6]
        np.testing.assert_allclose(table.score(df), expected)
        np.testing.assert_allclose(df.select(table.expr()).to_series().to_numpy(), expected)
        np.testing.assert_allclose(
            table.predict_pd(df), 1 / (1 + np.exp(-np.array([-1.4, -0.6, -1.0, -0.6])))
        )

    def test_invalid_scaling(self) -> None:
        with pytest.raises(ValueError, match="double the odds"):
            Scaling(600, 50, 0)


class TestScoringPaths:
    """NumPy lookups, the Polars expression, SQL and the logistic model give the same scores."""

    def frame(self, split: Split) -> pl.DataFrame:
        X = split.X_test
        # a missing value, a category never seen in training, an out-of-range amount
        return X.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(None)
            .otherwise(pl.col("credit_amount"))
            .alias("credit_amount"),
            pl.when(pl.int_range(pl.len()) == 1)
            .then(pl.lit("A999"))
            .otherwise(pl.col("purpose"))
            .alias("purpose"),
            pl.when(pl.int_range(pl.len()) == 2)
            .then(10**7)
            .otherwise(pl.col("duration_months"))
            .alias("duration_months"),
        )

    def test_points_are_the_scaled_log_odds(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        X = self.frame(german_split)
        table = german_scorecard.points_table_
        np.testing.assert_allclose(table.score(X), table.scaling.score_of_logit(table.logit(X)), atol=1e-9)

    def test_polars_expression(self, german_scorecard: ScorecardModel, german_split: Split) -> None:
        X = self.frame(german_split)
        via_expr = X.lazy().select(german_scorecard.score_expr()).collect().to_series().to_numpy()
        np.testing.assert_allclose(via_expr, german_scorecard.score(X), atol=1e-9)

    def test_points_matrix_sums_to_the_score(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        X = self.frame(german_split)
        matrix = german_scorecard.points_table_.points_matrix(X)
        np.testing.assert_allclose(matrix.sum(axis=1), german_scorecard.score(X), atol=1e-9)

    def test_sql_case_on_sqlite(self, german_scorecard: ScorecardModel, german_split: Split) -> None:
        X = self.frame(german_split)
        con = sqlite3.connect(":memory:")
        columns = X.columns
        con.execute("CREATE TABLE applicants (" + ", ".join(f'"{c}"' for c in columns) + ")")
        con.executemany(f"INSERT INTO applicants VALUES ({', '.join('?' for _ in columns)})", X.iter_rows())
        sql = german_scorecard.sql_case()
        got = np.array([r[0] for r in con.execute(f"SELECT {sql} FROM applicants ORDER BY rowid")])
        np.testing.assert_allclose(got, german_scorecard.score(X), atol=1e-9)

    def test_one_row_in_plain_python_equals_the_frame_exactly(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        X = self.frame(german_split)
        table = german_scorecard.points_table_
        by_frame = table.score(X)
        by_row = [table.score_one(row) for row in X.iter_rows(named=True)]
        assert by_row == by_frame.tolist()  # the same additions in the same order: bit for bit

    def test_reasons_are_the_features_furthest_below_their_best(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        X = german_split.X_test.head(50)
        table = german_scorecard.points_table_
        matrix = table.points_matrix(X)
        best = np.array([max(f.points) for f in table.features])
        reasons = german_scorecard.reason_codes(X, top=3)
        for i, row in enumerate(reasons):
            gaps = {name: best[j] - matrix[i, j] for j, name in enumerate(table.names)}
            expected = [n for n, g in sorted(gaps.items(), key=lambda kv: -kv[1]) if g > 1e-9][:3]
            assert row == expected


class TestManyCategories:
    def test_a_feature_with_more_categories_than_the_hash_table_takes(self) -> None:
        rng = np.random.default_rng(4)
        n = 6000
        region = rng.integers(0, 120, n)
        y = (rng.random(n) < 0.1 + 0.4 * (region % 3 == 0)).astype(np.int8)
        X = pl.DataFrame({"region": [f"R{r:03d}" for r in region], "noise": rng.normal(size=n)})
        model = ScorecardModel(features=["region"]).fit(X, y)
        assert model.binning_["region"].category_table() is None
        fresh = X.head(50).with_columns(pl.lit("R999").alias("region"))
        np.testing.assert_allclose(model.score(X), X.select(model.score_expr()).to_series().to_numpy())
        np.testing.assert_allclose(
            model.score(fresh), fresh.select(model.score_expr()).to_series().to_numpy()
        )


class TestOneRow:
    def test_specials_missing_nan_and_booleans(self) -> None:
        binning = FeatureBinning(
            name="x",
            dtype="number",
            source_dtype="number",
            bins=(
                Bin(kind=BinKind.INTERVAL, lower=None, upper=10.0, woe=0.5),
                Bin(kind=BinKind.INTERVAL, lower=10.0, upper=None, woe=-0.5),
                Bin(kind=BinKind.SPECIAL, values=(-1.0,), woe=0.9),
                Bin(kind=BinKind.MISSING, woe=0.1),
            ),
        )
        table = PointsTable.build([binning], [-0.8], -1.0, Scaling(600, 50, 20))
        values = [None, math.nan, -1, -1.0, 0, 9.999, 10, 10.0, 1e9, True, False]
        frame = pl.DataFrame({"x": [None if v is None else float(v) for v in values]})
        assert [table.score_one({"x": v}) for v in values] == table.score(frame).tolist()
        points = table.features[0].points
        assert table.score_one({"x": -1}) == points[2]  # the special bin, not the first interval
        assert table.score_one({}) == points[3]  # an absent column is missing

    def test_many_categories_and_values_only_a_frame_converts(self) -> None:
        rng = np.random.default_rng(4)
        n = 6000
        region = rng.integers(0, 120, n)
        y = (rng.random(n) < 0.1 + 0.4 * (region % 3 == 0)).astype(np.int8)
        X = pl.DataFrame({"region": [f"R{r:03d}" for r in region], "x": rng.normal(size=n)})
        model = ScorecardModel(features=["region", "x"]).fit(X, y)
        table = model.points_table_
        rows = X.head(200).with_columns(
            pl.when(pl.int_range(pl.len()) % 7 == 0).then(pl.lit("R999")).otherwise("region").alias("region"),
            pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise("x").alias("x"),
        )
        assert [table.score_one(r) for r in rows.iter_rows(named=True)] == table.score(rows).tolist()
        assert table.score_one({"region": "R001", "x": "1.5"}) is None  # text in a number feature
        assert table.score_one({"region": 1, "x": 1.5}) is None  # a number in a category feature


class TestSerialisation:
    def test_json_alone_rebuilds_the_same_scorecard(
        self, german_scorecard: ScorecardModel, german_split: Split
    ) -> None:
        text = german_scorecard.points_table_.to_json()
        rebuilt = ScorecardModel.from_points_table(text)
        X = german_split.X_test
        np.testing.assert_array_equal(rebuilt.score(X), german_scorecard.score(X))
        np.testing.assert_array_equal(rebuilt.predict_proba(X), german_scorecard.predict_proba(X))
        assert rebuilt.points_table_.to_json() == text

    def test_edited_points_are_refused(self, german_scorecard: ScorecardModel) -> None:
        data = json.loads(german_scorecard.points_table_.to_json())
        data["features"][0]["points"][0] += 5.0
        with pytest.raises(PointsTableError, match="do not follow from"):
            PointsTable.from_dict(data)

    def test_not_a_points_table(self) -> None:
        with pytest.raises(PointsTableError, match="not a scorecard"):
            PointsTable.from_dict({"format": "something else"})
        with pytest.raises(PointsTableError, match="not valid JSON"):
            PointsTable.from_json("{")

    def test_csv_lists_every_bin(self, german_scorecard: ScorecardModel) -> None:
        text = german_scorecard.points_table_.to_csv()
        frame = pl.read_csv(text.encode())
        assert frame.columns == [
            "feature",
            "type",
            "bin",
            "kind",
            "lower",
            "upper",
            "values",
            "count",
            "bads",
            "woe",
            "coefficient",
            "points",
        ]
        assert frame.height == sum(len(f.binning.bins) for f in german_scorecard.points_table_.features)
        assert set(frame["feature"].unique()) == set(german_scorecard.selected_features_)
