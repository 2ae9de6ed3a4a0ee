"""Binning, weight of evidence and information value: worked examples and optbinning as oracle."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest

from creditfactory.modeling.model.binning import (
    Bin,
    BinKind,
    BinningParams,
    FeatureBinning,
    fit_binning,
    with_counts,
    woe_iv,
)
from tests.modeling.conftest import Split


def numeric_binning(cuts: list[float], *, specials: tuple[float, ...] = ()) -> FeatureBinning:
    edges: list[float | None] = [None, *cuts, None]
    bins = [
        Bin(kind=BinKind.INTERVAL, lower=lo, upper=hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    if specials:
        bins.append(Bin(kind=BinKind.SPECIAL, values=specials))
    bins.append(Bin(kind=BinKind.MISSING))
    return FeatureBinning(name="x", dtype="number", source_dtype="number", bins=tuple(bins))


class TestWoeIv:
    def test_hand_computed_table(self) -> None:
        # bin A: 40 goods, 10 bads; bin B: 60 goods, 40 bads (100 goods, 50 bads in all)
        woe, iv = woe_iv(np.array([40, 60]), np.array([10, 40]))
        assert woe[0] == pytest.approx(math.log((40 / 100) / (10 / 50)))  # ln 2 = 0.6931
        assert woe[1] == pytest.approx(math.log((60 / 100) / (40 / 50)))  # ln 0.75 = -0.2877
        assert iv[0] == pytest.approx((0.4 - 0.2) * math.log(2))  # 0.1386
        assert iv[1] == pytest.approx((0.6 - 0.8) * math.log(0.75))  # 0.0575
        assert iv.sum() == pytest.approx(0.196166, abs=1e-6)

    def test_a_bin_without_bads_stays_finite(self) -> None:
        woe, iv = woe_iv(np.array([10, 90, 0]), np.array([0, 50, 0]))
        assert woe[0] == pytest.approx(math.log((10.5 / 100) / (0.5 / 50)))
        assert np.isfinite(iv).all()
        assert woe[2] == 0.0 and iv[2] == 0.0  # empty bin: no evidence

    def test_counts_of_a_hand_built_binning(self) -> None:
        x = pl.Series("x", [1.0] * 50 + [5.0] * 100)
        y = np.array([0] * 40 + [1] * 10 + [0] * 60 + [1] * 40)
        binned = with_counts(numeric_binning([3.0]), numeric_binning([3.0]).codes(x), y)
        low, high, missing = binned.bins
        assert (low.count, low.bads, high.count, high.bads, missing.count) == (50, 10, 100, 40, 0)
        assert low.woe == pytest.approx(math.log(2))
        assert binned.iv == pytest.approx(0.196166, abs=1e-6)
        assert low.label == "(-inf, 3)" and high.label == "[3, +inf)"


class TestAssignment:
    def test_intervals_are_closed_on_the_left(self) -> None:
        b = numeric_binning([0.0, 10.0], specials=(-1.0,))
        codes = b.codes(pl.Series([-5.0, -1.0, 0.0, 9.99, 10.0, None, float("nan"), float("inf")]))
        special, missing = b.position(BinKind.SPECIAL), b.position(BinKind.MISSING)
        assert codes.tolist() == [0, special, 1, 1, 2, missing, missing, 2]

    def test_integer_and_boolean_columns_are_numbers(self) -> None:
        b = numeric_binning([0.5])
        assert b.codes(pl.Series([0, 1, None], dtype=pl.Int32)).tolist() == [0, 1, 2]
        assert b.codes(pl.Series([False, True, None])).tolist() == [0, 1, 2]

    def test_categories_missing_and_unseen(self) -> None:
        b = FeatureBinning(
            name="c",
            dtype="string",
            source_dtype="string",
            bins=(
                Bin(kind=BinKind.CATEGORIES, values=("a", "b")),
                Bin(kind=BinKind.CATEGORIES, values=("c",)),
                Bin(kind=BinKind.MISSING),
                Bin(kind=BinKind.OTHER),
            ),
        )
        assert b.codes(pl.Series(["b", "c", None, "zz"])).tolist() == [0, 1, 2, 3]

    @pytest.mark.parametrize("categories", [3, 40, 200])
    def test_hashed_lookup_agrees_with_a_dictionary(self, categories: int) -> None:
        rng = np.random.default_rng(categories)
        known = [f"C{i:03d}" for i in range(categories)]
        groups = [tuple(known[i::3]) for i in range(3)]
        b = FeatureBinning(
            name="c",
            dtype="string",
            source_dtype="string",
            bins=(
                *(Bin(kind=BinKind.CATEGORIES, values=g) for g in groups),
                Bin(kind=BinKind.MISSING),
                Bin(kind=BinKind.OTHER),
            ),
        )
        assert (b.category_table() is None) == (categories > 64)
        values = rng.choice([*known, "unseen", "C", "", None], 20_000).tolist()
        expected = []
        for v in values:
            if v is None:
                expected.append(3)
            else:
                expected.append(next((i for i, g in enumerate(groups) if v in g), 4))
        assert b.codes(pl.Series(values, dtype=pl.String)).tolist() == expected

    def test_malformed_bins_are_refused(self) -> None:
        good = numeric_binning([1.0, 2.0]).to_dict()
        good["bins"][1]["lower"] = 1.5  # a gap between [-inf, 1) and [1.5, 2)
        with pytest.raises(ValueError, match="contiguous"):
            FeatureBinning.from_dict(good)
        cat = {
            "name": "c",
            "dtype": "string",
            "bins": [
                {"kind": "categories", "values": ["a"], "woe": 0.1},
                {"kind": "categories", "values": ["a", "b"], "woe": 0.2},
                {"kind": "missing", "woe": 0.0},
                {"kind": "other", "woe": 0.0},
            ],
        }
        with pytest.raises(ValueError, match="in two bins"):
            FeatureBinning.from_dict(cat)


class TestOptimalBinning:
    def test_counts_and_woe_agree_with_optbinning(self, german_split: Split) -> None:
        from optbinning import OptimalBinning

        x, y = german_split.X_train["credit_amount"], german_split.y_train
        ours = fit_binning("credit_amount", x, y, source_dtype="number", categorical=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ob = OptimalBinning(
                name="credit_amount", monotonic_trend="auto_asc_desc", min_prebin_size=0.02, solver="cp"
            ).fit(x.to_numpy().astype(float), y)
            table = ob.binning_table.build()
        regular = ours.regular
        assert len(regular) == len(ob.splits) + 1
        for i, b in enumerate(regular):
            assert b.count == int(table["Count"].iloc[i])
            assert b.bads == int(table["Event"].iloc[i])
            assert b.woe == pytest.approx(float(table["WoE"].iloc[i]), abs=1e-9)
        assert ours.iv == pytest.approx(float(table["IV"].iloc[-1]), rel=1e-9)

    def test_numeric_bins_follow_a_monotonic_trend(self, german_split: Split) -> None:
        for name in ("duration_months", "credit_amount", "age", "installment_rate_pct"):
            b = fit_binning(
                name,
                german_split.X_train[name],
                german_split.y_train,
                source_dtype="number",
                categorical=False,
            )
            assert b.trend in ("ascending", "descending", "single bin"), (name, b.trend)

    def test_a_forced_trend_is_kept(self, german_split: Split) -> None:
        b = fit_binning(
            "age",
            german_split.X_train["age"],
            german_split.y_train,
            source_dtype="number",
            categorical=False,
            params=BinningParams(monotonic_trend="descending"),
        )
        rates = [x.bad_rate for x in b.regular]
        assert all(a >= c for a, c in zip(rates, rates[1:], strict=False))

    def test_missing_and_special_values_get_their_own_bins(self) -> None:
        rng = np.random.default_rng(3)
        n = 4000
        x = rng.normal(size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(1 + 1.5 * x))).astype(np.int8)
        x[:300] = np.nan
        y[:300] = (rng.random(300) < 0.6).astype(np.int8)  # missing is risky
        x[300:500] = -99.0
        y[300:500] = 0  # the special code is safe
        column = pl.Series("x", x).fill_nan(None)
        b = fit_binning(
            "x",
            column,
            y,
            source_dtype="number",
            categorical=False,
            params=BinningParams(special_codes=(-99.0,)),
        )
        special = b.bins[b.position(BinKind.SPECIAL)]
        missing = b.bins[b.position(BinKind.MISSING)]
        assert (special.count, special.bads) == (200, 0)
        assert missing.count == 300 and missing.woe < -0.5
        assert special.woe > 2  # no bads: 0.5 added to both counts
        assert b.trend == "descending"

    def test_categories_are_grouped(self, german_split: Split) -> None:
        b = fit_binning(
            "purpose",
            german_split.X_train["purpose"],
            german_split.y_train,
            source_dtype="string",
            categorical=True,
        )
        seen = {v for bin_ in b.regular for v in bin_.values}
        assert seen == set(german_split.X_train["purpose"].unique().to_list())
        assert b.bins[-1].kind is BinKind.OTHER and b.bins[-1].woe == 0.0
        assert FeatureBinning.from_dict(b.to_dict()) == b
