"""Discrimination, calibration and stability: the figures a model committee reads.

All functions take plain arrays: ``y`` (1 = bad), ``pd`` (predicted probability of bad) and
``score`` (points; higher is safer).

* **AUC** (area under the ROC curve), **Gini** = 2 AUC - 1, **KS** = the largest gap between the
  cumulative shares of bads and goods over the ranking;
* **deciles**: rows ranked from riskiest to safest in ten equal groups; bad rate, capture of
  bads and lift per group;
* **score bands**: fixed score intervals (cut on the development sample), with the actual bad
  rate beside the mean predicted PD (calibration) in each;
* **PSI** (population stability index) = ``sum((a - e) * ln(a / e))`` over the shares ``e`` of a
  baseline and ``a`` of a comparison sample in the same bins; below 0.1 stable, 0.1-0.25 some
  shift, above 0.25 a significant shift. A share of zero is taken as 0.0001 so the index stays
  finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

PSI_FLOOR = 1e-4


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=np.float64)
    pa = np.asarray(p, dtype=np.float64)
    if ya.shape != pa.shape:
        raise ValueError(f"y has {ya.shape[0]} rows but the predictions {pa.shape[0]}")
    return ya, pa


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve of ``p`` (higher = riskier) for ``y`` (1 = bad); ties count half."""
    ya, pa = _arrays(y, p)
    bads = ya.sum()
    goods = ya.size - bads
    if bads == 0 or goods == 0:
        return float("nan")
    order = np.argsort(pa, kind="mergesort")
    sorted_p = pa[order]
    ranks = np.empty(pa.size, dtype=np.float64)
    # average ranks of ties (1-based)
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[ya == 1].sum() - bads * (bads + 1) / 2.0) / (bads * goods))


def ks(y: Any, p: Any) -> float:
    """Kolmogorov-Smirnov statistic: max |cumulative bad share - cumulative good share|."""
    ya, pa = _arrays(y, p)
    bads = ya.sum()
    goods = ya.size - bads
    if bads == 0 or goods == 0:
        return float("nan")
    order = np.argsort(-pa, kind="mergesort")
    sorted_p = pa[order]
    cum_bad = np.cumsum(ya[order]) / bads
    cum_good = np.cumsum(1 - ya[order]) / goods
    # only at the end of a run of tied predictions
    last = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    return float(np.max(np.abs(cum_bad[last] - cum_good[last])))


def gini(auc_value: float) -> float:
    return 2.0 * auc_value - 1.0


def summary(y: Any, p: Any) -> dict[str, float | int]:
    """Rows, bads, bad rate, AUC, KS, Gini, mean predicted PD and Brier score of one sample."""
    ya, pa = _arrays(y, p)
    a = auc(ya, pa)
    return {
        "rows": int(ya.size),
        "bads": int(ya.sum()),
        "bad_rate": float(ya.mean()) if ya.size else float("nan"),
        "auc": a,
        "ks": ks(ya, pa),
        "gini": gini(a),
        "mean_pd": float(pa.mean()) if pa.size else float("nan"),
        "brier": float(np.mean((pa - ya) ** 2)) if pa.size else float("nan"),
    }


