"""Benchmark: our scorecard and LightGBM against the standard open-source pipelines
(``creditfactory bench models``).

For each public data set found in ``../shared/datasets`` (German credit, HMEQ, Give Me Some
Credit; a missing one is skipped), one fixed stratified 70/30 split (scikit-learn's
``train_test_split``, seed 42) is made once and written down as row numbers. On that split, in the
same run:

* ``ours: scorecard`` — :class:`creditfactory.modeling.ScorecardModel` with its defaults
  (what ``creditfactory model train --kind scorecard`` fits);
* ``ours: LightGBM`` — :class:`creditfactory.modeling.LightGBMModel` with its defaults;
* ``optbinning`` — optbinning's documented pipeline: ``BinningProcess`` over every
  column + ``LogisticRegression()`` in ``Scorecard``;
* ``toad`` — toad's documented pipeline: ``selection.select`` (empty 0.5, IV 0.02, correlation
  0.7), chi-square ``Combiner`` (5 % minimum bin, missing values apart), ``WOETransformer``,
  ``selection.stepwise`` (both directions, AIC), ``ScoreCard``;
* ``scorecardpy`` — its documented pipeline: ``var_filter``, ``woebin``, ``woebin_ply``,
  ``LogisticRegression(penalty="l1", C=0.9, solver="saga")``; scorecardpy needs pandas < 3, so
  it runs in its own virtual environment, made on first use under ``DATA_DIR/bench``.

Every external pipeline runs in a child process that reads the same CSV and the same row
numbers; each prints test AUC and KS. Goal: our scorecard at least as good as the best of the
others on every data set.

Scoring speed: 1,000,000 rows drawn from a test sample are scored by our points table (NumPy
lookups), by its Polars expression, and, as the baseline, by optbinning's ``Scorecard.score``
on the same rows, all in this process. Target: more than 5 million rows per second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

DATASETS: dict[str, dict[str, Any]] = {
    "german_credit": {"file": "german_credit/german_credit.csv", "target": "class", "bad": 2},
    "hmeq": {"file": "hmeq/hmeq.csv", "target": "BAD", "bad": 1},
    "give_me_some_credit": {
        "file": "give_me_some_credit/cs-training.csv",
        "target": "SeriousDlqin2yrs",
        "bad": 1,
    },
}
EXTERNAL = ("optbinning", "toad", "scorecardpy")
SEED = 42
TEST_SIZE = 0.3


# ---------------------------------------------------------------------------- child side


def _pandas_split(spec: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """The data and the split as the parent wrote them, read with pandas."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(spec["path"])
    frame = frame.drop(
        columns=[c for c in frame.columns if str(c).startswith("Unnamed") or not str(c).strip()]
    )
    y = (frame.pop(spec["target"]) == spec["bad"]).astype(int).to_numpy()
    rows = json.loads(Path(spec["split"]).read_text())
    train, test = np.array(rows["train"]), np.array(rows["test"])
    X_train = frame.iloc[train].reset_index(drop=True)
    X_test = frame.iloc[test].reset_index(drop=True)
    return X_train, X_test, y[train], y[test]


def _auc_ks(y: Any, p: Any) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return {"auc": float(roc_auc_score(y, p)), "ks": float(np.max(tpr - fpr))}


