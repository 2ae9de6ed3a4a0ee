"""Benchmark: whitelist mining of N portrait-shaped customers (``creditfactory bench mining``).

Stages, each in its own process so that its peak memory is its own:

* ``prepare``   — a sandbox bank (50,000 customers by default) is generated, ingested and given
  portraits and targets; a scorecard and a LightGBM model (200 trees, 31 leaves) are trained on
  it and approved; its portrait is then replicated (new customer ids, every row otherwise a real
  sandbox customer) to N customers, keeping the columns the strategy and the models read;
* ``scorecard`` — the shipped mining strategy with the scorecard for every segment, on the local
  engine: read, score, policy, limit, write, end to end;
* ``lightgbm``  — the same strategy with the LightGBM model; beside it, in the same process, the
  raw LightGBM predict on an in-memory matrix of the same customers (the limit for a tree model);
* ``pandas``    — a straightforward pandas implementation of the scorecard strategy (vectorised
  ``pd.cut`` look-ups and boolean masks), on a sample, checked against the engine's answer;
* ``spark``     — the scorecard strategy on Spark ``local[2]``, start-up reported separately.

Targets (2 cores): at least 1.5M customers/s for the scorecard strategy; at least 80% of the
raw-predict rate for the LightGBM strategy; Spark local[2] at least 300k customers/s; peak memory
under 8 GiB.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

TRAIN = date(2024, 6, 30)
AS_OF = date(2025, 6, 30)
ON = date(2025, 7, 1)
STRATEGY = (
    Path(__file__).resolve().parents[1] / "src" / "creditfactory" / "strategy" / "examples" / "mining.yaml"
)


#: Rows of the raw-predict baseline: a matrix of ten million rows would not fit beside the engine.
RAW_PREDICT_ROWS = 2_000_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _container(data_dir: Path) -> Any:
    from datetime import UTC, datetime

    from creditfactory.bootstrap import build
    from creditfactory.clock import FixedClock
    from creditfactory.config import Settings

    return build(Settings(data_dir=data_dir), clock=FixedClock(datetime(2025, 7, 1, 2, tzinfo=UTC)))


def _strategy_for(model: str, out: Path) -> Path:
    text = STRATEGY.read_text(encoding="utf-8")
    block = "models:\n" + "".join(f"  {s}: {model}\n" for s in ("farmer", "merchant", "salaried", "other"))
    text = re.sub(r"models:.*?\n\n", block + "\n", text, count=1, flags=re.S)
    out.write_text(text, encoding="utf-8")
    return out


def _stage_prepare(work: Path, customers: int, seed: int, base: int) -> dict[str, Any]:
    import polars as pl

    from creditfactory import modeling, portrait
    from creditfactory.contract import IngestSettings, ingest_directory
    from creditfactory.sandbox import SandboxConfig, generate
    from creditfactory.whitelist import mining

    t0 = time.perf_counter()
    made = generate(SandboxConfig(customers=base, seed=seed), work / "sandbox")
    c = _container(work / "var")
    ingest_directory(
        directory=made.out_dir,
        uow_factory=c.sessions,
        clock=c.clock,
        vault=c.vault,
        settings=IngestSettings(lake=c.lake_dir, reject_root=c.reject_dir),
    )
    for at in (TRAIN, AS_OF):
        portrait.build(c.lake_dir, as_of=at)
    portrait.build_targets(c.lake_dir, as_of=TRAIN)
    dev = modeling.portrait_sample(c.lake_dir, as_of=TRAIN, segment=None, target="dpd30_12m")
    exclude = modeling.portrait_exclusions(dev, target="dpd30_12m")
    specs = {
        "bench_scorecard": ("scorecard", {"max_features": 20}),
        "bench_lightgbm": (
            "lightgbm",
            {"n_estimators": 200, "num_leaves": 31, "early_stopping_rounds": 0, "learning_rate": 0.05},
        ),
    }
    for name, (kind, params) in specs.items():
        with c.uow() as uow:
            modeling.train_and_register(
                uow,
                models_dir=c.models_dir,
                name=name,
                kind=kind,
                segment=None,
                dev=dev,
                oot=None,
                target="dpd30_12m",
                features=None,
                trained_by="bench-trainer",
                seed=seed,
                clock=c.clock,
                exclude=exclude,
                params=params,
            )
            uow.commit()
        with c.uow() as uow:
            modeling.approve_version(
                uow,
                models_dir=c.models_dir,
                name=name,
                version=1,
                approved_by="bench-approver",
                clock=c.clock,
            )
            uow.commit()
    # the columns both strategies read
    columns: set[str] = set()
    for name in specs:
        path = _strategy_for(name, work / f"{name}.yaml")
        with c.uow() as uow:
            prepared = mining.prepare(
                uow,
                lake=c.lake_dir,
                models_dir=c.models_dir,
                strategy_path=path,
                as_of=AS_OF,
                business_date=ON,
                facts=pl.DataFrame(
                    schema={
                        "customer_id": pl.String,
                        "has_line_with_us": pl.Boolean,
                        "days_since_decline": pl.Int64,
                        "exited_before": pl.Boolean,
                    }
                ),
            )
        columns.update(prepared.columns)
    src = portrait.read(c.lake_dir, as_of=AS_OF).collect()
    keep = [col for col in src.columns if col in columns]
    src = src.select(keep)
    # N customers: each row a real sandbox customer under a new id
    big = work / "big" / "portrait" / f"as_of={AS_OF.isoformat()}"
    big.mkdir(parents=True)
    rows_per_part = 2_000_000
    written = 0
    part = 0
    while written < customers:
        n = min(rows_per_part, customers - written)
        idx = pl.int_range(written, written + n, eager=True)
        frame = src.sample(n=n, with_replacement=True, seed=seed + part).with_columns(
            ("B" + idx.cast(pl.String).str.zfill(10)).alias("customer_id")
        )
        frame.sort("customer_id").write_parquet(
            big / f"part-{part:05d}.parquet", compression="zstd", row_group_size=250_000
        )
        written += n
        part += 1
    manifest = portrait.manifest(c.lake_dir, as_of=AS_OF)
    manifest["rows"] = customers
    manifest["columns"] = (
        {k: v for k, v in manifest.get("columns", {}).items() if k in keep}
        if isinstance(manifest.get("columns"), dict)
        else manifest.get("columns")
    )
    (big / "_manifest.json").write_text(json.dumps(manifest, default=str))
    c.close()
    return {
        "seconds": time.perf_counter() - t0,
        "rows": customers,
        "columns": len(keep),
        "peak_mb": _peak_mb(),
    }


def _prepared(work: Path, model: str) -> tuple[Any, Any, Path]:
    import polars as pl

    from creditfactory.whitelist import mining

    c = _container(work / "var")
    lake = work / "big"
    with c.uow() as uow:
        prepared = mining.prepare(
            uow,
            lake=lake,
            models_dir=c.models_dir,
            strategy_path=work / f"{model}.yaml",
            as_of=AS_OF,
            business_date=ON,
            facts=pl.DataFrame(
                schema={
                    "customer_id": pl.String,
                    "has_line_with_us": pl.Boolean,
                    "days_since_decline": pl.Int64,
                    "exited_before": pl.Boolean,
                }
            ),
        )
    return c, prepared, lake


def _stage_local(work: Path, model: str) -> dict[str, Any]:
    from creditfactory.whitelist import mining

    c, prepared, lake = _prepared(work, model)
    out = work / f"out-{model}"
    shutil.rmtree(out, ignore_errors=True)
    result = mining._run_engine(
        "local", lake=lake, prepared=prepared, as_of=AS_OF, out=out, spark=None, progress=None
    )
    import polars as pl

    eligible = (
        pl.scan_parquet(result.parts)
        .filter(pl.col("outcome") == "eligible")
        .select(pl.len())
        .collect()
        .item()
    )
    figures: dict[str, Any] = {
        "seconds": result.seconds,
        "rows": result.rows,
        "eligible": eligible,
        "mode": result.mode,
        "peak_mb": _peak_mb(),
    }
    if model == "bench_lightgbm":
        import numpy as np

        from creditfactory import modeling

        with c.uow() as uow:
            loaded = modeling.load_version(uow, models_dir=c.models_dir, name=model)
        gbm = loaded.estimator
        frame = (
            pl.scan_parquet(sorted((lake / "portrait" / f"as_of={AS_OF.isoformat()}").glob("part-*.parquet")))
            .select(list(loaded.features))
            .head(RAW_PREDICT_ROWS)  # the rate per row does not depend on the count; memory does
            .collect()
        )
        matrix = gbm._matrix(frame)
        del frame
        booster = gbm.booster_
        figures["trees"] = booster.num_trees()
        t0 = time.perf_counter()
        raw = booster.predict(matrix, raw_score=True, num_threads=0)
        figures["raw_predict_seconds"] = time.perf_counter() - t0
        figures["raw_rows"] = int(np.asarray(raw).shape[0])
    c.close()
    return figures


def _stage_pandas(work: Path, sample: int) -> dict[str, Any]:
    """A straightforward pandas implementation of the shipped strategy with the scorecard."""
    import numpy as np
    import pandas as pd

    from creditfactory import modeling
    from creditfactory.modeling.model.binning import BinKind

    c = _container(work / "var")
    with c.uow() as uow:
        loaded = modeling.load_version(uow, models_dir=c.models_dir, name="bench_scorecard")
    table = loaded.estimator._table()
    parts = sorted((work / "big" / "portrait" / f"as_of={AS_OF.isoformat()}").glob("part-*.parquet"))
    t0 = time.perf_counter()
    frames = []
    n = 0
    for p in parts:
        f = pd.read_parquet(p)
        frames.append(f)
        n += len(f)
        if n >= sample:
            break
    df = pd.concat(frames).head(sample).reset_index(drop=True)
    score = np.zeros(len(df))
    for feature in table.features:
        b = feature.binning
        pts = feature.points
        x = df[b.name]
        missing = pts[b.position(BinKind.MISSING)]
        if b.dtype == "string":
            mapping = {
                str(v): p
                for bb, p in zip(b.bins, pts, strict=True)
                if bb.kind is BinKind.CATEGORIES
                for v in bb.values
            }
            other = pts[b.position(BinKind.OTHER)]
            s = x.astype("string").map(mapping).astype(float).fillna(other)
            s[x.isna()] = missing
        else:
            xs = x.astype(float)
            intervals = [(bb, p) for bb, p in zip(b.bins, pts, strict=True) if bb.kind is BinKind.INTERVAL]
            edges = [-np.inf] + [bb.upper for bb, _ in intervals[:-1]] + [np.inf]
            s = (
                pd.cut(xs, bins=edges, right=False, labels=False)
                .map(dict(enumerate(p for _, p in intervals)))
                .astype(float)
            )
            if b.specials:
                s[xs.isin(list(b.specials))] = pts[b.position(BinKind.SPECIAL)]
            s[xs.isna()] = missing
        score += s.to_numpy()
    df["score"] = score
    debt = df["existing_loan_balance"].fillna(0) + df["bureau_total_exposure"].fillna(0)
    income = df["annual_income_est"]
    dti = np.where(income > 0, debt / income, np.nan)
    multiple = df["segment"].map({"salaried": 0.5, "farmer": 0.6, "merchant": 0.4}).fillna(0.3)
    excluded = (
        ~df["age"].between(18, 60)
        | (df["kyc_complete"] != True)  # noqa: E712
        | (df["marketing_consent"] != True)  # noqa: E712
        | (df["months_since_open"] < 6)
        | (df["on_negative_list"] == True)  # noqa: E712
        | (df["current_dpd"] > 0)
        | (df["has_overdue"] == True)  # noqa: E712
        | income.isna()
        | (income < 12000)
        | (dti > 3)
    )
    cutoff = df["segment"].map({"farmer": 560, "merchant": 580, "salaried": 570, "other": 600})
    excluded |= ~(df["score"] >= cutoff)
    excluded |= ~(df["score"] >= 300)
    formula = income * multiple + df["assets_current"].fillna(0) * 0.2
    limit = np.minimum.reduce([formula, 500000 - debt, income * 2 - debt, np.full(len(df), 300000.0)])
    limit = pd.Series(np.floor(limit / 1000) * 1000, index=df.index)
    excluded |= ~(limit >= 5000)
    grade = pd.cut(
        df["score"], bins=[300, 600, 640, 680, 720, np.inf], right=False, labels=["E", "D", "C", "B", "A"]
    )
    price = grade.map({"A": 0.0435, "B": 0.052, "C": 0.061, "D": 0.072, "E": 0.085}).astype(float)
    out = pd.DataFrame(
        {
            "customer_id": df["customer_id"],
            "outcome": np.where(excluded, "excluded", "eligible"),
            "grade": grade.astype("string").where(~excluded),
            "limit": limit.where(~excluded),
            "price": price.where(~excluded),
        }
    )
    out.to_parquet(work / "pandas.parquet")
    seconds = time.perf_counter() - t0
    # the same customers through the engine's output, for a check of the answers
    import polars as pl

    engine = (
        pl.scan_parquet(sorted((work / "out-bench_scorecard").glob("*.parquet")))
        .select("customer_id", "outcome")
        .collect()
    )
    mine = pl.from_pandas(out[["customer_id", "outcome"]]).join(engine, on="customer_id", suffix="_engine")
    agree = float((mine["outcome"] == mine["outcome_engine"]).mean())
    c.close()
    return {"seconds": seconds, "rows": len(df), "agree": agree, "peak_mb": _peak_mb()}


def _jvm_cpu_seconds() -> float:
    """CPU seconds used so far by this process's JVM child (Spark local mode), 0 if none: on a
    shared machine the steadier figure beside the wall-clock time."""
    import os

    mine = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm, rest = stat.read_text().split(") ", 1)
        except OSError:
            continue
        fields = rest.split()
        if comm.endswith("(java") and fields[1] == mine:
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _stage_spark(work: Path) -> dict[str, Any]:
    from creditfactory.engines import spark as spark_engine
    from creditfactory.whitelist import mining

    t0 = time.perf_counter()
    session = spark_engine.session(memory="6g")
    session.range(1).count()
    startup = time.perf_counter() - t0
    c, prepared, lake = _prepared(work, "bench_scorecard")
    out = work / "out-spark"
    shutil.rmtree(out, ignore_errors=True)
    cpu0 = _jvm_cpu_seconds()
    result = mining._run_engine(
        "spark", lake=lake, prepared=prepared, as_of=AS_OF, out=out, spark=session, progress=None
    )
    cpu1 = _jvm_cpu_seconds()
    # Baseline, same session and input, after the run (so the run, not the baseline, pays for
    # the JVM's warm-up): the columns the run reads, read and written back as Parquet.
    from creditfactory import portrait

    copy = work / "out-spark-copy"
    shutil.rmtree(copy, ignore_errors=True)
    t0 = time.perf_counter()
    session.read.parquet(*[str(p) for p in portrait.files(lake, as_of=AS_OF)]).select(
        *prepared.columns
    ).write.parquet(str(copy))
    copy_seconds = time.perf_counter() - t0
    cpu2 = _jvm_cpu_seconds()
    shutil.rmtree(copy, ignore_errors=True)
    c.close()
    session.stop()
    return {
        "seconds": result.seconds,
        "rows": result.rows,
        "startup": startup,
        "copy_seconds": copy_seconds,
        "jvm_cpu_seconds": round(cpu1 - cpu0, 1),
        "copy_jvm_cpu_seconds": round(cpu2 - cpu1, 1),
        "columns": len(prepared.columns),
        "peak_mb": _peak_mb(),
    }


def _child(stage: str, args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, stage, json.dumps(args)], stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark stage {stage} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(
    *,
    customers: int,
    seed: int,
    base: int,
    pandas_rows: int,
    spark: bool,
    workdir: Path,
    keep: bool,
    console: Any,
) -> dict[str, Any]:
    work = Path(workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    console.print(f"[bold]prepare[/] a {base:,}-customer sandbox, two models, {customers:,} portrait rows …")
    prep = _child("prepare", {"work": str(work), "customers": customers, "seed": seed, "base": base})
    console.print(f"  {prep['seconds']:.1f} s ({prep['columns']} columns)")
    console.print("[bold]scorecard strategy[/] on the local engine …")
    sc = _child("local", {"work": str(work), "model": "bench_scorecard"})
    console.print(f"  {sc['seconds']:.1f} s")
    console.print("[bold]LightGBM strategy[/] on the local engine, and the raw predict …")
    gb = _child("local", {"work": str(work), "model": "bench_lightgbm"})
    console.print(f"  {gb['seconds']:.1f} s (raw predict {gb['raw_predict_seconds']:.1f} s)")
    console.print(f"[bold]pandas[/] baseline on {min(pandas_rows, customers):,} customers …")
    pd_ = _child("pandas", {"work": str(work), "sample": min(pandas_rows, customers)})
    console.print(f"  {pd_['seconds']:.1f} s")
    sp = None
    if spark:
        console.print("[bold]Spark local[2][/] scorecard strategy …")
        try:
            sp = _child("spark", {"work": str(work)})
            console.print(
                f"  {sp['seconds']:.1f} s (+{sp['startup']:.1f} s start-up; "
                f"plain read + write of its columns {sp['copy_seconds']:.1f} s)"
            )
        except RuntimeError as exc:
            console.print(f"  Spark stage failed: {exc}")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)

    def rate(rows: int, seconds: float) -> float:
        return rows / seconds if seconds else 0.0

    sc_rate = rate(sc["rows"], sc["seconds"])
    gb_rate = rate(gb["rows"], gb["seconds"])
    raw_rate = rate(gb["raw_rows"], gb["raw_predict_seconds"])
    pd_rate = rate(pd_["rows"], pd_["seconds"])
    rows = [
        {
            "what": "scorecard strategy, local engine (read, score, policy, limit, write)",
            "customers": sc["rows"],
            "seconds": sc["seconds"],
            "customers/s": sc_rate,
            "peak MB": sc["peak_mb"],
        },
        {
            "what": "LightGBM strategy, local engine",
            "customers": gb["rows"],
            "seconds": gb["seconds"],
            "customers/s": gb_rate,
            "peak MB": gb["peak_mb"],
        },
        {
            "what": "baseline: raw LightGBM predict, in-memory matrix",
            "customers": gb["raw_rows"],
            "seconds": gb["raw_predict_seconds"],
            "customers/s": raw_rate,
            "peak MB": "",
        },
        {
            "what": "baseline: straightforward pandas, scorecard strategy",
            "customers": pd_["rows"],
            "seconds": pd_["seconds"],
            "customers/s": pd_rate,
            "peak MB": pd_["peak_mb"],
        },
    ]
    if sp is not None:
        rows.append(
            {
                "what": "scorecard strategy, Spark local[2] (start-up apart)",
                "customers": sp["rows"],
                "seconds": sp["seconds"],
                "customers/s": rate(sp["rows"], sp["seconds"]),
                "peak MB": sp["peak_mb"],
            }
        )
        rows.append(
            {
                "what": f"baseline: Spark local[2] reads the same {sp['columns']} columns and writes them back",
                "customers": sp["rows"],
                "seconds": sp["copy_seconds"],
                "customers/s": rate(sp["rows"], sp["copy_seconds"]),
                "peak MB": "",
            }
        )
    figures: dict[str, Any] = {
        "customers": customers,
        "scorecard_rows_per_s": round(sc_rate),
        "lightgbm_rows_per_s": round(gb_rate),
        "raw_predict_rows_per_s": round(raw_rate),
        "lightgbm_vs_raw_predict": round(gb_rate / raw_rate, 3) if raw_rate else None,
        "pandas_rows_per_s": round(pd_rate),
        "scorecard_vs_pandas": round(sc_rate / pd_rate, 2) if pd_rate else None,
        "pandas_agrees_with_engine": round(pd_["agree"], 4),
        "eligible_share": round(sc["eligible"] / sc["rows"], 4) if sc["rows"] else None,
        "peak_mb": round(max(sc["peak_mb"], gb["peak_mb"])),
        "hours_for_600m_scorecard": round(600e6 / sc_rate / 3600, 2) if sc_rate else None,
        "hours_for_600m_lightgbm": round(600e6 / gb_rate / 3600, 2) if gb_rate else None,
    }
    if sp is not None:
        figures["spark_rows_per_s"] = round(rate(sp["rows"], sp["seconds"]))
        figures["spark_startup_seconds"] = round(sp["startup"], 1)
        figures["spark_jvm_cpu_seconds"] = sp["jvm_cpu_seconds"]
        figures["spark_copy_jvm_cpu_seconds"] = sp["copy_jvm_cpu_seconds"]
        figures["spark_copy_rows_per_s"] = round(rate(sp["rows"], sp["copy_seconds"]))
        figures["spark_vs_copy"] = round(sp["copy_seconds"] / sp["seconds"], 3) if sp["seconds"] else None
    notes = {
        "targets": "scorecard >= 1.5M customers/s; LightGBM >= 80% of raw predict; Spark local[2] >= 300k/s; peak < 8 GiB",
        "pandas check": f"pandas and the engine agree on {pd_['agree']:.2%} of the sampled customers' outcomes",
        "600 million customers": f"about {figures['hours_for_600m_scorecard']} h (scorecard) and {figures['hours_for_600m_lightgbm']} h (LightGBM) per 2-core node at these rates",
    }
    return {"rows": rows, "figures": figures, "notes": notes}


if __name__ == "__main__":
    stage, raw = sys.argv[1], json.loads(sys.argv[2])
    work = Path(raw["work"])
    if stage == "prepare":
        res = _stage_prepare(work, raw["customers"], raw["seed"], raw["base"])
    elif stage == "local":
        res = _stage_local(work, raw["model"])
    elif stage == "pandas":
        res = _stage_pandas(work, raw["sample"])
    else:
        res = _stage_spark(work)
    sys.stdout.write(json.dumps(res, default=str) + "\n")
