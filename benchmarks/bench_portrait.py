"""Benchmark: build the customer portrait of a sandbox bank (``creditfactory bench portrait``).

Stages, each in its own process so that its peak memory is its own:

* ``generate`` and ``ingest`` — the sandbox bank (24 months of history to 2025-06-30) through the
  contract into a fresh lake (skipped with ``--lake``, which benchmarks an existing lake);
* ``baseline`` — a plain Polars scan and collect of every input table the portrait reads, one
  table at a time, with no computation: the I/O floor;
* ``portrait`` — ``portrait.build`` at the as-of date (every feature, published to the lake);
* ``targets`` — ``portrait.build_targets`` at the same date.

Target (2 cores): 1,000,000 customers in under 2 minutes, peak memory under 8 GiB.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage_generate(out: Path, customers: int, seed: int) -> dict[str, Any]:
    from creditfactory.sandbox import SandboxConfig, generate

    t0 = time.perf_counter()
    result = generate(SandboxConfig(customers=customers, seed=seed), out)
    return {"seconds": time.perf_counter() - t0, "rows": dict(result.rows), "peak_mb": _peak_mb()}


def _stage_ingest(out: Path, data_dir: Path) -> dict[str, Any]:
    from creditfactory.bootstrap import build
    from creditfactory.config import Settings
    from creditfactory.contract import IngestSettings, ingest_directory

    container = build(Settings(data_dir=data_dir))
    t0 = time.perf_counter()
    result = ingest_directory(
        directory=out,
        uow_factory=container.sessions,
        clock=container.clock,
        vault=container.vault,
        settings=IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir),
    )
    container.close()
    return {"seconds": time.perf_counter() - t0, "rejected": result.rejected, "peak_mb": _peak_mb()}


def _input_tables(lake: Path) -> dict[str, list[str]]:
    from creditfactory.contract import lake as contract_lake
    from creditfactory.portrait.plan import catalogue_plan

    return {t: [str(p) for p in contract_lake.files(lake, t)] for t in catalogue_plan().tables}


def _stage_baseline(lake: Path) -> dict[str, Any]:
    import polars as pl

    rows: dict[str, int] = {}
    t0 = time.perf_counter()
    for table, files in _input_tables(lake).items():
        if files:
            frame = pl.scan_parquet(files).collect()
            rows[table] = frame.height
            del frame
    return {"seconds": time.perf_counter() - t0, "rows": rows, "peak_mb": _peak_mb()}


def _stage_portrait(lake: Path, as_of: str, engine: str) -> dict[str, Any]:
    from creditfactory import portrait

    t0 = time.perf_counter()
    result = portrait.build(lake, as_of=date.fromisoformat(as_of), engine=engine)
    return {
        "seconds": time.perf_counter() - t0,
        "customers": result.rows,
        "features": result.features,
        "steps": {k: round(v, 2) for k, v in result.stage_seconds.items()},
        "peak_mb": _peak_mb(),
    }


def _stage_targets(lake: Path, as_of: str) -> dict[str, Any]:
    from creditfactory import portrait

    t0 = time.perf_counter()
    result = portrait.build_targets(lake, as_of=date.fromisoformat(as_of))
    return {"seconds": time.perf_counter() - t0, "customers": result.rows, "peak_mb": _peak_mb()}


def _child(stage: str, args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, stage, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark stage {stage} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(
    *,
    customers: int,
    seed: int,
    workdir: Path,
    keep: bool,
    lake: Path | None,
    as_of: str,
    engine: str,
    console: Any,
) -> dict[str, Any]:
    workdir = Path(workdir)
    setup: list[dict[str, Any]] = []
    if lake is None:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        out = workdir / "extracts"
        console.print(f"[bold]generate[/] {customers:,} customers (seed {seed}), 24 months …")
        gen = _child("generate", {"out": str(out), "customers": customers, "seed": seed})
        console.print(f"  {gen['seconds']:.1f} s")
        console.print("[bold]ingest[/] through the contract …")
        ing = _child("ingest", {"out": str(out), "data_dir": str(workdir / "var")})
        console.print(f"  {ing['seconds']:.1f} s")
        lake = workdir / "var" / "lake"
        setup = [
            {"stage": "setup: generate sandbox", "seconds": gen["seconds"], "peak MB": gen["peak_mb"]},
            {"stage": "setup: ingest", "seconds": ing["seconds"], "peak MB": ing["peak_mb"]},
        ]
    console.print("[bold]baseline[/] plain Polars scan + collect of the input tables …")
    base = _child("baseline", {"lake": str(lake)})
    console.print(f"  {base['seconds']:.1f} s")
    console.print(f"[bold]portrait[/] build at {as_of} ({engine}) …")
    built = _child("portrait", {"lake": str(lake), "as_of": as_of, "engine": engine})
    console.print(f"  {built['seconds']:.1f} s")
    console.print("[bold]targets[/] …")
    tgt = _child("targets", {"lake": str(lake), "as_of": as_of})
    console.print(f"  {tgt['seconds']:.1f} s")
    if not keep and setup:
        shutil.rmtree(workdir, ignore_errors=True)

    input_rows = sum(base["rows"].values())
    n = built["customers"]
    rows = [
        *[
            {"stage": s["stage"], "rows": "", "seconds": s["seconds"], "rows/s": "", "peak MB": s["peak MB"]}
            for s in setup
        ],
        {
            "stage": "baseline: scan + collect inputs",
            "rows": input_rows,
            "seconds": base["seconds"],
            "rows/s": input_rows / base["seconds"],
            "peak MB": base["peak_mb"],
        },
        {
            "stage": f"portrait ({built['features']} features)",
            "rows": input_rows,
            "seconds": built["seconds"],
            "rows/s": input_rows / built["seconds"],
            "peak MB": built["peak_mb"],
        },
        {
            "stage": "targets (bad_12m)",
            "rows": n,
            "seconds": tgt["seconds"],
            "rows/s": n / tgt["seconds"],
            "peak MB": tgt["peak_mb"],
        },
    ]
    for step, seconds in built["steps"].items():
        rows.append(
            {"stage": f"  portrait: {step}", "rows": "", "seconds": seconds, "rows/s": "", "peak MB": ""}
        )
    figures = {
        "customers": n,
        "features": built["features"],
        "engine": engine,
        "input_rows": input_rows,
        "portrait_seconds": round(built["seconds"], 2),
        "portrait_input_rows_per_s": round(input_rows / built["seconds"]),
        "portrait_customers_per_s": round(n / built["seconds"]),
        "portrait_peak_mb": round(built["peak_mb"]),
        "baseline_seconds": round(base["seconds"], 2),
        "baseline_rows_per_s": round(input_rows / base["seconds"]),
        "baseline_peak_mb": round(base["peak_mb"]),
        "portrait_vs_baseline": round(built["seconds"] / base["seconds"], 2),
        "targets_seconds": round(tgt["seconds"], 2),
        "projected_1m_seconds": round(built["seconds"] * 1_000_000 / n, 1) if n else None,
    }
    notes = {
        "target": "1,000,000 customers in under 120 s on 2 cores, peak memory under 8 GiB",
        "portrait vs baseline": f"{figures['portrait_vs_baseline']}x the time of a plain scan + collect",
        "projected for 1M customers (linear)": f"{figures['projected_1m_seconds']} s",
    }
    return {"rows": rows, "figures": figures, "notes": notes}


if __name__ == "__main__":
    stage, raw = sys.argv[1], json.loads(sys.argv[2])
    if stage == "generate":
        res = _stage_generate(Path(raw["out"]), raw["customers"], raw["seed"])
    elif stage == "ingest":
        res = _stage_ingest(Path(raw["out"]), Path(raw["data_dir"]))
    elif stage == "baseline":
        res = _stage_baseline(Path(raw["lake"]))
    elif stage == "portrait":
        res = _stage_portrait(Path(raw["lake"]), raw["as_of"], raw["engine"])
    else:
        res = _stage_targets(Path(raw["lake"]), raw["as_of"])
    sys.stdout.write(json.dumps(res) + "\n")