def _pipeline_optbinning(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = _pandas_split(spec)
    categorical = [c for c in X_train.columns if not pd.api.types.is_numeric_dtype(X_train[c])]
    t0 = time.perf_counter()
    card = Scorecard(
        binning_process=BinningProcess(list(X_train.columns), categorical_variables=categorical),
        estimator=LogisticRegression(),
        scaling_method="min_max",
        scaling_method_params={"min": 300, "max": 850},
    ).fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    return {
        **_auc_ks(y_test, card.predict_proba(X_test)[:, 1]),
        "seconds": seconds,
        "features": len(X_train.columns),
    }


def _pipeline_toad(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    if int(pd.__version__.split(".")[0]) >= 3:
        # toad indexes column labels positionally, which pandas 3's Arrow-backed strings refuse.
        pd.set_option("future.infer_string", False)
    import toad

    X_train, X_test, y_train, y_test = _pandas_split(spec)
    t0 = time.perf_counter()
    train = X_train.copy()
    train["target"] = y_train
    selected = toad.selection.select(train, target="target", empty=0.5, iv=0.02, corr=0.7)
    combiner = toad.transform.Combiner()
    combiner.fit(selected, y="target", method="chi", min_samples=0.05, empty_separate=True)
    woe = toad.transform.WOETransformer()
    train_woe = woe.fit_transform(combiner.transform(selected), selected["target"], exclude=["target"])
    final = toad.selection.stepwise(
        train_woe, target="target", estimator="ols", direction="both", criterion="aic"
    )
    columns = [c for c in final.columns if c != "target"]
    card = toad.ScoreCard(combiner=combiner, transer=woe)
    card.fit(final[columns], final["target"])
    seconds = time.perf_counter() - t0
    return {
        **_auc_ks(y_test, card.predict_proba(X_test[columns])[:, 1]),
        "seconds": seconds,
        "features": len(columns),
    }


def _pipeline_scorecardpy(spec: dict[str, Any]) -> dict[str, Any]:
    import scorecardpy as sc
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = _pandas_split(spec)
    t0 = time.perf_counter()
    train = X_train.copy()
    train["target"] = y_train
    test = X_test.copy()
    test["target"] = y_test
    filtered = sc.var_filter(train, y="target")
    bins = sc.woebin(filtered, y="target")
    train_woe = sc.woebin_ply(filtered, bins)
    test_woe = sc.woebin_ply(test[filtered.columns], bins)
    columns = [c for c in train_woe.columns if c != "target"]
    lr = LogisticRegression(penalty="l1", C=0.9, solver="saga", n_jobs=1)
    lr.fit(train_woe[columns], train_woe["target"])
    seconds = time.perf_counter() - t0
    return {
        **_auc_ks(y_test, lr.predict_proba(test_woe[columns])[:, 1]),
        "seconds": seconds,
        "features": len(columns),
    }


def _child(name: str, spec: dict[str, Any]) -> None:
    import contextlib
    import io

    warnings.filterwarnings("ignore")
    noise = io.StringIO()
    with contextlib.redirect_stdout(noise):
        result = {
            "optbinning": _pipeline_optbinning,
            "toad": _pipeline_toad,
            "scorecardpy": _pipeline_scorecardpy,
        }[name](spec)
    print(json.dumps(result))


# ---------------------------------------------------------------------------- parent side


def _scorecardpy_python(workdir: Path, console: Any) -> Path:
    """The Python of a virtual environment with scorecardpy (pandas < 3), made on first use."""
    venv = workdir / "venv-scorecardpy"
    python = venv / "bin" / "python"
    marker = venv / ".ready"
    if marker.exists():
        return python
    console.print(f"  making a virtual environment for scorecardpy in {venv} (once)")
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "scorecardpy",
            "pandas<3",
        ],
    ):
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"could not make scorecardpy's environment: {tail}")
    marker.write_text("scorecardpy\n")
    return python


