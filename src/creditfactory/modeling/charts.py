"""Charts of the validation report as inline SVG (matplotlib, no display, no network).

Figures are made with :class:`matplotlib.figure.Figure` directly (no pyplot state), text stays
text in the SVG, and ids are salted with a constant so that the same model gives the same page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from creditfactory.modeling.model import metrics

COLOURS = {"train": "#1f5fa8", "test": "#d9822b", "oot": "#2f9e44"}
GOOD, BAD = "#2f9e44", "#c92a2a"


def _svg(fig: object) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "creditfactory", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")  # type: ignore[attr-defined]
    text = buf.getvalue()
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text


def _figure(width: float = 5.2, height: float = 3.4):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.subplots()
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    return fig, ax


def roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], labels: Mapping[str, str]) -> str:
    """ROC curve of each sample with its AUC."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(
            fpr,
            tpr,
            color=COLOURS.get(name, "#555"),
            lw=1.5,
            label=f"{labels.get(name, name)} (AUC {auc:.3f})",
        )
    ax.set_xlabel("share of goods declined (false positive rate)", fontsize=8)
    ax.set_ylabel("share of bads caught (true positive rate)", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return _svg(fig)


def ks(y: np.ndarray, score: np.ndarray, title: str) -> str:
    """Cumulative shares of bads and goods by score, and where they are furthest apart."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    yy = y[order].astype(float)
    cum_bad = np.cumsum(yy) / max(yy.sum(), 1)
    cum_good = np.cumsum(1 - yy) / max((1 - yy).sum(), 1)
    gap = np.abs(cum_bad - cum_good)
    i = int(np.argmax(gap))
    step = max(1, s.size // 600)
    fig, ax = _figure()
    ax.plot(s[::step], cum_bad[::step], color=BAD, lw=1.5, label="bads")
    ax.plot(s[::step], cum_good[::step], color=GOOD, lw=1.5, label="goods")
    ax.vlines(s[i], cum_good[i], cum_bad[i], color="#333", lw=1.2)
    ax.annotate(
        f"KS {gap[i]:.3f} at {s[i]:.0f}",
        (s[i], (cum_bad[i] + cum_good[i]) / 2),
        fontsize=8,
        xytext=(6, 0),
        textcoords="offset points",
    )
    ax.set_xlabel(f"score ({title})", fontsize=8)
    ax.set_ylabel("cumulative share", fontsize=8)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _svg(fig)


def distribution(y: np.ndarray, score: np.ndarray, title: str) -> str:
    """Histograms of the scores of goods and bads."""
    fig, ax = _figure()
    finite = np.isfinite(score)
    edges = np.histogram_bin_edges(score[finite], bins=30)
    ax.hist(score[finite & (y == 0)], bins=edges, color=GOOD, alpha=0.55, density=True, label="goods")
    ax.hist(score[finite & (y == 1)], bins=edges, color=BAD, alpha=0.55, density=True, label="bads")
    ax.set_xlabel(f"score ({title})", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig)


def band_rates(tables: Mapping[str, pl.DataFrame], labels: Mapping[str, str]) -> str:
    """Actual bad rate per score band for each sample (bars), mean predicted PD (markers)."""
    names = list(tables)
    first = tables[names[0]]
    x = np.arange(first.height)
    width = 0.8 / max(len(names), 1)
    fig, ax = _figure(6.4, 3.4)
    for i, name in enumerate(names):
        t = tables[name]
        rate = np.array([np.nan if v is None else v for v in t["bad_rate"].to_list()], dtype=float)
        pred = np.array([np.nan if v is None else v for v in t["mean_pd"].to_list()], dtype=float)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(
            pos,
            rate,
            width=width,
            color=COLOURS.get(name, "#555"),
            alpha=0.8,
            label=f"{labels.get(name, name)} actual",
        )
        ax.plot(pos, pred, ls="none", marker="_", markersize=10, mew=2, color="#222")
    ax.plot([], [], ls="none", marker="_", markersize=10, mew=2, color="#222", label="predicted (mean PD)")
    ax.set_xticks(x)
    ax.set_xticklabels(first["band"].to_list(), rotation=35, ha="right", fontsize=7)
    ax.set_xlabel("score band", fontsize=8)
    ax.set_ylabel("bad rate", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def calibration(points: Mapping[str, pl.DataFrame], labels: Mapping[str, str]) -> str:
    """Mean predicted PD against actual bad rate per decile, with the diagonal."""
    fig, ax = _figure(4.2, 3.6)
    top = 0.0
    for name, table in points.items():
        pred = table["mean_pd"].to_numpy()
        act = table["bad_rate"].to_numpy()
        top = max(top, float(np.nanmax(pred)), float(np.nanmax(act)))
        ax.plot(
            pred, act, marker="o", ms=3.5, lw=1, color=COLOURS.get(name, "#555"), label=labels.get(name, name)
        )
    top = min(1.0, top * 1.08 + 1e-3)
    ax.plot([0, top], [0, top], color="#999", lw=0.8, ls="--")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted PD (decile mean)", fontsize=8)
    ax.set_ylabel("actual bad rate", fontsize=8)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _svg(fig)


def lift(table: pl.DataFrame, title: str) -> str:
    """Bad rate by decile of risk (riskiest first) against the overall bad rate."""
    fig, ax = _figure()
    groups = table["group"].to_list()
    ax.bar(groups, table["bad_rate"].to_list(), color="#1f5fa8", alpha=0.85)
    overall = float(table["bads"].sum()) / max(float(table["rows"].sum()), 1.0)
    ax.axhline(overall, color="#c92a2a", lw=1, ls="--", label=f"overall {overall:.1%}")
    ax.set_xticks(groups)
    ax.set_xlabel(f"decile of predicted risk, riskiest first ({title})", fontsize=8)
    ax.set_ylabel("bad rate", fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig)


def roc_curves(
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    out = {}
    for name, (y, p) in samples.items():
        fpr, tpr = metrics.roc_points(y, p)
        out[name] = (fpr, tpr, metrics.auc(y, p))
    return out


def bar_values(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    fig, ax = _figure(5.2, max(1.6, 0.28 * len(labels) + 0.6))
    pos = np.arange(len(labels))
    ax.barh(pos, values, color="#1f5fa8", alpha=0.85)
    ax.set_yticks(pos)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(title, fontsize=8)
    return _svg(fig)
