"""The scorecard estimator: optimal binning, feature selection, logistic regression, points.

``ScorecardModel`` follows scikit-learn's estimator contract: the constructor stores its
parameters and nothing else, :meth:`~ScorecardModel.fit` validates the data, learns and sets
attributes ending in ``_``, and returns ``self``; using it before ``fit`` raises
:class:`sklearn.exceptions.NotFittedError`.

Steps of ``fit``:

1. every feature is binned with optbinning under a monotonic trend (per feature if wished),
   missing values and special codes in bins of their own; categories are grouped;
2. features whose information value is below ``min_iv`` are dropped;
3. the correlation filter keeps, of two features whose WoE correlate above ``max_correlation``,
   the one with the higher IV;
4. ``selection="iv"`` (the default) keeps every feature left after steps 2-3; ``"stepwise"``
   then adds and removes features by AIC (forward with a backward check after each step);
   ``"none"`` skips 2-3 as well and keeps every feature with more than one bin;
5. a feature whose coefficient has the wrong sign (riskier bins would earn more points, which
   happens when it is collinear with others) is dropped and the model refitted;
6. the points table is built from the coefficients and the scaling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from creditfactory.modeling.errors import TrainingDataError
from creditfactory.modeling.model.binning import (
    BinningParams,
    FeatureBinning,
    fit_binning,
    iv_table,
)
from creditfactory.modeling.model.data import STRING, as_frame, binary_labels, feature_types
from creditfactory.modeling.model.points import PointsTable, Scaling

SELECTIONS = ("stepwise", "iv", "none")


class ScorecardModel(BaseEstimator):  # type: ignore[misc]
    """A points scorecard (binning + logistic regression), scikit-learn style.

    Parameters
    ----------
    features:
        Columns to consider (default: every column of ``X``).
    categorical:
        Columns to treat as categories even if they hold numbers (text columns always are).
    monotonic_trend:
        optbinning's trend for the bad rate over a numeric feature's bins: ``"auto_asc_desc"``
        (ascending or descending, whichever fits), ``"ascending"``, ``"descending"``, ``"peak"``,
        ``"valley"``, ``"auto"`` or ``None``; or a dict feature -> trend (others keep the default).
    special_codes:
        Per feature, values that mean something other than a quantity (e.g. ``{"dpd": [-1]}``);
        each feature's codes get a bin of their own.
    selection, min_iv, max_correlation, max_features:
        Feature selection (see the module doc).
    C:
        Inverse L2 regularisation of the logistic regression.
    base_score, base_odds, pdo:
        Points scaling: ``base_score`` at odds ``base_odds``:1 (good:bad), ``pdo`` points to double
        the odds.
    round_points:
        Round each bin's points to a whole number (the probability stays unrounded).
    """

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        monotonic_trend: str | Mapping[str, str | None] | None = "auto_asc_desc",
        special_codes: Mapping[str, Sequence[float]] | None = None,
        max_n_prebins: int = 20,
        min_prebin_size: float = 0.02,
        min_bin_size: float | None = None,
        max_n_bins: int | None = None,
        selection: str = "iv",
        min_iv: float = 0.01,
        max_correlation: float = 0.7,
        max_features: int | None = None,
        C: float = 1.0,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        round_points: bool = False,
    ) -> None:
        self.features = features
        self.categorical = categorical
        self.monotonic_trend = monotonic_trend
        self.special_codes = special_codes
        self.max_n_prebins = max_n_prebins
        self.min_prebin_size = min_prebin_size
        self.min_bin_size = min_bin_size
        self.max_n_bins = max_n_bins
        self.selection = selection
        self.min_iv = min_iv
        self.max_correlation = max_correlation
        self.max_features = max_features
        self.C = C
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.round_points = round_points

    kind = "scorecard"

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any) -> ScorecardModel:
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        scaling = Scaling(self.base_score, self.base_odds, self.pdo)
        frame = as_frame(X)
        labels = binary_labels(y)
        if labels.shape[0] != frame.height:
            raise TrainingDataError(f"X has {frame.height} rows but y has {labels.shape[0]}")
        names = list(self.features) if self.features is not None else list(frame.columns)
        if not names:
            raise TrainingDataError("no features to train on")
        types = feature_types(frame, names, categorical=self.categorical or ())
        forced = set(self.categorical or ())
        specials = dict(self.special_codes or {})
        unknown = set(specials) - set(names)
        if unknown:
            raise TrainingDataError(
                f"special codes given for unknown feature(s): {', '.join(sorted(unknown))}"
            )
        trends = self.monotonic_trend if isinstance(self.monotonic_trend, Mapping) else {}
        if set(trends) - set(names):
            raise TrainingDataError(
                f"trend given for unknown feature(s): {', '.join(sorted(set(trends) - set(names)))}"
            )
        default_trend = "auto_asc_desc" if isinstance(self.monotonic_trend, Mapping) else self.monotonic_trend

        binnings: dict[str, FeatureBinning] = {}
        for name in names:
            params = BinningParams(
                monotonic_trend=trends.get(name, default_trend),
                max_n_prebins=self.max_n_prebins,
                min_prebin_size=self.min_prebin_size,
                min_bin_size=self.min_bin_size,
                max_n_bins=self.max_n_bins,
                special_codes=tuple(float(v) for v in specials.get(name, ())),
            )
            categorical = types[name] == STRING or name in forced
            binnings[name] = fit_binning(
                name, frame[name], labels, source_dtype=types[name], categorical=categorical, params=params
            )

        dropped: dict[str, str] = {}
        woe = {name: binnings[name].woe_of(frame[name]) for name in names}
        candidates = [n for n in names if len(binnings[n].regular) > 1 or _informative(binnings[n])]
        for n in names:
            if n not in candidates:
                dropped[n] = "one bin: no information"
        if self.selection != "none":
            kept = []
            for n in sorted(candidates, key=lambda n: -binnings[n].iv):
                iv = binnings[n].iv
                if iv < self.min_iv:
                    dropped[n] = f"IV {iv:.4f} below {self.min_iv}"
                    continue
                clash = _correlated(woe[n], [(k, woe[k]) for k in kept], self.max_correlation)
                if clash is not None:
                    dropped[n] = f"WoE correlation {clash[1]:.2f} with {clash[0]} (higher IV)"
                    continue
                kept.append(n)
            candidates = kept
        if self.max_features is not None and self.selection == "iv":
            for n in candidates[self.max_features :]:
                dropped[n] = f"beyond the {self.max_features} highest-IV features"
            candidates = candidates[: self.max_features]
        if not candidates:
            raise TrainingDataError(
                f"no feature passes selection (each has a single bin or an IV below {self.min_iv}): "
                "the data hold no signal for this target",
                dropped=dropped,
            )

        if self.selection == "stepwise":
            chosen = _stepwise(woe, candidates, labels, self.C, self.max_features)
            for n in candidates:
                if n not in chosen:
                    dropped[n] = "not selected by stepwise AIC"
            candidates = chosen

        while True:
            model = _logistic(np.column_stack([woe[n] for n in candidates]), labels, self.C)
            coef = model.coef_[0]
            # WoE is high for safe bins, so P(bad) must fall as WoE rises: coefficients < 0.
            wrong = [(c, n) for c, n in zip(coef, candidates, strict=True) if c > 0]
            if not wrong or len(candidates) == 1:
                break
            worst = max(wrong)[1]
            dropped[worst] = "coefficient of the wrong sign (collinear with other features)"
            candidates = [n for n in candidates if n != worst]

        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self.feature_types_ = types
        self.binning_ = binnings
        self.iv_table_ = iv_table([binnings[n] for n in names])
        self.selected_features_ = list(candidates)
        self.dropped_features_ = dropped
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.points_table_ = PointsTable.build(
            [binnings[n] for n in candidates],
            self.coef_,
            self.intercept_,
            scaling,
            round_points=self.round_points,
        )
        return self

    # ------------------------------------------------------------------ using

    def _table(self) -> PointsTable:
        if not hasattr(self, "points_table_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")
        table: PointsTable = self.points_table_
        return table

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``[P(good), P(bad)]`` per row."""
        pd_bad = self._table().predict_pd(X)
        return np.column_stack([1.0 - pd_bad, pd_bad])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        return (self._table().predict_pd(X) >= threshold).astype(np.int8)

    def score(self, X: Any) -> np.ndarray:
        """Points per row."""
        return self._table().score(X)

    def transform(self, X: Any) -> pl.DataFrame:
        """WoE of the selected features."""
        return self._table().woe_frame(X)

    def reason_codes(self, X: Any, top: int = 3) -> list[list[str]]:
        return self._table().reasons(X, top=top)

    def score_expr(self) -> pl.Expr:
        return self._table().expr()

    def sql_case(self, *, quote: str = '"', dialect: str = "ansi") -> str:
        return self._table().sql_case(quote=quote, dialect=dialect)

    def points_frame(self) -> pl.DataFrame:
        """The points table as a frame: feature, bin, WoE, coefficient, points."""
        rows = self._table().rows()
        return pl.DataFrame(
            {
                "feature": [r["feature"] for r in rows],
                "bin": [r["bin"] for r in rows],
                "count": [r["count"] for r in rows],
                "bads": [r["bads"] for r in rows],
                "woe": [r["woe"] for r in rows],
                "coefficient": [r["coefficient"] for r in rows],
                "points": [r["points"] for r in rows],
            }
        )

    @classmethod
    def from_points_table(cls, table: PointsTable | Mapping[str, Any] | str) -> ScorecardModel:
        """A fitted scorecard rebuilt from its points table (object, dict or JSON text)."""
        if isinstance(table, str):
            table = PointsTable.from_json(table)
        elif isinstance(table, Mapping):
            table = PointsTable.from_dict(table)
        model = cls(
            features=table.names,
            base_score=table.scaling.base_score,
            base_odds=table.scaling.base_odds,
            pdo=table.scaling.pdo,
            round_points=table.round_points,
        )
        names = table.names
        model.feature_names_in_ = np.array(names, dtype=object)
        model.n_features_in_ = len(names)
        model.feature_types_ = table.feature_types
        model.binning_ = {f.name: f.binning for f in table.features}
        model.iv_table_ = iv_table([f.binning for f in table.features])
        model.selected_features_ = list(names)
        model.dropped_features_ = {}
        model.coef_ = np.array([f.coefficient for f in table.features])
        model.intercept_ = table.intercept
        model.points_table_ = table
        return model


