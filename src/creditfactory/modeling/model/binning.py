"""Optimal binning of one feature, weight of evidence and information value.

The cut points come from optbinning's :class:`~optbinning.OptimalBinning` (a mixed-integer or
constraint-programming search for the bins with the most information value under a monotonic
trend and minimum bin sizes); everything after the cut points is ours and explicit: the bins,
their counts, their weight of evidence, and the vectorised assignment of values to bins that
scoring uses.

Conventions (Siddiqi's, and optbinning's):

* a numeric bin is the half-open interval ``[lower, upper)``; the first starts at -inf, the last
  ends at +inf;
* ``WoE = ln(share of goods in the bin / share of bads in the bin)``: positive is safer than
  average, negative riskier; ``IV = sum((share of goods - share of bads) * WoE)``;
* a bin with goods but no bads (or the reverse) adds 0.5 to both counts before the logarithm, so
  that its WoE stays finite; an empty bin has WoE 0 (no evidence either way);
* missing values (null or NaN) have their own bin, and so do the special codes a feature declares
  (e.g. -1 for "not applicable"); a categorical feature also has an ``other`` bin, WoE 0, for
  categories never seen in training.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import polars as pl

from creditfactory.modeling.model.data import BOOL, NUMBER, STRING, numeric_values, string_values

#: Below this many cut points a bin index is computed by comparisons, above it by binary search.
_COMPARE_LIMIT = 24


class BinKind(StrEnum):
    INTERVAL = "interval"
    CATEGORIES = "categories"
    SPECIAL = "special"
    MISSING = "missing"
    OTHER = "other"


@dataclass(frozen=True)
class Bin:
    kind: BinKind
    lower: float | None = None
    """Inclusive lower bound of an interval (None = -inf)."""
    upper: float | None = None
    """Exclusive upper bound of an interval (None = +inf)."""
    values: tuple[Any, ...] = ()
    """The categories of a category bin, or the codes of the special bin."""
    count: int = 0
    bads: int = 0
    woe: float = 0.0
    iv: float = 0.0

    @property
    def goods(self) -> int:
        return self.count - self.bads

    @property
    def bad_rate(self) -> float | None:
        return self.bads / self.count if self.count else None

    @property
    def label(self) -> str:
        if self.kind is BinKind.INTERVAL:
            lo = "-inf" if self.lower is None else _fmt(self.lower)
            hi = "+inf" if self.upper is None else _fmt(self.upper)
            return f"{'(' if self.lower is None else '['}{lo}, {hi})"
        if self.kind is BinKind.CATEGORIES:
            return ", ".join(str(v) for v in self.values)
        if self.kind is BinKind.SPECIAL:
            return "special: " + ", ".join(_fmt(v) if isinstance(v, float) else str(v) for v in self.values)
        if self.kind is BinKind.MISSING:
            return "missing"
        return "other (not seen in training)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "lower": self.lower,
            "upper": self.upper,
            "values": list(self.values),
            "label": self.label,
            "count": self.count,
            "bads": self.bads,
            "woe": self.woe,
            "iv": self.iv,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bin:
        return cls(
            kind=BinKind(data["kind"]),
            lower=None if data.get("lower") is None else float(data["lower"]),
            upper=None if data.get("upper") is None else float(data["upper"]),
            values=tuple(data.get("values") or ()),
            count=int(data.get("count", 0)),
            bads=int(data.get("bads", 0)),
            woe=float(data["woe"]),
            iv=float(data.get("iv", 0.0)),
        )


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def woe_iv(goods: np.ndarray, bads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weight of evidence and information value per bin from good and bad counts."""
    goods = np.asarray(goods, dtype=np.float64)
    bads = np.asarray(bads, dtype=np.float64)
    total_g, total_b = goods.sum(), bads.sum()
    woe = np.zeros(goods.shape)
    iv = np.zeros(goods.shape)
    if total_g == 0 or total_b == 0:
        return woe, iv
    for i, (g, b) in enumerate(zip(goods, bads, strict=True)):
        if g + b == 0:
            continue
        if g == 0 or b == 0:
            g, b = g + 0.5, b + 0.5
        share_g, share_b = g / total_g, b / total_b
        woe[i] = math.log(share_g / share_b)
        iv[i] = (share_g - share_b) * woe[i]
    return woe, iv


