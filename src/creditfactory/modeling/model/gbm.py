"""The LightGBM challenger: gradient-boosted trees with the business's monotone constraints.

``LightGBMModel`` is a scikit-learn style estimator around LightGBM's native training API:

* text columns are LightGBM categorical features (each category becomes a code learned at fit;
  a category never seen in training is treated as missing);
* ``monotone_constraints={"dpd_max": 1, "income": -1}`` forces the probability of bad to rise
  (1) or fall (-1) with a feature, as the business expects;
* training stops early on a validation window: the ``eval_set`` given to ``fit``, or else a
  stratified ``validation_fraction`` of the training rows (never the test or out-of-time data,
  whose figures would then flatter the model);
* reason codes are the features whose SHAP contributions (LightGBM's ``pred_contrib``) push a
  row's log-odds of bad up the most;
* the model is saved as LightGBM's own text format plus a small JSON spec (feature order, types,
  categories, scaling) and rebuilt from those two alone;
* it trains on one thread unless told otherwise (``n_jobs``): on a machine shared with other work,
  OpenMP threads that wait for each other make training many times slower, not faster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split

from creditfactory.modeling.errors import TrainingDataError
from creditfactory.modeling.model.data import (
    STRING,
    as_frame,
    binary_labels,
    feature_types,
    require_columns,
    string_values,
)
from creditfactory.modeling.model.points import Scaling

SPEC_FORMAT = "creditfactory.lightgbm/1"


class LightGBMModel(BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted trees for the probability of bad, scikit-learn style."""

    kind = "lightgbm"

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        monotone_constraints: Mapping[str, int] | None = None,
        n_estimators: int = 2000,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        max_depth: int = -1,
        min_child_samples: int = 40,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        early_stopping_rounds: int = 100,
        validation_fraction: float = 0.2,
        random_state: int = 42,
        n_jobs: int = 1,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
    ) -> None:
        self.features = features
        self.categorical = categorical
        self.monotone_constraints = monotone_constraints
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo

    # ------------------------------------------------------------------ fitting

    def _params(self, constraints: list[int]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "lambda_l1": self.reg_alpha,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            "cat_smooth": 10.0,
            "min_data_per_group": 50,
        }
        params["num_threads"] = self.n_jobs
        if any(constraints):
            params["monotone_constraints"] = constraints
            params["monotone_constraints_method"] = "advanced"
        return params

    def fit(self, X: Any, y: Any, eval_set: tuple[Any, Any] | None = None) -> LightGBMModel:
        import lightgbm as lgb

        frame = as_frame(X)
        labels = binary_labels(y)
        if labels.shape[0] != frame.height:
            raise TrainingDataError(f"X has {frame.height} rows but y has {labels.shape[0]}")
        names = list(self.features) if self.features is not None else list(frame.columns)
        if not names:
            raise TrainingDataError("no features to train on")
        types = feature_types(frame, names, categorical=self.categorical or ())
        categorical = [n for n in names if types[n] == STRING or n in set(self.categorical or ())]
        categories = {n: sorted(string_values(frame[n]).drop_nulls().unique().to_list()) for n in categorical}
        constraints = dict(self.monotone_constraints or {})
        for name, sign in constraints.items():
            if name not in names:
                raise TrainingDataError(f"monotone constraint on {name!r}, which is not a feature")
            if name in categories:
                raise TrainingDataError(f"monotone constraint on categorical feature {name!r}")
            if sign not in (-1, 0, 1):
                raise TrainingDataError(f"monotone constraint on {name!r} must be -1, 0 or 1, got {sign!r}")

        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self.feature_types_ = types
        self.categories_ = categories
        matrix = self._matrix(frame)

        if eval_set is not None:
            X_val, y_val = eval_set
            val_matrix = self._matrix(as_frame(X_val))
            val_labels = binary_labels(y_val)
            train_matrix, train_labels = matrix, labels
        else:
            rows = np.arange(frame.height)
            fit_rows, val_rows = train_test_split(
                rows,
                test_size=self.validation_fraction,
                random_state=self.random_state,
                stratify=labels,
            )
            train_matrix, train_labels = matrix[fit_rows], labels[fit_rows]
            val_matrix, val_labels = matrix[val_rows], labels[val_rows]

        cat_idx = [names.index(n) for n in categorical]
        params = self._params([int(constraints.get(n, 0)) for n in names])
        train_set = lgb.Dataset(
            train_matrix,
            label=train_labels,
            feature_name=names,
            categorical_feature=cat_idx,
            free_raw_data=True,
        )
        valid_set = lgb.Dataset(val_matrix, label=val_labels, reference=train_set)
        evals: dict[str, Any] = {}
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.n_estimators,
            valid_sets=[valid_set],
            valid_names=["validation"],
            callbacks=[
                *(
                    [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
                    if self.early_stopping_rounds
                    else []
                ),
                lgb.record_evaluation(evals),
            ],
        )
        # Without early stopping (``early_stopping_rounds=0``) every tree is kept.
        best = (booster.best_iteration if self.early_stopping_rounds else 0) or booster.current_iteration()
        # Keep only the trees up to the best iteration: the saved model is what was validated.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.best_iteration_ = int(best)
        self.validation_auc_ = float(evals["validation"]["auc"][best - 1])
        self.monotone_constraints_ = {n: int(constraints[n]) for n in names if constraints.get(n)}
        self.params_ = params
        return self

    # ------------------------------------------------------------------ using

    def _check(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")

    def _matrix(self, frame: pl.DataFrame, order: str = "fortran") -> np.ndarray:
        names = [str(n) for n in self.feature_names_in_]
        require_columns(frame, names, what="the data")
        columns = []
        for name in names:
            if name in self.categories_:
                index = {c: float(i) for i, c in enumerate(self.categories_[name])}
                text = string_values(frame[name])
                columns.append(text.replace_strict(index, default=None, return_dtype=pl.Float64).alias(name))
            else:
                dtype = frame.schema[name]
                if not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
                    raise TrainingDataError(
                        f"feature {name!r} must hold numbers, but the data has a {dtype} column", column=name
                    )
                columns.append(frame[name].cast(pl.Float64, strict=False).alias(name))
        if not columns:
            return np.empty((frame.height, 0))
        # Polars lays the columns out in one pass (column-major for LightGBM, which reads it
        # without a copy; row-major for compiled trees), far faster than stacking NumPy columns.
        numbers = pl.DataFrame(columns).with_columns(pl.all().fill_nan(None))
        return numbers.to_numpy(order=order)  # type: ignore[arg-type]

    def matrix(self, X: Any, *, order: str = "fortran") -> np.ndarray:
        """The model's input matrix for ``X`` (features in order, categories as their codes, NaN
        for missing), column-major by default or row-major with ``order="c"``."""
        self._check()
        return self._matrix(as_frame(X), order=order)

    def compiled(self, cache: Path | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
        """The trees compiled to machine code (lleaves, when installed): a function from
        :meth:`matrix` to log-odds of bad, several times faster than LightGBM's own predict on
        large batches. Compiling takes seconds, so ``cache`` keeps the compiled library (a file
        per model); ``None`` when lleaves is not installed."""
        self._check()
        try:
            import lleaves
        except ImportError:
            return None
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            text = Path(tmp) / "model.txt"
            text.write_text(self.model_text(), encoding="utf-8")
            model = lleaves.Model(model_file=str(text))
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
            model.compile(cache=None if cache is None else str(cache), raw_score=True)

        def predict(matrix: np.ndarray) -> np.ndarray:
            """Log-odds of bad for a row-major matrix (``matrix(X, order="c")``)."""
            return np.asarray(model.predict(np.ascontiguousarray(matrix, dtype=np.float64)), dtype=np.float64)

        return predict

    def logit(self, X: Any, *, threads: int | None = None) -> np.ndarray:
        """Log-odds of bad per row; ``threads`` overrides ``n_jobs`` (0: every core), for batch
        scoring."""
        self._check()
        return np.asarray(
            self.booster_.predict(
                self._matrix(as_frame(X)),
                raw_score=True,
                num_threads=self.n_jobs if threads is None else threads,
            ),
            dtype=np.float64,
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``[P(good), P(bad)]`` per row."""
        p = 0.5 * (1.0 + np.tanh(0.5 * self.logit(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= threshold).astype(np.int8)

    @property
    def scaling(self) -> Scaling:
        return Scaling(self.base_score, self.base_odds, self.pdo)

    def score(self, X: Any) -> np.ndarray:
        """A score on the scorecard's scale: ``offset - factor * log-odds of bad``."""
        return np.asarray(self.scaling.score_of_logit(self.logit(X)))

    def contributions(self, X: Any) -> np.ndarray:
        """SHAP contributions to the log-odds of bad (rows x features; the base value dropped)."""
        self._check()
        contrib = self.booster_.predict(self._matrix(as_frame(X)), pred_contrib=True, num_threads=self.n_jobs)
        return np.asarray(contrib)[:, :-1]

    def reason_codes(self, X: Any, top: int = 3) -> list[list[str]]:
        """Per row, the features pushing it most towards bad (positive contributions only)."""
        contrib = self.contributions(X)
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
        names = [str(n) for n in self.feature_names_in_]
        return [[names[j] for j in order[i] if contrib[i, j] > 0] for i in range(contrib.shape[0])]

    def feature_importance(self) -> pl.DataFrame:
        self._check()
        names = [str(n) for n in self.feature_names_in_]
        gain = self.booster_.feature_importance(importance_type="gain")
        split = self.booster_.feature_importance(importance_type="split")
        total = float(np.sum(gain)) or 1.0
        return pl.DataFrame(
            {
                "feature": names,
                "gain_share": [float(g) / total for g in gain],
                "splits": [int(s) for s in split],
            }
        ).sort("gain_share", descending=True)

    # ------------------------------------------------------------------ artefacts

    def model_text(self) -> str:
        """LightGBM's text model."""
        self._check()
        return str(self.booster_.model_to_string())

    def spec(self) -> dict[str, Any]:
        """What LightGBM's text model does not hold: types, categories, constraints, scaling."""
        self._check()
        return {
            "format": SPEC_FORMAT,
            "features": [str(n) for n in self.feature_names_in_],
            "types": dict(self.feature_types_),
            "categories": {k: list(v) for k, v in self.categories_.items()},
            "monotone_constraints": dict(self.monotone_constraints_),
            "best_iteration": self.best_iteration_,
            "scaling": self.scaling.to_dict(),
            "params": {k: v for k, v in self.params_.items() if k != "monotone_constraints"},
        }

    @classmethod
    def from_artefacts(cls, model_text: str, spec: Mapping[str, Any] | str) -> LightGBMModel:
        """A fitted model rebuilt from LightGBM's text model and the spec."""
        import lightgbm as lgb

        data = json.loads(spec) if isinstance(spec, str) else dict(spec)
        if data.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a LightGBM model spec (format {data.get('format')!r})")
        scaling = data["scaling"]
        model = cls(
            features=list(data["features"]),
            monotone_constraints=dict(data.get("monotone_constraints") or {}),
            base_score=float(scaling["base_score"]),
            base_odds=float(scaling["base_odds"]),
            pdo=float(scaling["pdo"]),
        )
        try:
            booster = lgb.Booster(model_str=model_text)
        except lgb.basic.LightGBMError as exc:
            raise ValueError(f"LightGBM model text is not readable: {exc}") from None
        if list(booster.feature_name()) != list(data["features"]):
            raise ValueError("LightGBM model and spec list different features")
        model.booster_ = booster
        model.feature_names_in_ = np.array(data["features"], dtype=object)
        model.n_features_in_ = len(data["features"])
        model.feature_types_ = dict(data["types"])
        model.categories_ = {k: list(v) for k, v in data["categories"].items()}
        model.best_iteration_ = int(data["best_iteration"])
        model.monotone_constraints_ = dict(data.get("monotone_constraints") or {})
        model.params_ = dict(data.get("params") or {})
        return model