def _informative(binning: FeatureBinning) -> bool:
    """A one-interval feature still informs when its missing or special bin differs."""
    return any(b.count and abs(b.woe) > 1e-12 for b in binning.bins)


def _correlated(x: np.ndarray, kept: list[tuple[str, np.ndarray]], limit: float) -> tuple[str, float] | None:
    sx = x.std()
    if sx == 0:
        return None
    for name, other in kept:
        so = other.std()
        if so == 0:
            continue
        r = float(np.mean((x - x.mean()) * (other - other.mean())) / (sx * so))
        if abs(r) > limit:
            return name, r
    return None


class Logit:
    """An L2-penalised logistic regression fitted by Newton's method (IRLS).

    Minimises ``0.5 * |w|^2 + C * sum(log loss)`` with the intercept unpenalised: scikit-learn's
    ``LogisticRegression(C=C)`` objective. With the handful of WoE columns of a scorecard, Newton
    converges in a few steps, fast enough to refit hundreds of times in stepwise selection.
    """

    def __init__(self, C: float = 1.0, *, max_iter: int = 100, tol: float = 1e-10) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, matrix: np.ndarray, y: np.ndarray) -> Logit:
        n, k = matrix.shape
        design = np.empty((n, k + 1))
        design[:, 0] = 1.0
        design[:, 1:] = matrix
        yf = y.astype(np.float64)
        w = np.zeros(k + 1)
        rate = min(max(yf.mean(), 1e-6), 1 - 1e-6)
        w[0] = math.log(rate / (1 - rate))
        ridge = np.full(k + 1, 1.0 / self.C)
        ridge[0] = 0.0

        def objective(weights: np.ndarray) -> float:
            z = design @ weights
            loss = np.sum(np.logaddexp(0.0, z) - yf * z)
            return float(0.5 * np.sum(ridge * weights * weights) + loss)

        current = objective(w)
        for _ in range(self.max_iter):
            z = design @ w
            p = 0.5 * (1.0 + np.tanh(0.5 * z))
            grad = design.T @ (p - yf) + ridge * w
            hess = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(ridge + 1e-12)
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(hess, grad, rcond=None)[0]
            # Damped Newton: halve the step until the objective does not rise.
            t = 1.0
            while True:
                trial = w - t * step
                value = objective(trial)
                if value <= current + 1e-12 or t < 1e-8:
                    break
                t *= 0.5
            w, previous, current = trial, current, value
            if float(np.max(np.abs(t * step))) < self.tol or previous - current < 1e-12 * max(
                1.0, abs(current)
            ):
                break
        self.intercept_ = np.array([w[0]])
        self.coef_ = w[None, 1:]
        return self

    def log_likelihood(self, matrix: np.ndarray, y: np.ndarray) -> float:
        z = self.intercept_[0] + matrix @ self.coef_[0]
        # log(sigmoid(z)) and log(1 - sigmoid(z)), computed stably
        return float(np.sum(y * -np.logaddexp(0.0, -z) + (1 - y) * -np.logaddexp(0.0, z)))