@dataclass(frozen=True)
class FeatureBinning:
    """The bins of one feature, in scoring order: intervals or category groups, then special,
    missing and (for categories) other."""

    name: str
    dtype: str
    """How the feature is binned: ``number`` (intervals) or ``string`` (category groups)."""
    source_dtype: str
    """The column's type in the data: number, string or bool."""
    bins: tuple[Bin, ...]
    _category_index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.dtype == STRING and not self._category_index:
            index = {}
            for i, b in enumerate(self.bins):
                if b.kind is BinKind.CATEGORIES:
                    for v in b.values:
                        index[str(v)] = i
            object.__setattr__(self, "_category_index", index)

    # ------------------------------------------------------------------ structure

    @property
    def iv(self) -> float:
        return float(sum(b.iv for b in self.bins))

    @property
    def regular(self) -> tuple[Bin, ...]:
        return tuple(b for b in self.bins if b.kind in (BinKind.INTERVAL, BinKind.CATEGORIES))

    @property
    def splits(self) -> np.ndarray:
        """Cut points of a numeric feature (the lower bounds of every interval but the first)."""
        return np.array(
            [b.lower for b in self.bins if b.kind is BinKind.INTERVAL and b.lower is not None],
            dtype=np.float64,
        )

    def position(self, kind: BinKind) -> int | None:
        for i, b in enumerate(self.bins):
            if b.kind is kind:
                return i
        return None

    @property
    def specials(self) -> tuple[Any, ...]:
        i = self.position(BinKind.SPECIAL)
        return () if i is None else self.bins[i].values

    @property
    def trend(self) -> str:
        """Observed trend of the bad rate over the regular bins."""
        rates = [b.bad_rate for b in self.regular if b.count]
        if len(rates) < 2:
            return "single bin"
        if self.dtype == STRING:
            return "grouped"
        diffs = np.diff(np.array(rates, dtype=float))
        if np.all(diffs >= 0):
            return "ascending"
        if np.all(diffs <= 0):
            return "descending"
        turns = int(np.sum(np.diff(np.sign(diffs[diffs != 0])) != 0))
        if turns == 1:
            return "peak" if diffs[diffs != 0][0] > 0 else "valley"
        return "not monotonic"

    # ------------------------------------------------------------------ assignment

    def codes(self, column: pl.Series) -> np.ndarray:
        """The bin index of every value (int32)."""
        if self.dtype == STRING:
            return self._category_codes(column)
        return self.numeric_codes(numeric_values(column))

    def numeric_codes(self, values: np.ndarray) -> np.ndarray:
        splits = self.splits
        if splits.size <= _COMPARE_LIMIT:
            idx = np.zeros(values.shape[0], dtype=np.int32)
            for s in splits:
                idx += values >= s
        else:
            idx = np.searchsorted(splits, values, side="right").astype(np.int32)
        specials = self.specials
        if specials:
            idx[np.isin(values, np.asarray(specials, dtype=np.float64))] = self.position(BinKind.SPECIAL)
        missing = self.position(BinKind.MISSING)
        assert missing is not None
        idx[np.isnan(values)] = missing
        return idx

    def _category_codes(self, column: pl.Series) -> np.ndarray:
        table = self.category_table()
        if table is None:
            return pl.select(self.code_expr(pl.lit(column))).to_series().to_numpy()
        text = string_values(column)
        codes = table.codes(category_hashes(text))
        codes[text.is_null().to_numpy()] = self.position(BinKind.MISSING)
        return codes

    def category_table(self) -> CategoryTable | None:
        """The hashed look-up of this feature's categories (None above 64 categories)."""
        if self.dtype != STRING:
            return None
        cached = self.__dict__.get("_table", False)
        if cached is False:
            cached = CategoryTable.build(self._category_index, other=self.position(BinKind.OTHER))  # type: ignore[arg-type]
            object.__setattr__(self, "_table", cached)
        return cached  # type: ignore[return-value]

    def code_expr(self, source: pl.Expr | None = None) -> pl.Expr:
        """A categorical feature's bin index as a Polars expression (Int32)."""
        missing = self.position(BinKind.MISSING)
        other = self.position(BinKind.OTHER)
        text = (pl.col(self.name) if source is None else source).cast(pl.String)
        return (
            pl.when(text.is_null())
            .then(pl.lit(missing, pl.Int32))
            .otherwise(text.replace_strict(self._category_index, default=other, return_dtype=pl.Int32))
            .alias(self.name)
        )

    def woe_of(self, column: pl.Series) -> np.ndarray:
        return np.array([b.woe for b in self.bins])[self.codes(column)]

    # ------------------------------------------------------------------ tables

    def table(self) -> pl.DataFrame:
        """The IV/WoE table of this feature, one row per bin."""
        total = sum(b.count for b in self.bins) or 1
        return pl.DataFrame(
            {
                "feature": [self.name] * len(self.bins),
                "bin": [b.label for b in self.bins],
                "kind": [b.kind.value for b in self.bins],
                "count": [b.count for b in self.bins],
                "share": [b.count / total for b in self.bins],
                "bads": [b.bads for b in self.bins],
                "bad_rate": [b.bad_rate for b in self.bins],
                "woe": [b.woe for b in self.bins],
                "iv": [b.iv for b in self.bins],
            },
            schema_overrides={"bad_rate": pl.Float64},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "source_dtype": self.source_dtype,
            "iv": self.iv,
            "bins": [b.to_dict() for b in self.bins],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBinning:
        binning = cls(
            name=str(data["name"]),
            dtype=str(data["dtype"]),
            source_dtype=str(data.get("source_dtype", data["dtype"])),
            bins=tuple(Bin.from_dict(b) for b in data["bins"]),
        )
        binning.check()
        return binning

    def check(self) -> None:
        """Raise ValueError unless the bins are a well-formed partition."""
        kinds = [b.kind for b in self.bins]
        if kinds.count(BinKind.MISSING) != 1:
            raise ValueError(f"feature {self.name!r}: needs exactly one missing bin")
        if self.dtype == NUMBER:
            intervals = [b for b in self.bins if b.kind is BinKind.INTERVAL]
            if not intervals or intervals[0].lower is not None or intervals[-1].upper is not None:
                raise ValueError(f"feature {self.name!r}: intervals must run from -inf to +inf")
            for a, b in zip(intervals, intervals[1:], strict=False):
                lower = -math.inf if a.lower is None else a.lower
                if a.upper is None or b.lower is None or a.upper != b.lower or not a.upper > lower:
                    raise ValueError(f"feature {self.name!r}: intervals must be contiguous and increasing")
            if any(b.kind in (BinKind.CATEGORIES, BinKind.OTHER) for b in self.bins):
                raise ValueError(f"feature {self.name!r}: a numeric feature has no category bins")
        elif self.dtype == STRING:
            if kinds.count(BinKind.OTHER) != 1:
                raise ValueError(f"feature {self.name!r}: a categorical feature needs one 'other' bin")
            seen: set[str] = set()
            for b in self.bins:
                if b.kind is BinKind.CATEGORIES:
                    for v in b.values:
                        if str(v) in seen:
                            raise ValueError(f"feature {self.name!r}: category {v!r} is in two bins")
                        seen.add(str(v))
            if any(b.kind is BinKind.INTERVAL for b in self.bins):
                raise ValueError(f"feature {self.name!r}: a categorical feature has no intervals")
        else:
            raise ValueError(f"feature {self.name!r}: unknown binning type {self.dtype!r}")


def category_hashes(text: pl.Series) -> np.ndarray:
    """64-bit hashes of text values (Polars' hash, stable within one Polars version and process)."""
    return text.hash(seed=0).to_numpy()


@dataclass(frozen=True)
class CategoryTable:
    """A collision-free hash table from category text to bin code, for fast lookups.

    A value's 64-bit hash is multiplied by an odd constant and shifted to a slot of a table with
    about k² slots for k categories, the constant chosen so that no two known categories share a
    slot; a value is a known category when the slot holds exactly its hash, else it is ``other``.
    Hashing a million short strings costs a few milliseconds where a string hash map costs tens.
    """

    multiplier: np.uint64
    shift: np.uint64
    keys: np.ndarray
    codes_by_slot: np.ndarray
    other: int

    @classmethod
    def build(cls, index: Mapping[str, int], *, other: int, limit: int = 64) -> CategoryTable | None:
        if not index or len(index) > limit:
            return None
        names = list(index)
        hashes = category_hashes(pl.Series(names, dtype=pl.String))
        if len(np.unique(hashes)) != len(hashes):
            return None
        bits = max(1, int(np.ceil(np.log2(max(2, len(names)) ** 2))))
        rng = np.random.default_rng(20250701)
        for attempt in range(200):
            multiplier = np.uint64(int(rng.integers(1, 2**62)) * 2 + 1)
            shift = np.uint64(64 - bits)
            slots = (hashes * multiplier) >> shift
            if len(np.unique(slots)) == len(slots):
                keys = np.zeros(1 << bits, dtype=np.uint64)
                codes = np.full(1 << bits, other, dtype=np.int32)
                keys[slots] = hashes
                codes[slots] = [index[n] for n in names]
                # an empty slot must never match: give it a key no known category has
                spare = np.uint64(0) if 0 not in hashes else np.uint64(1)
                while spare in hashes:
                    spare += np.uint64(1)
                empty = np.ones(1 << bits, dtype=bool)
                empty[slots] = False
                keys[empty] = spare
                codes[empty] = other
                return cls(multiplier=multiplier, shift=shift, keys=keys, codes_by_slot=codes, other=other)
            if attempt % 50 == 49:
                bits += 1
        return None

    def slots(self, hashes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        with np.errstate(over="ignore"):
            slot = np.multiply(hashes, self.multiplier, out=out)
        np.right_shift(slot, self.shift, out=slot)
        return slot.view(np.int64)

    def codes(self, hashes: np.ndarray) -> np.ndarray:
        """Bin code of every hash (``other`` for unknown values; nulls are the caller's)."""
        slot = self.slots(hashes)
        codes = self.codes_by_slot.take(slot)
        codes[self.keys.take(slot) != hashes] = self.other
        return codes


@dataclass(frozen=True)
class BinningParams:
    """What optbinning is asked for (see :class:`optbinning.OptimalBinning`)."""

    monotonic_trend: str | None = "auto_asc_desc"
    max_n_prebins: int = 20
    min_prebin_size: float = 0.02
    min_bin_size: float | None = None
    max_n_bins: int | None = None
    special_codes: tuple[float, ...] = ()
    solver: str = "cp"
    time_limit: int = 100

    def with_overrides(self, **changes: Any) -> BinningParams:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def fit_binning(
    name: str,
    column: pl.Series,
    y: np.ndarray,
    *,
    source_dtype: str,
    categorical: bool,
    params: BinningParams = BinningParams(),
) -> FeatureBinning:
    """Find the bins of one feature on training data (``y``: 1 = bad)."""
    from optbinning import OptimalBinning

    dtype = STRING if categorical else NUMBER
    options: dict[str, Any] = {
        "name": name,
        "dtype": "categorical" if categorical else "numerical",
        "solver": params.solver,
        "max_n_prebins": params.max_n_prebins,
        "min_prebin_size": params.min_prebin_size,
        "monotonic_trend": params.monotonic_trend,
        "time_limit": params.time_limit,
    }
    if params.min_bin_size is not None:
        options["min_bin_size"] = params.min_bin_size
    if params.max_n_bins is not None:
        options["max_n_bins"] = params.max_n_bins
    specials = tuple(float(v) for v in params.special_codes) if not categorical else ()
    if specials:
        options["special_codes"] = list(specials)

    if categorical:
        text = string_values(column)
        x: Any = np.array(text.to_list(), dtype=object)
        x_has_values = text.drop_nulls().len() > 0
    else:
        x = numeric_values(column)
        usable = ~np.isnan(x)
        if specials:
            usable &= ~np.isin(x, np.asarray(specials))
        x_has_values = bool(usable.any())

    splits: list[Any] = []
    if x_has_values:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            binner = OptimalBinning(**options)
            binner.fit(x, y)
        splits = list(binner.splits) if binner.splits is not None else []

    bins: list[Bin] = []
    if categorical:
        for group in splits:
            values = tuple(str(v) for v in list(group))
            if values:
                bins.append(Bin(kind=BinKind.CATEGORIES, values=values))
        bins.append(Bin(kind=BinKind.MISSING))
        bins.append(Bin(kind=BinKind.OTHER))
    else:
        cuts = sorted({float(s) for s in splits})
        edges: list[float | None] = [None, *cuts, None]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            bins.append(Bin(kind=BinKind.INTERVAL, lower=lo, upper=hi))
        if specials:
            bins.append(Bin(kind=BinKind.SPECIAL, values=specials))
        bins.append(Bin(kind=BinKind.MISSING))

    skeleton = FeatureBinning(name=name, dtype=dtype, source_dtype=source_dtype, bins=tuple(bins))
    return with_counts(skeleton, skeleton.codes(column), y)


def with_counts(binning: FeatureBinning, codes: np.ndarray, y: np.ndarray) -> FeatureBinning:
    """The same bins with counts, WoE and IV from training codes and labels."""
    k = len(binning.bins)
    counts = np.bincount(codes, minlength=k)
    bads = np.bincount(codes, weights=y.astype(np.float64), minlength=k).round().astype(np.int64)
    goods = counts - bads
    woe, iv = woe_iv(goods, bads)
    bins = tuple(
        replace(b, count=int(counts[i]), bads=int(bads[i]), woe=float(woe[i]), iv=float(iv[i]))
        for i, b in enumerate(binning.bins)
    )
    return FeatureBinning(
        name=binning.name, dtype=binning.dtype, source_dtype=binning.source_dtype, bins=bins
    )


def iv_table(binnings: Sequence[FeatureBinning]) -> pl.DataFrame:
    """One row per feature: IV, number of bins, observed trend; highest IV first."""
    rows = [
        {
            "feature": b.name,
            "type": b.source_dtype if b.dtype == NUMBER else STRING,
            "iv": b.iv,
            "bins": len(b.regular),
            "trend": b.trend,
            "missing_share": (
                b.bins[b.position(BinKind.MISSING) or 0].count / max(1, sum(x.count for x in b.bins))
            ),
        }
        for b in binnings
    ]
    schema = {
        "feature": pl.String,
        "type": pl.String,
        "iv": pl.Float64,
        "bins": pl.Int64,
        "trend": pl.String,
        "missing_share": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("iv", descending=True)


def iv_strength(iv: float) -> str:
    """The usual reading of an information value (Siddiqi)."""
    if iv < 0.02:
        return "not predictive"
    if iv < 0.1:
        return "weak"
    if iv < 0.3:
        return "medium"
    if iv < 0.5:
        return "strong"
    return "very strong (check for leakage)"


__all__ = [
    "BOOL",
    "Bin",
    "BinKind",
    "BinningParams",
    "FeatureBinning",
    "fit_binning",
    "iv_strength",
    "iv_table",
    "with_counts",
    "woe_iv",
]
