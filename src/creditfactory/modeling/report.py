"""The validation report: one self-contained HTML page a model committee can read offline.

Rendered from ``templates/report.html.j2`` with Jinja2 (autoescaped); every chart is an inline
SVG, there are no scripts, fonts or style sheets from elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from creditfactory.modeling import charts
from creditfactory.modeling.model import metrics
from creditfactory.modeling.model.binning import iv_strength
from creditfactory.modeling.validation import SAMPLE_LABELS, Validation


def _pct(v: Any, places: int = 1) -> str:
    return (
        "–"
        if v is None or (isinstance(v, float) and not math.isfinite(v))
        else f"{float(v) * 100:.{places}f}%"
    )


def _f(v: Any, places: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{float(v):.{places}f}"


def _int(v: Any) -> str:
    return "–" if v is None else f"{int(v):,}"


def _when(text: Any) -> str:
    """An ISO timestamp as ``2025-07-01 02:00 UTC``."""
    if not text:
        return ""
    value = str(text)
    return value[:10] + " " + value[11:16] + " UTC" if len(value) >= 16 else value


def _auc_level(auc: float) -> tuple[str, str]:
    if not math.isfinite(auc):
        return "warn", "not measurable"
    if auc >= 0.8:
        return "ok", "strong"
    if auc >= 0.7:
        return "ok", "acceptable"
    if auc >= 0.6:
        return "warn", "weak"
    return "bad", "poor"


def verdicts(v: Validation) -> list[dict[str, str]]:
    """Plain sentences on discrimination, overfitting, stability and calibration."""
    out = []
    head = v.headline
    s = v.summary[head]
    level, word = _auc_level(s["auc"])
    out.append(
        {
            "level": level,
            "text": f"Discrimination on the {SAMPLE_LABELS[head]} sample is {word}: AUC {_f(s['auc'])}, "
            f"Gini {_f(s['gini'])}, KS {_f(s['ks'])} ({_int(s['rows'])} rows, {_int(s['bads'])} bad).",
        }
    )
    train_auc = v.summary["train"]["auc"]
    gap = train_auc - s["auc"]
    if head != "train":
        out.append(
            {
                "level": "ok" if gap <= 0.03 else ("warn" if gap <= 0.06 else "bad"),
                "text": f"AUC falls from {_f(train_auc)} on development to {_f(s['auc'])} on "
                f"{SAMPLE_LABELS[head]}"
                + (": little sign of overfitting." if gap <= 0.03 else ": check for overfitting."),
            }
        )
    for name, value in v.score_psi.items():
        reading = metrics.psi_reading(value)
        out.append(
            {
                "level": {"stable": "ok", "some shift": "warn"}.get(reading, "bad"),
                "text": f"Score population of the {SAMPLE_LABELS.get(name, name)} sample against development: "
                f"PSI {_f(value)} ({reading}).",
            }
        )
    shifted = []
    for col in v.feature_psi.columns:
        if col == "feature":
            continue
        for feat, val in zip(v.feature_psi["feature"], v.feature_psi[col], strict=True):
            if val is not None and val >= 0.1:
                shifted.append(f"{feat} ({SAMPLE_LABELS.get(col, col)} {val:.2f})")
    if shifted:
        out.append(
            {"level": "warn", "text": "Features that shifted (PSI ≥ 0.10): " + ", ".join(shifted) + "."}
        )
    elif v.feature_psi.height:
        out.append({"level": "ok", "text": "Every feature is stable (PSI below 0.10 in every sample)."})
    hl = v.hosmer_lemeshow[head]
    calibrated = hl["p_value"] >= 0.05
    out.append(
        {
            "level": "ok" if calibrated else "warn",
            "text": f"Calibration on {SAMPLE_LABELS[head]}: mean predicted PD {_pct(s['mean_pd'], 2)} "
            f"against an actual bad rate of {_pct(s['bad_rate'], 2)}; Hosmer–Lemeshow p = {_f(hl['p_value'])}"
            + (
                " (consistent)."
                if calibrated
                else " (predicted PDs differ from the outcomes; recalibrate before using PDs)."
            ),
        }
    )
    return out


def _colour(r: float) -> str:
    a = min(abs(r), 1.0)
    if a < 0.3:
        return "transparent"
    base = (201, 42, 42) if r > 0 else (31, 95, 168)
    alpha = 0.15 + 0.6 * (a - 0.3) / 0.7
    return f"rgba({base[0]},{base[1]},{base[2]},{alpha:.2f})"


def render(validation: Validation, manifest: Mapping[str, Any]) -> str:
    """The report page for one model version."""
    from jinja2 import Environment
    from markupsafe import Markup

    v = validation
    labels = {k: SAMPLE_LABELS.get(k, k) for k in v.samples}
    head = v.headline
    hs = v.samples[head]

    chart_svgs = {
        "roc": charts.roc(charts.roc_curves({k: (s.y, s.pd) for k, s in v.samples.items()}), labels),
        "ks": charts.ks(hs.y, hs.score, labels[head]),
        "distribution": charts.distribution(hs.y, hs.score, labels[head]),
        "lift": charts.lift(v.deciles[head], labels[head]),
        "bands": charts.band_rates(v.bands, labels),
        "calibration": charts.calibration(v.deciles, labels),
    }
    if v.importance is not None:
        imp = v.importance.head(20)
        chart_svgs["importance"] = charts.bar_values(
            imp["feature"].to_list(), imp["gain_share"].to_list(), "gain share"
        )

    sample_rows = []
    for k, s in v.summary.items():
        psi = v.score_psi.get(k)
        sample_rows.append(
            {
                "label": labels[k],
                "rows": _int(s["rows"]),
                "bads": _int(s["bads"]),
                "bad_rate": _pct(s["bad_rate"]),
                "auc": _f(s["auc"]),
                "ks": _f(s["ks"]),
                "gini": _f(s["gini"]),
                "mean_pd": _pct(s["mean_pd"], 2),
                "brier": _f(s["brier"], 4),
                "psi": "baseline" if k == "train" else f"{_f(psi)} ({metrics.psi_reading(psi)})",
            }
        )

    decile_rows = [
        {
            "group": r["group"],
            "rows": _int(r["rows"]),
            "bads": _int(r["bads"]),
            "bad_rate": _pct(r["bad_rate"]),
            "min_pd": _pct(r["min_pd"], 2),
            "max_pd": _pct(r["max_pd"], 2),
            "mean_pd": _pct(r["mean_pd"], 2),
            "cum_bad_capture": _pct(r["cum_bad_capture"]),
            "lift": _f(r["lift"], 2),
            "cum_lift": _f(r["cum_lift"], 2),
        }
        for r in v.deciles[head].iter_rows(named=True)
    ]

    band_samples = [labels[k] for k in v.bands]
    band_rows = []
    first = next(iter(v.bands.values()))
    for i, band in enumerate(first["band"].to_list()):
        cells = []
        for table in v.bands.values():
            r = table.row(i, named=True)
            cells.append(
                {
                    "rows": _int(r["rows"]),
                    "share": _pct(r["share"]),
                    "bad_rate": _pct(r["bad_rate"]),
                    "mean_pd": _pct(r["mean_pd"]),
                }
            )
        band_rows.append({"band": band, "cells": cells})

    used = set(v.features)
    iv_rows = []
    for r in v.iv.iter_rows(named=True):
        name = r["feature"]
        if name in used:
            status = "yes"
        else:
            status = "no: " + v.dropped.get(name, "not used")
        iv_rows.append(
            {
                "feature": name,
                "type": r["type"],
                "iv": _f(r["iv"], 4),
                "strength": iv_strength(r["iv"]),
                "bins": r["bins"],
                "trend": r["trend"],
                "missing": _pct(r["missing_share"]),
                "used": status,
            }
        )

    psi_samples = [labels.get(c, c) for c in v.feature_psi.columns if c != "feature"]
    psi_rows = []
    for r in v.feature_psi.iter_rows(named=True):
        cells = [
            {"value": _f(r[c]), "reading": metrics.psi_reading(r[c] if r[c] is not None else float("nan"))}
            for c in v.feature_psi.columns
            if c != "feature"
        ]
        psi_rows.append({"feature": r["feature"], "cells": cells})

    corr_rows = []
    for i, name in enumerate(v.correlation_features):
        cells = [
            {
                "value": _f(float(v.correlation[i, j]), 2),
                "colour": _colour(float(v.correlation[i, j])) if i != j else "#f1f3f5",
            }
            for j in range(len(v.correlation_features))
        ]
        corr_rows.append({"name": name, "cells": cells})

    points_rows = []
    if v.points is not None:
        previous = None
        for r in v.points.iter_rows(named=True):
            points_rows.append(
                {
                    "first": r["feature"] != previous,
                    "feature": r["feature"],
                    "bin": r["bin"],
                    "count": _int(r["count"]),
                    "bad_rate": _pct(r["bads"] / r["count"]) if r["count"] else "–",
                    "woe": _f(r["woe"], 4),
                    "coefficient": _f(r["coefficient"], 4),
                    "points": _f(r["points"], 1),
                }
            )
            previous = r["feature"]

    params = manifest.get("params", {}) or {}
    scaling = manifest.get("scaling") or {}
    scaling_text = (
        f"Score = sum of points. {scaling.get('base_score', 600):g} points at odds of "
        f"{scaling.get('base_odds', 50):g}:1 (good:bad); every {scaling.get('pdo', 20):g} points double the odds. "
        "Missing values and special codes score in their own bins; a category not seen in training "
        "scores as an average case (WoE 0)."
    )
    importance_rows = []
    gbm_text = ""
    if v.importance is not None:
        constraints = (manifest.get("lightgbm") or {}).get("monotone_constraints", {})
        for r in v.importance.iter_rows(named=True):
            sign = constraints.get(r["feature"], 0)
            importance_rows.append(
                {
                    "feature": r["feature"],
                    "gain": _pct(r["gain_share"]),
                    "splits": _int(r["splits"]),
                    "monotone": {1: "risk rises with value", -1: "risk falls with value"}.get(sign, ""),
                }
            )
        lgb = manifest.get("lightgbm") or {}
        gbm_text = (
            f"{lgb.get('best_iteration', '?')} trees (early stopping on a validation window carved from "
            f"the training data, never on the test sample); learning rate {params.get('learning_rate', '?')}, "
            f"{params.get('num_leaves', '?')} leaves per tree. Reason codes are the features whose SHAP "
            "contributions push a customer's risk up the most."
        )

    data = manifest.get("data", {}) or {}
    split = manifest.get("split", {}) or {}
    facts: list[tuple[str, str]] = []
    if data.get("source"):
        facts.append(("data", str(data["source"])))
    facts.append(("target", f"{manifest.get('target')} (bad = {data.get('bad_value', 1)!s})"))
    facts.append(
        (
            "samples",
            ", ".join(f"{labels[k]} {_int(s['rows'])}" for k, s in v.summary.items())
            + (
                f"; stratified split, test share {split.get('test_size')}, seed {split.get('seed')}"
                if split
                else ""
            ),
        )
    )
    for key, value in (manifest.get("windows") or {}).items():
        facts.append((f"window: {key}", str(value)))
    facts.append(
        ("features offered / used", f"{len(manifest.get('offered_features', []))} / {len(v.features)}")
    )
    if data.get("fingerprint"):
        facts.append(("training data fingerprint", f"sha256 {data['fingerprint'][:16]}…"))
    if params:
        shown = ", ".join(f"{k}={val}" for k, val in sorted(params.items()) if k not in ("features",))
        facts.append(("parameters", shown))

    libs = manifest.get("libraries", {}) or {}
    footer = [
        ("model", f"{manifest.get('name')} v{manifest.get('version')}"),
        ("kind", manifest.get("kind", "")),
    ]
    footer += [(k, str(val)) for k, val in sorted(libs.items())]

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    template = env.from_string(
        (files("creditfactory.modeling") / "templates" / "report.html.j2").read_text("utf-8")
    )
    return template.render(
        m={
            "name": manifest.get("name"),
            "version": manifest.get("version"),
            "segment": manifest.get("segment"),
            "status": manifest.get("status", "draft"),
            "trained_by": manifest.get("trained_by"),
            "trained_at": _when(manifest.get("trained_at")),
        },
        kind=v.kind,
        kind_label="Points scorecard (binning + logistic regression)"
        if v.kind == "scorecard"
        else "LightGBM challenger (gradient-boosted trees)",
        verdicts=verdicts(v),
        sample_rows=sample_rows,
        facts=facts,
        charts={k: Markup(s) for k, s in chart_svgs.items()},
        head_label=labels[head],
        decile_rows=decile_rows,
        band_samples=band_samples,
        band_rows=band_rows,
        hl_rows=[
            {"label": labels[k], "statistic": _f(h["statistic"], 2), "p_value": _f(h["p_value"])}
            for k, h in v.hosmer_lemeshow.items()
        ],
        iv_rows=iv_rows,
        psi_samples=psi_samples,
        psi_rows=psi_rows,
        corr_names=v.correlation_features,
        corr_rows=corr_rows,
        points_rows=points_rows,
        scaling_text=scaling_text,
        importance_rows=importance_rows,
        gbm_text=gbm_text,
        footer=footer,
    )


__all__ = ["render", "verdicts"]