def _run_child(python: Path | str, name: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [str(python), __file__, "child", name, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{name} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _split(path: Path, spec: dict[str, Any], split_file: Path) -> tuple[Any, Any, Any, Any, Any]:
    import numpy as np
    from sklearn.model_selection import train_test_split

    from creditfactory.modeling import encode_target, read_table

    frame = read_table(path)
    y = encode_target(frame[spec["target"]], name=spec["target"], bad_value=spec["bad"])
    train, test = train_test_split(
        np.arange(frame.height), test_size=TEST_SIZE, random_state=SEED, stratify=y
    )
    train, test = np.sort(train), np.sort(test)
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps({"train": train.tolist(), "test": test.tolist(), "seed": SEED}))
    X = frame.drop(spec["target"])
    return X[train], X[test], y[train], y[test], frame


def _ours(kind: str, X_train: Any, X_test: Any, y_train: Any, y_test: Any) -> tuple[dict[str, Any], Any]:
    from creditfactory.modeling import LightGBMModel, ScorecardModel
    from creditfactory.modeling.model import metrics

    model = ScorecardModel() if kind == "scorecard" else LightGBMModel()
    t0 = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    p = model.predict_proba(X_test)[:, 1]
    features = len(model.selected_features_) if kind == "scorecard" else model.n_features_in_
    return {
        "auc": metrics.auc(y_test, p),
        "ks": metrics.ks(y_test, p),
        "seconds": seconds,
        "features": features,
    }, model


def _scoring(
    model: Any, X_train: Any, y_train: Any, X_test: Any, rows: int, console: Any
) -> list[dict[str, Any]]:
    """Score ``rows`` rows with our points table (NumPy, Polars) and optbinning's ``Scorecard.score``."""
    import numpy as np
    import pandas as pd
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    big = X_test.sample(n=rows, with_replacement=True, seed=1)
    table = model.points_table_
    expr = table.expr()

    def best_of(fn: Any, repeats: int = 3) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    ours = table.score(big)
    numpy_s = best_of(lambda: table.score(big))
    polars_s = best_of(lambda: big.select(expr))
    via_expr = big.select(expr).to_series().to_numpy()
    if not np.allclose(via_expr, ours, atol=1e-9):
        raise AssertionError("the Polars expression and the NumPy lookup disagree")

    console.print(f"  baseline: optbinning Scorecard.score on {rows:,} rows")
    train_pd = X_train.to_pandas()
    categorical = [c for c in train_pd.columns if not pd.api.types.is_numeric_dtype(train_pd[c])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = Scorecard(
            binning_process=BinningProcess(list(train_pd.columns), categorical_variables=categorical),
            estimator=LogisticRegression(),
        ).fit(train_pd, y_train)
        big_pd = big.to_pandas()
        baseline_s = best_of(lambda: card.score(big_pd), repeats=1)
    out = []
    for key, what, seconds in (
        ("numpy", "ours: points, NumPy", numpy_s),
        ("polars", "ours: points, Polars expr", polars_s),
        ("optbinning", "optbinning .score (baseline)", baseline_s),
    ):
        out.append(
            {
                "key": key,
                "what": what,
                "seconds": seconds,
                "rows_per_s": rows / seconds,
                "vs_baseline": baseline_s / seconds,
                "features": len(table.features),
                "text_features": sum(f.binning.dtype == "string" for f in table.features),
            }
        )
    return out


def run(
    *,
    datasets_dir: Path,
    workdir: Path,
    scoring_rows: int = 1_000_000,
    external: tuple[str, ...] = EXTERNAL,
    only: tuple[str, ...] = (),
    console: Any,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {"datasets": {}}
    notes: dict[str, str] = {}
    shortfalls: list[str] = []
    scoring_sources: dict[str, tuple[Any, ...]] = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for name, spec in DATASETS.items():
        if only and name not in only:
            continue
        path = datasets_dir / spec["file"]
        if not path.exists():
            notes[f"skipped {name}"] = f"{path} not found"
            continue
        console.print(f"{name}: split 70/30 (seed {SEED})")
        split_file = workdir / name / "split.json"
        X_train, X_test, y_train, y_test, frame = _split(path, spec, split_file)
        results: dict[str, dict[str, Any]] = {}
        console.print(f"  ours: scorecard on {X_train.height:,} rows")
        results["ours: scorecard"], scorecard = _ours("scorecard", X_train, X_test, y_train, y_test)
        console.print("  ours: LightGBM")
        results["ours: LightGBM"], _ = _ours("lightgbm", X_train, X_test, y_train, y_test)
        child_spec = {
            "path": str(path),
            "target": spec["target"],
            "bad": spec["bad"],
            "split": str(split_file),
        }
        for pipeline in external:
            label = pipeline
            console.print(f"  {label}")
            try:
                python = (
                    _scorecardpy_python(workdir, console)
                    if pipeline == "scorecardpy"
                    else Path(sys.executable)
                )
                results[label] = _run_child(python, pipeline, child_spec, timeout=1800)
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                notes[f"{name}: {label}"] = f"not run ({exc})"
        ours = results["ours: scorecard"]["auc"]
        others = {k: v["auc"] for k, v in results.items() if not k.startswith("ours")}
        best_name, best = max(others.items(), key=lambda kv: kv[1]) if others else ("", float("nan"))
        for label, r in results.items():
            mark = ""
            if label == "ours: scorecard" and others:
                mark = f"{ours - best:+.4f} vs {best_name}"
            rows.append(
                {
                    "dataset": name,
                    "pipeline": label,
                    "test_auc": f"{r['auc']:.4f}",
                    "test_ks": f"{r['ks']:.4f}",
                    "features": r["features"],
                    "seconds": round(r["seconds"], 2),
                    "note": mark,
                }
            )
        figures["datasets"][name] = {
            "rows": frame.height,
            "ours_auc": ours,
            "ours_ks": results["ours: scorecard"]["ks"],
            "lightgbm_auc": results["ours: LightGBM"]["auc"],
            "best_other": best_name,
            "best_other_auc": best,
            "margin": ours - best if others else None,
            **{f"{k}_auc": v for k, v in others.items()},
        }
        if others and ours < best:
            shortfalls.append(f"{name}: {ours:.4f} against {best_name} {best:.4f}")
        scoring_sources[name] = (frame.height, scorecard, X_train, y_train, X_test)

    # Scoring speed on the largest data set (numbers), and on German credit (mostly text codes).
    chosen = sorted(scoring_sources, key=lambda k: -scoring_sources[k][0])[:1]
    if "german_credit" in scoring_sources and "german_credit" not in chosen:
        chosen.append("german_credit")
    for name in chosen if scoring_rows > 0 else []:
        _, scorecard, X_train, y_train, X_test = scoring_sources[name]
        console.print(f"scoring {scoring_rows:,} rows drawn from the {name} test sample")
        for r in _scoring(scorecard, X_train, y_train, X_test, scoring_rows, console):
            rows.append(
                {
                    "dataset": f"{name} x {scoring_rows / 1e6:g}M",
                    "pipeline": r["what"],
                    "test_auc": "",
                    "test_ks": "",
                    "features": f"{r['features']} ({r['text_features']} text)",
                    "seconds": round(r["seconds"], 3),
                    "note": f"{r['rows_per_s'] / 1e6:.1f}M rows/s, {r['vs_baseline']:.1f}x",
                }
            )
            figures.setdefault("scoring", {}).setdefault(name, {})[r["key"]] = {
                "rows_per_s": r["rows_per_s"],
                "vs_baseline": r["vs_baseline"],
                "features": r["features"],
                "text_features": r["text_features"],
            }
    notes["goal"] = (
        "our scorecard's test AUC is at least the best of the other pipelines on every data set"
        if not shortfalls
        else "short of the best pipeline on " + "; ".join(shortfalls)
    )
    figures["goal_met"] = not shortfalls
    return {"rows": rows, "figures": figures, "notes": notes}


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "child":
    _child(sys.argv[2], json.loads(sys.argv[3]))
