"""A registered model version, loaded for scoring: what mining and decisioning hold on to."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from creditfactory.errors import InvalidInput
from creditfactory.modeling.artefacts import check_schema
from creditfactory.modeling.model.gbm import LightGBMModel
from creditfactory.modeling.model.scorecard import ScorecardModel


class NotAScorecard(InvalidInput):
    code = "not_a_scorecard"
    title = "Only a scorecard has points expressions"


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    kind: str
    segment: str | None
    features: dict[str, str]
    """Columns the model reads and their types (number, string, bool)."""
    status: str
    path: Path
    manifest: Mapping[str, Any] = field(repr=False)
    estimator: ScorecardModel | LightGBMModel = field(repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name} v{self.version}"

    def predict_proba(self, df: Any) -> np.ndarray:
        """Probability of bad, one per row."""
        return np.asarray(self.estimator.predict_proba(df)[:, 1])

    def score(self, df: Any) -> np.ndarray:
        """Points (scorecard) or the scaled score (LightGBM, same scaling): higher is safer."""
        return np.asarray(self.estimator.score(df))

    def score_one(self, row: Mapping[str, Any]) -> tuple[float, float] | None:
        """``(score, probability of bad)`` of one row of plain Python values, read from a
        scorecard's points table without building a frame (the probability from the points'
        scaling, as :meth:`scaling` says); ``None`` for a LightGBM model or a value only a frame
        converts, which :meth:`score` and :meth:`predict_proba` then take."""
        if not isinstance(self.estimator, ScorecardModel):
            return None
        points = self.estimator._table().score_one(row)
        if points is None:
            return None
        offset, factor = self.scaling()
        return points, 1.0 / (1.0 + math.exp((points - offset) / factor))

    def _scorecard(self, what: str) -> ScorecardModel:
        if not isinstance(self.estimator, ScorecardModel):
            raise NotAScorecard(f"{self.ref} is a {self.kind} model: {what} exists for scorecards only")
        return self.estimator

    def score_expr(self) -> pl.Expr:
        """The points as one Polars expression over the feature columns (named ``score``)."""
        return self._scorecard("a points expression").score_expr()

    def sql_case(self, *, quote: str = '"', dialect: str = "ansi") -> str:
        """The points as a SQL expression (one CASE per feature, added up); ``dialect="spark"``
        writes double literals."""
        return self._scorecard("a SQL CASE expression").sql_case(quote=quote, dialect=dialect)

    def reasons(self, df: Any, top: int = 3) -> list[list[str]]:
        """Per row, up to ``top`` features pushing the score down, the strongest first."""
        return self.estimator.reason_codes(df, top=top)

    def check_schema(self, schema: Mapping[str, str]) -> list[str]:
        """Problems scoring data with this column schema (empty when the model fits the data)."""
        return check_schema(self.features, schema)

    def scaling(self) -> tuple[float, float]:
        """``(offset, factor)`` of the points scaling: score = offset + factor * ln(odds good:bad),
        so that the probability of bad is ``1 / (1 + exp((score - offset) / factor))``."""
        est = self.estimator
        factor = float(est.pdo) / math.log(2.0)
        return float(est.base_score) - factor * math.log(float(est.base_odds)), factor

    @cached_property
    def manifest_sha256(self) -> str:
        """Digest of the manifest's content (ties a scored result to exactly this version)."""
        text = json.dumps(dict(self.manifest), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest.get("metrics") or {})