def roc_points(y: Any, p: Any, *, max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates along the ranking (thinned for plotting)."""
    ya, pa = _arrays(y, p)
    order = np.argsort(-pa, kind="mergesort")
    tp = np.r_[0.0, np.cumsum(ya[order])]
    fp = np.r_[0.0, np.cumsum(1 - ya[order])]
    tpr = tp / max(tp[-1], 1.0)
    fpr = fp / max(fp[-1], 1.0)
    if tpr.size > max_points:
        keep = np.unique(np.linspace(0, tpr.size - 1, max_points).astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return fpr, tpr


def deciles(y: Any, p: Any, groups: int = 10) -> pl.DataFrame:
    """Rows ranked riskiest first in ``groups`` equal groups: bad rate, capture, lift."""
    ya, pa = _arrays(y, p)
    n = ya.size
    order = np.argsort(-pa, kind="mergesort")
    group = np.empty(n, dtype=np.int64)
    group[order] = np.arange(n) * groups // max(n, 1) + 1
    frame = pl.DataFrame({"group": group, "y": ya, "pd": pa})
    table = (
        frame.group_by("group")
        .agg(
            pl.len().alias("rows"),
            pl.col("y").sum().cast(pl.Int64).alias("bads"),
            pl.col("pd").min().alias("min_pd"),
            pl.col("pd").max().alias("max_pd"),
            pl.col("pd").mean().alias("mean_pd"),
        )
        .sort("group")
    )
    total_bads = max(float(ya.sum()), 1.0)
    overall = float(ya.mean()) if n else float("nan")
    return table.with_columns(
        (pl.col("bads") / pl.col("rows")).alias("bad_rate"),
        (pl.col("bads").cum_sum() / total_bads).alias("cum_bad_capture"),
    ).with_columns(
        (pl.col("bad_rate") / overall).alias("lift"),
        ((pl.col("bads").cum_sum() / pl.col("rows").cum_sum()) / overall).alias("cum_lift"),
    )


def band_edges(score: Any, bands: int = 10) -> list[float]:
    """Inner cut points of score bands with about equal development counts (whole points)."""
    s = np.asarray(score, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return []
    qs = np.quantile(s, np.linspace(0, 1, bands + 1)[1:-1])
    edges = sorted({float(round(q)) for q in qs})
    return [e for e in edges if s.min() < e <= s.max()]


def band_labels(edges: Sequence[float]) -> list[str]:
    bounds = [-math.inf, *edges, math.inf]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        left = "< " + _num(hi) if lo == -math.inf else None
        right = ">= " + _num(lo) if hi == math.inf else None
        out.append(left or right or f"{_num(lo)}-{_num(hi)}")
    return out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


def bands(y: Any, p: Any, score: Any, edges: Sequence[float]) -> pl.DataFrame:
    """Per score band (lowest score first): rows, share, bads, actual bad rate, mean predicted PD."""
    ya, pa = _arrays(y, p)
    s = np.asarray(score, dtype=np.float64)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), s, side="right")
    k = len(edges) + 1
    rows = np.bincount(idx, minlength=k)
    bads = np.bincount(idx, weights=ya, minlength=k)
    pd_sum = np.bincount(idx, weights=pa, minlength=k)
    n = max(ya.size, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bad_rate = np.where(rows > 0, bads / np.maximum(rows, 1), np.nan)
        mean_pd = np.where(rows > 0, pd_sum / np.maximum(rows, 1), np.nan)
    return pl.DataFrame(
        {
            "band": band_labels(edges),
            "rows": rows.astype(np.int64),
            "share": rows / n,
            "bads": bads.round().astype(np.int64),
            "bad_rate": bad_rate,
            "mean_pd": mean_pd,
        }
    ).with_columns(pl.col("bad_rate").fill_nan(None), pl.col("mean_pd").fill_nan(None))


def hosmer_lemeshow(y: Any, p: Any, groups: int = 10, *, fitted: bool = False) -> dict[str, float]:
    """Hosmer-Lemeshow test over deciles of predicted PD: statistic, degrees of freedom, p-value.

    On the sample the model was fitted on the statistic has ``groups - 2`` degrees of freedom; on
    any other sample (in-time test, out of time) nothing was estimated from it: ``groups``.
    """
    from scipy.stats import chi2

    table = deciles(y, p, groups)
    stat = 0.0
    for rows, bads, mean_pd in table.select("rows", "bads", "mean_pd").iter_rows():
        expected = rows * mean_pd
        if 0 < expected < rows:
            stat += (bads - expected) ** 2 / (expected * (1 - mean_pd))
    dof = max(table.height - 2, 1) if fitted else table.height
    return {"statistic": float(stat), "dof": float(dof), "p_value": float(chi2.sf(stat, dof))}


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index between two count (or share) vectors over the same bins."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError("PSI needs the same bins on both sides")
    if e.sum() == 0 or a.sum() == 0:
        return float("nan")
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_of_codes(expected: np.ndarray, actual: np.ndarray, k: int) -> float:
    return psi(np.bincount(expected, minlength=k), np.bincount(actual, minlength=k))


def psi_of_values(expected: np.ndarray, actual: np.ndarray, edges: Sequence[float]) -> float:
    """PSI of numbers over fixed cut points (missing values as a bin of their own)."""
    cuts = np.asarray(edges, dtype=np.float64)
    k = cuts.size + 2

    def codes(v: np.ndarray) -> np.ndarray:
        c = np.searchsorted(cuts, v, side="right")
        c[np.isnan(v)] = k - 1
        return c

    return psi_of_codes(codes(expected), codes(actual), k)


def psi_reading(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if value < 0.1:
        return "stable"
    if value < 0.25:
        return "some shift"
    return "significant shift"
