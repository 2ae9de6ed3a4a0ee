"""The scorecard as a points table: scaling, vectorised scoring, Polars and SQL expressions, JSON.

A scorecard is a logistic regression on weights of evidence,
``logit(P(bad)) = intercept + sum(coefficient_j * WoE_j)``, turned into points so that the
score is ``offset + factor * ln(odds of good to bad)``, with ``factor = PDO / ln 2`` and
``offset = base_score - factor * ln(base_odds)``: the score is ``base_score`` where the odds are
``base_odds`` to 1, and it rises by ``PDO`` each time the odds double. Each bin of feature j
carries

    points = -factor * coefficient_j * WoE + (offset - factor * intercept) / n_features

and a customer's score is the sum of the points of the bins their values fall into.

The JSON form (:meth:`PointsTable.to_dict`) holds everything: bins, WoE, coefficients, points,
intercept and scaling, so that a scorecard is rebuilt from it alone (no pickle). Scoring reads
the points per bin and adds them up in chunks of 64k rows with NumPy, far faster than a row loop;
:meth:`PointsTable.expr` gives the same points as one Polars expression and
:meth:`PointsTable.sql_case` as a SQL ``CASE`` expression for the strategy language.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from creditfactory.modeling.errors import TrainingDataError
from creditfactory.modeling.model.binning import BinKind, FeatureBinning
from creditfactory.modeling.model.data import BOOL, NUMBER, STRING, as_frame, require_columns

FORMAT = "creditfactory.scorecard/1"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Scaling:
    """Points scaling: ``base_score`` at ``base_odds`` (good:bad) and ``pdo`` points to double the odds."""

    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        if not self.pdo > 0:
            raise ValueError(f"points to double the odds must be positive, got {self.pdo}")
        if not self.base_odds > 0:
            raise ValueError(f"base odds must be positive, got {self.base_odds}")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def score_of_logit(self, logit_bad: Any) -> Any:
        """Score of a log-odds of bad: ``offset - factor * logit`` (a number or an array)."""
        return self.offset - self.factor * logit_bad

    def pd_of_score(self, score: np.ndarray) -> np.ndarray:
        """Probability of bad that a score stands for."""
        return 1.0 / (1.0 + np.exp((np.asarray(score, dtype=np.float64) - self.offset) / self.factor))

    def to_dict(self) -> dict[str, float]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo}


@dataclass(frozen=True)
class ScoredFeature:
    binning: FeatureBinning
    coefficient: float
    points: tuple[float, ...]
    """Points of each bin, in the binning's order."""

    @property
    def name(self) -> str:
        return self.binning.name


class PointsTableError(ValueError):
    """A points table that is not self-consistent (edited, truncated or from another program)."""