def _logistic(matrix: np.ndarray, y: np.ndarray, C: float) -> Logit:
    return Logit(C).fit(matrix, y)


def _aic(woe: Mapping[str, np.ndarray], names: Sequence[str], y: np.ndarray, C: float) -> float:
    if not names:
        p = float(y.mean())
        loglik = float(np.sum(y * math.log(p) + (1 - y) * math.log(1 - p)))
        return 2.0 - 2.0 * loglik
    matrix = np.column_stack([woe[n] for n in names])
    loglik = _logistic(matrix, y, C).log_likelihood(matrix, y)
    return 2.0 * (len(names) + 1) - 2.0 * loglik


def _stepwise(
    woe: Mapping[str, np.ndarray], candidates: Sequence[str], y: np.ndarray, C: float, limit: int | None
) -> list[str]:
    """Forward selection by AIC with a backward check after every addition."""
    chosen: list[str] = []
    best = _aic(woe, chosen, y, C)
    remaining = list(candidates)
    while remaining and (limit is None or len(chosen) < limit):
        scored = [(_aic(woe, [*chosen, n], y, C), n) for n in remaining]
        aic, name = min(scored)
        if aic >= best - 1e-9:
            break
        chosen.append(name)
        remaining.remove(name)
        best = aic
        improved = True
        while improved and len(chosen) > 1:
            improved = False
            drops = [(_aic(woe, [c for c in chosen if c != n], y, C), n) for n in chosen[:-1]]
            aic, name = min(drops)
            if aic < best - 1e-9:
                chosen.remove(name)
                best = aic
                improved = True
    return chosen
