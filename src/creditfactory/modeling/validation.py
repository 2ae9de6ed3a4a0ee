"""Validation of a fitted model on its samples: the figures behind the report and the manifest.

Samples are named ``train`` (development), ``test`` (in-time hold-out) and ``oot`` (out of
time, when there is one). Stability (PSI) always compares a sample with ``train``. Feature
figures (IV, WoE correlation, PSI) use the optimal bins of each feature: the scorecard's own,
or, for LightGBM, bins found on the training sample the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from creditfactory.modeling.model import metrics
from creditfactory.modeling.model.binning import FeatureBinning, fit_binning, iv_table
from creditfactory.modeling.model.data import STRING
from creditfactory.modeling.model.gbm import LightGBMModel
from creditfactory.modeling.model.scorecard import ScorecardModel

SAMPLE_LABELS = {"train": "development", "test": "in-time test", "oot": "out-of-time"}
MAX_CORRELATION_FEATURES = 15


@dataclass
class Sample:
    name: str
    frame: pl.DataFrame
    y: np.ndarray
    pd: np.ndarray
    score: np.ndarray

    @property
    def label(self) -> str:
        return SAMPLE_LABELS.get(self.name, self.name)


@dataclass
class Validation:
    kind: str
    samples: dict[str, Sample]
    summary: dict[str, dict[str, Any]]
    deciles: dict[str, pl.DataFrame]
    band_edges: list[float]
    bands: dict[str, pl.DataFrame]
    hosmer_lemeshow: dict[str, dict[str, float]]
    score_psi: dict[str, float]
    feature_psi: pl.DataFrame
    iv: pl.DataFrame
    correlation_features: list[str]
    correlation: np.ndarray
    features: list[str]
    points: pl.DataFrame | None = None
    importance: pl.DataFrame | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        """The sample whose figures are quoted: out-of-time if present, else the in-time test."""
        return "oot" if "oot" in self.samples else ("test" if "test" in self.samples else "train")

    def metrics(self) -> dict[str, Any]:
        """JSON-ready figures for the manifest and the registry."""
        head = self.summary[self.headline]
        return {
            "headline": self.headline,
            "auc": head["auc"],
            "ks": head["ks"],
            "gini": head["gini"],
            "samples": {k: _clean(v) for k, v in self.summary.items()},
            "score_psi": {k: _num(v) for k, v in self.score_psi.items()},
            "max_feature_psi": {
                s: _num(max((v for v in self.feature_psi[s].to_list() if v is not None), default=0.0))
                for s in self.feature_psi.columns
                if s != "feature"
            },
            "hosmer_lemeshow": {k: _clean(v) for k, v in self.hosmer_lemeshow.items()},
            "band_edges": self.band_edges,
        }


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if np.isfinite(f) else None


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_num(v) if isinstance(v, float) else v) for k, v in d.items()}


def model_binnings(
    model: ScorecardModel | LightGBMModel, train: pl.DataFrame, y: np.ndarray
) -> dict[str, FeatureBinning]:
    """Bins of every feature the model was offered (the scorecard's own; found anew for LightGBM)."""
    if isinstance(model, ScorecardModel):
        return dict(model.binning_)
    out = {}
    for name in [str(n) for n in model.feature_names_in_]:
        source = model.feature_types_[name]
        out[name] = fit_binning(
            name,
            train[name],
            y,
            source_dtype=source,
            categorical=name in model.categories_ or source == STRING,
        )
    return out


def validate(
    model: ScorecardModel | LightGBMModel,
    samples: Mapping[str, tuple[pl.DataFrame, np.ndarray]],
    *,
    binnings: Mapping[str, FeatureBinning] | None = None,
) -> Validation:
    """Score every sample and compute the committee's figures. ``samples`` must include ``train``."""
    if "train" not in samples:
        raise ValueError("validation needs the training sample")
    scored: dict[str, Sample] = {}
    for name, (frame, y) in samples.items():
        proba = model.predict_proba(frame)[:, 1]
        scored[name] = Sample(name=name, frame=frame, y=np.asarray(y), pd=proba, score=model.score(frame))

    train = scored["train"]
    summary = {k: metrics.summary(s.y, s.pd) for k, s in scored.items()}
    decile_tables = {k: metrics.deciles(s.y, s.pd) for k, s in scored.items()}
    edges = metrics.band_edges(train.score)
    band_tables = {k: metrics.bands(s.y, s.pd, s.score, edges) for k, s in scored.items()}
    hl = {k: metrics.hosmer_lemeshow(s.y, s.pd, fitted=k == "train") for k, s in scored.items()}
    score_psi = {
        k: metrics.psi_of_values(train.score, s.score, edges) for k, s in scored.items() if k != "train"
    }

    bins = dict(binnings) if binnings is not None else model_binnings(model, train.frame, train.y)
    if isinstance(model, ScorecardModel):
        used = list(model.selected_features_)
    else:
        used = [str(n) for n in model.feature_names_in_]
    psi_rows: dict[str, list[Any]] = {"feature": used}
    for k, s in scored.items():
        if k == "train":
            continue
        values = []
        for name in used:
            b = bins[name]
            values.append(
                metrics.psi_of_codes(b.codes(train.frame[name]), b.codes(s.frame[name]), len(b.bins))
            )
        psi_rows[k] = values
    feature_psi = pl.DataFrame(
        psi_rows, schema={c: (pl.String if c == "feature" else pl.Float64) for c in psi_rows}
    )

    iv = iv_table(list(bins.values()))
    importance = model.feature_importance() if isinstance(model, LightGBMModel) else None
    if isinstance(model, ScorecardModel):
        corr_names = used[:MAX_CORRELATION_FEATURES]
    else:
        assert importance is not None
        corr_names = importance["feature"].to_list()[:MAX_CORRELATION_FEATURES]
    if corr_names:
        woe = np.column_stack([bins[n].woe_of(train.frame[n]) for n in corr_names])
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(woe, rowvar=False) if len(corr_names) > 1 else np.ones((1, 1))
        corr = np.nan_to_num(np.atleast_2d(corr))
    else:
        corr = np.zeros((0, 0))

    return Validation(
        kind=model.kind,
        samples=scored,
        summary=summary,
        deciles=decile_tables,
        band_edges=edges,
        bands=band_tables,
        hosmer_lemeshow=hl,
        score_psi=score_psi,
        feature_psi=feature_psi,
        iv=iv,
        correlation_features=corr_names,
        correlation=corr,
        features=used,
        points=model.points_frame() if isinstance(model, ScorecardModel) else None,
        importance=importance,
        dropped=dict(model.dropped_features_) if isinstance(model, ScorecardModel) else {},
    )