@dataclass(frozen=True)
class PointsTable:
    features: tuple[ScoredFeature, ...]
    intercept: float
    scaling: Scaling
    round_points: bool = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        binnings: Sequence[FeatureBinning],
        coefficients: Sequence[float],
        intercept: float,
        scaling: Scaling,
        *,
        round_points: bool = False,
    ) -> PointsTable:
        n = len(binnings)
        if n == 0:
            raise ValueError("a scorecard needs at least one feature")
        share = (scaling.offset - scaling.factor * intercept) / n
        features = []
        for binning, beta in zip(binnings, coefficients, strict=True):
            raw = [share - scaling.factor * float(beta) * b.woe for b in binning.bins]
            pts = tuple(float(round(p)) if round_points else p for p in raw)
            features.append(ScoredFeature(binning=binning, coefficient=float(beta), points=pts))
        return cls(
            features=tuple(features), intercept=float(intercept), scaling=scaling, round_points=round_points
        )

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def feature_types(self) -> dict[str, str]:
        return {f.name: f.binning.source_dtype for f in self.features}

    # ------------------------------------------------------------------ scoring

    def _lookup(self, X: pl.DataFrame, tables: Sequence[np.ndarray]) -> np.ndarray:
        """Sum over features of ``table_j[bin of row i]``.

        Polars turns number columns into float arrays and text columns into 64-bit hashes in one
        parallel ``select``; NumPy then, a cache-sized chunk of rows at a time, finds each
        number's interval by comparing it with the few cut points and each text value's bin in a
        collision-free hash table (:class:`~creditfactory.modeling.model.binning.CategoryTable`),
        and adds up the table values.
        """
        require_columns(X, self.names, what="the data to score")
        n = X.height
        out = np.zeros(n, dtype=np.float64)
        exprs: list[pl.Expr] = []
        hashed: list[tuple[ScoredFeature, np.ndarray]] = []
        for feature, table in zip(self.features, tables, strict=True):
            binning = feature.binning
            col = pl.col(feature.name)
            if binning.dtype == STRING:
                if binning.category_table() is None:
                    exprs.append(binning.code_expr())
                else:
                    text = col.cast(pl.String)
                    exprs.append(text.hash(seed=0).alias(feature.name))
                    exprs.append(text.is_null().alias(f"{feature.name}\x00null"))
                    hashed.append((feature, table))
            else:
                dtype = X.schema[feature.name]
                if not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
                    raise TrainingDataError(
                        f"feature {feature.name!r} must hold numbers, but the data has a {dtype} column",
                        column=feature.name,
                    )
                exprs.append(col.cast(pl.Float64).fill_null(np.nan))
        prepared = X.select(exprs)
        numeric = []
        categories = []
        for feature, table in zip(self.features, tables, strict=True):
            binning = feature.binning
            column = prepared[feature.name].to_numpy()
            if binning.dtype != STRING:
                numeric.append(
                    (
                        column,
                        binning.splits,
                        np.asarray(binning.specials, dtype=np.float64) if binning.specials else None,
                        binning.position(BinKind.SPECIAL),
                        binning.position(BinKind.MISSING),
                        table,
                    )
                )
            elif binning.category_table() is None:
                out += table[column]
            else:
                lookup = binning.category_table()
                assert lookup is not None
                nulls = prepared[f"{feature.name}\x00null"].to_numpy()
                categories.append(
                    (
                        column,
                        nulls,
                        lookup,
                        table[lookup.codes_by_slot],
                        float(table[binning.position(BinKind.MISSING)]),
                        float(table[lookup.other]),
                    )
                )
        if not numeric and not categories:
            return out
        size = min(n, _CHUNK)
        idx = np.empty(size, dtype=np.intp)
        mask = np.empty(size, dtype=bool)
        slots = np.empty(size, dtype=np.uint64)
        values = np.empty(size, dtype=np.float64)
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            m = hi - lo
            acc = out[lo:hi]
            ix = idx[:m]
            flag = mask[:m]
            for x_all, splits, specials, special_at, missing_at, table in numeric:
                x = x_all[lo:hi]
                if splits.size <= 24:
                    ix.fill(0)
                    for s in splits:
                        np.greater_equal(x, s, out=flag)
                        ix += flag
                    codes = ix
                else:
                    codes = np.searchsorted(splits, x, side="right")
                if specials is not None:
                    codes[np.isin(x, specials)] = special_at
                np.isnan(x, out=flag)
                codes[flag] = missing_at
                acc += table[codes]
            for hashes_all, nulls_all, lookup, by_slot, missing_value, other_value in categories:
                h = hashes_all[lo:hi]
                slot = lookup.slots(h, out=slots[:m])
                v = values[:m]
                np.take(by_slot, slot, out=v)
                np.not_equal(lookup.keys.take(slot), h, out=flag)
                v[flag] = other_value
                v[nulls_all[lo:hi]] = missing_value
                acc += v
        return out

    def _plain(self) -> list[tuple[int, str, Any, tuple[float, ...]]]:
        """Per feature, in the order :meth:`_lookup` adds them up: ``(group, name, look-up,
        points)`` with the look-up as plain Python (cut points, specials, bin positions)."""
        cached = self.__dict__.get("_plain_cache")
        if cached is None:
            out = []
            for feature in self.features:
                b = feature.binning
                if b.dtype == STRING:
                    group = 0 if b.category_table() is None else 2
                    look: Any = (b._category_index, b.position(BinKind.MISSING), b.position(BinKind.OTHER))
                else:
                    specials = frozenset(float(v) for v in b.specials)
                    look = (
                        [float(x) for x in b.splits],
                        specials,
                        b.position(BinKind.SPECIAL),
                        b.position(BinKind.MISSING),
                    )
                    group = 1
                out.append((group, feature.name, look, feature.points))
            # _lookup adds the categories without a hashed table first, then the numbers, then
            # the hashed categories: the same order gives the same floating-point sum
            cached = sorted(out, key=lambda item: item[0])
            object.__setattr__(self, "_plain_cache", cached)
        return cached  # type: ignore[no-any-return]

    def score_one(self, row: Mapping[str, Any]) -> float | None:
        """The points of one row of plain Python values (``None``, numbers, booleans, text),
        equal to :meth:`score` of a one-row frame of them, without building the frame; ``None``
        when a value is of a kind only the frame path converts (text in a number feature, a
        number in a category feature), so that the caller scores a frame instead."""
        total = 0.0
        for group, name, look, points in self._plain():
            value = row.get(name)
            if group == 1:
                splits, specials, special_at, missing_at = look
                if value is None:
                    code = missing_at
                elif isinstance(value, bool | int | float):
                    x = float(value)
                    if x != x:
                        code = missing_at
                    elif x in specials:
                        code = special_at
                    else:
                        code = 0
                        for s in splits:
                            code += x >= s
                else:
                    return None
            else:
                index, missing_at, other_at = look
                if value is None:
                    code = missing_at
                elif isinstance(value, str):
                    code = index.get(value, other_at)
                else:
                    return None
            total += points[code]
        return total

    def score(self, X: Any) -> np.ndarray:
        """Points of every row (the sum of its bins' points)."""
        return self._lookup(as_frame(X), [np.asarray(f.points) for f in self.features])

    def logit(self, X: Any) -> np.ndarray:
        """Log-odds of bad: ``intercept + sum(coefficient * WoE)`` (unrounded)."""
        tables = [f.coefficient * np.array([b.woe for b in f.binning.bins]) for f in self.features]
        return self.intercept + self._lookup(as_frame(X), tables)

    def predict_pd(self, X: Any) -> np.ndarray:
        """Probability of bad."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.logit(X)))

    def points_matrix(self, X: Any) -> np.ndarray:
        """Points per row and feature (rows x features)."""
        frame = as_frame(X)
        require_columns(frame, self.names, what="the data to score")
        return np.column_stack([np.asarray(f.points)[f.binning.codes(frame[f.name])] for f in self.features])

    def woe_frame(self, X: Any) -> pl.DataFrame:
        frame = as_frame(X)
        require_columns(frame, self.names, what="the data to transform")
        return pl.DataFrame({f.name: f.binning.woe_of(frame[f.name]) for f in self.features})

    def reasons(self, X: Any, top: int = 3) -> list[list[str]]:
        """Per row, the features that cost it most points against their best bin, worst first.

        A feature already at its best bin is never a reason (the adverse-action method of
        "points below the maximum").
        """
        matrix = self.points_matrix(X)
        best = np.array([max(f.points) for f in self.features])
        shortfall = best[None, :] - matrix
        order = np.argsort(-shortfall, axis=1, kind="stable")[:, :top]
        names = self.names
        out: list[list[str]] = []
        for i in range(matrix.shape[0]):
            out.append([names[j] for j in order[i] if shortfall[i, j] > 1e-9])
        return out

    # ------------------------------------------------------------------ expressions

    def expr(self) -> pl.Expr:
        """The score as one Polars expression (same points as :meth:`score`)."""
        total: pl.Expr | None = None
        for feature in self.features:
            part = _feature_expr(feature)
            total = part if total is None else total + part
        assert total is not None
        return total.alias("score")

    def sql_case(self, *, quote: str = '"', dialect: str = "ansi") -> str:
        """The score as a SQL expression: one ``CASE`` per feature, added up.

        ``dialect="spark"`` writes numbers as double literals (``1.5D``): Spark reads a plain
        decimal literal as an exact DECIMAL, and a sum of many of them loses digits to its scale
        limits, so points would no longer add up to the same doubles as the other engines."""
        if dialect not in ("ansi", "spark"):
            raise ValueError(f"unknown SQL dialect {dialect!r}: use ansi or spark")
        parts = [_feature_sql(f, quote, dialect) for f in self.features]
        return "\n+ ".join(f"({p})" for p in parts)

    # ------------------------------------------------------------------ export

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for f in self.features:
            for b, p in zip(f.binning.bins, f.points, strict=True):
                out.append(
                    {
                        "feature": f.name,
                        "type": f.binning.source_dtype,
                        "bin": b.label,
                        "kind": b.kind.value,
                        "lower": b.lower,
                        "upper": b.upper,
                        "values": list(b.values),
                        "count": b.count,
                        "bads": b.bads,
                        "woe": b.woe,
                        "coefficient": f.coefficient,
                        "points": p,
                    }
                )
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        columns = [
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
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            row = dict(row)
            row["values"] = json.dumps(row["values"], ensure_ascii=False) if row["values"] else ""
            row["lower"] = "" if row["lower"] is None else repr(row["lower"])
            row["upper"] = "" if row["upper"] is None else repr(row["upper"])
            row["woe"] = repr(row["woe"])
            row["coefficient"] = repr(row["coefficient"])
            row["points"] = repr(row["points"])
            writer.writerow(row)
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "scaling": self.scaling.to_dict(),
            "factor": self.scaling.factor,
            "offset": self.scaling.offset,
            "intercept": self.intercept,
            "round_points": self.round_points,
            "features": [
                {**f.binning.to_dict(), "coefficient": f.coefficient, "points": list(f.points)}
                for f in self.features
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointsTable:
        """Rebuild a scorecard from its JSON form, checking that it is self-consistent."""
        try:
            if data.get("format") != FORMAT:
                raise PointsTableError(f"not a scorecard points table (format {data.get('format')!r})")
            scaling = Scaling(**{k: float(v) for k, v in data["scaling"].items()})
            intercept = float(data["intercept"])
            round_points = bool(data.get("round_points", False))
            binnings = [FeatureBinning.from_dict(f) for f in data["features"]]
            coefficients = [float(f["coefficient"]) for f in data["features"]]
            stored = [[float(p) for p in f["points"]] for f in data["features"]]
        except PointsTableError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise PointsTableError(f"points table is malformed: {exc}") from None
        table = cls.build(binnings, coefficients, intercept, scaling, round_points=round_points)
        tolerance = 0.5 + 1e-9 if round_points else 1e-6
        for feature, points in zip(table.features, stored, strict=True):
            if len(points) != len(feature.points):
                raise PointsTableError(
                    f"feature {feature.name!r}: {len(points)} points for {len(feature.points)} bins"
                )
            for b, want, got in zip(feature.binning.bins, feature.points, points, strict=True):
                if abs(want - got) > tolerance:
                    raise PointsTableError(
                        f"feature {feature.name!r}, bin {b.label}: points {got} do not follow from "
                        f"WoE {b.woe} and coefficient {feature.coefficient} (expected {want:.6f})"
                    )
        return cls(
            features=tuple(
                ScoredFeature(binning=f.binning, coefficient=f.coefficient, points=tuple(p))
                for f, p in zip(table.features, stored, strict=True)
            ),
            intercept=intercept,
            scaling=scaling,
            round_points=round_points,
        )

    @classmethod
    def from_json(cls, text: str) -> PointsTable:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PointsTableError(f"points table is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PointsTableError("points table JSON is not an object")
        return cls.from_dict(data)


# ---------------------------------------------------------------------- expression builders


def _feature_expr(feature: ScoredFeature) -> pl.Expr:
    binning = feature.binning
    pts = feature.points
    col = pl.col(binning.name)
    missing = pts[binning.position(BinKind.MISSING)]  # type: ignore[index]
    if binning.dtype == STRING:
        text = col.cast(pl.String)
        mapping = {}
        for b, p in zip(binning.bins, pts, strict=True):
            if b.kind is BinKind.CATEGORIES:
                for v in b.values:
                    mapping[str(v)] = p
        other = pts[binning.position(BinKind.OTHER)]  # type: ignore[index]
        return (
            pl.when(text.is_null())
            .then(pl.lit(missing, pl.Float64))
            .otherwise(text.replace_strict(mapping, default=other, return_dtype=pl.Float64))
        )
    x = col.cast(pl.Float64)
    expr = pl.when(x.is_null() | x.is_nan()).then(pl.lit(missing, pl.Float64))
    specials = binning.specials
    if specials:
        expr = expr.when(x.is_in(list(specials))).then(
            pl.lit(pts[binning.position(BinKind.SPECIAL)], pl.Float64)  # type: ignore[index]
        )
    intervals = [(b, p) for b, p in zip(binning.bins, pts, strict=True) if b.kind is BinKind.INTERVAL]
    for b, p in intervals[:-1]:
        expr = expr.when(x < b.upper).then(pl.lit(p, pl.Float64))
    return expr.otherwise(pl.lit(intervals[-1][1], pl.Float64))


def _sql_number(value: float, dialect: str = "ansi") -> str:
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        return "NULL"
    return f"{text}D" if dialect == "spark" else text


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _feature_sql(feature: ScoredFeature, quote: str, dialect: str = "ansi") -> str:
    binning = feature.binning
    pts = feature.points
    close = {"`": "`", '"': '"', "[": "]"}.get(quote, quote)
    name = quote + binning.name.replace(close, close * 2) + close
    missing = pts[binning.position(BinKind.MISSING)]  # type: ignore[index]
    whens = [f"WHEN {name} IS NULL THEN {_sql_number(missing, dialect)}"]
    if binning.dtype == STRING:
        value = name if binning.source_dtype == STRING else f"CAST({name} AS VARCHAR)"
        for b, p in zip(binning.bins, pts, strict=True):
            if b.kind is BinKind.CATEGORIES:
                values = ", ".join(_sql_text(v) for v in b.values)
                whens.append(f"WHEN {value} IN ({values}) THEN {_sql_number(p, dialect)}")
        other = pts[binning.position(BinKind.OTHER)]  # type: ignore[index]
        return "CASE " + " ".join(whens) + f" ELSE {_sql_number(other, dialect)} END"
    value = f"CAST({name} AS INTEGER)" if binning.source_dtype == BOOL else name
    specials = binning.specials
    if specials:
        codes = ", ".join(_sql_number(v, dialect) for v in specials)
        whens.append(
            f"WHEN {value} IN ({codes}) THEN {_sql_number(pts[binning.position(BinKind.SPECIAL)], dialect)}"  # type: ignore[index]
        )
    intervals = [(b, p) for b, p in zip(binning.bins, pts, strict=True) if b.kind is BinKind.INTERVAL]
    for b, p in intervals[:-1]:
        whens.append(f"WHEN {value} < {_sql_number(b.upper, dialect)} THEN {_sql_number(p, dialect)}")  # type: ignore[arg-type]
    return "CASE " + " ".join(whens) + f" ELSE {_sql_number(intervals[-1][1], dialect)} END"


__all__ = ["FORMAT", "NUMBER", "PointsTable", "PointsTableError", "Scaling", "ScoredFeature"]
