"""Benchmark: generate and ingest a sandbox bank (``creditfactory bench sandbox``).

Three stages, each in its own process so that its peak memory is its own:

* ``generate``  — the sandbox writes every extract table and the truth;
* ``baseline``  — a plain Polars read and write of the same ``account_flows`` files, with no
  checks: the I/O floor ingestion is compared against;
* ``ingest``    — ``creditfactory ingest`` of the extracts into a fresh SQLite database and lake.

Targets (2 cores): generation of 1M customers under 60 s; ingestion of at least 1M flow rows per
second; memory bounded by the batch size, not by the table size.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage_generate(out: Path, customers: int, seed: int) -> dict[str, Any]:
    from creditfactory.sandbox import SandboxConfig, generate

    t0 = time.perf_counter()
    result = generate(SandboxConfig(customers=customers, seed=seed), out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": dict(result.rows), "peak_mb": _peak_mb()}


def _stage_baseline(out: Path, scratch: Path) -> dict[str, Any]:
    import polars as pl

    parts = sorted((out / "extracts" / "account_flows").glob("*.parquet"))
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = 0
    for i, part in enumerate(parts):
        frame = pl.read_parquet(part)
        rows += frame.height
        frame.write_parquet(scratch / f"copy-{i:05d}.parquet")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rows, "peak_mb": _peak_mb()}


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
    seconds = time.perf_counter() - t0
    tables = {
        name: {"rows": t.rows_read, "seconds": t.seconds, "rejected": t.rejected}
        for name, t in result.tables.items()
    }
    return {"seconds": seconds, "tables": tables, "rejected": result.rejected, "peak_mb": _peak_mb()}


def _child(stage: str, args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, stage, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark stage {stage} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(*, customers: int, seed: int, workdir: Path, keep: bool, console: Any) -> dict[str, Any]:
    workdir = Path(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out = workdir / "extracts"
    console.print(f"[bold]generate[/] {customers:,} customers (seed {seed}) …")
    gen = _child("generate", {"out": str(out), "customers": customers, "seed": seed})
    console.print(f"  {gen['seconds']:.1f} s")
    console.print("[bold]baseline[/] plain Parquet read + write of account_flows …")
    base = _child("baseline", {"out": str(out), "scratch": str(workdir / "baseline")})
    console.print(f"  {base['seconds']:.1f} s")
    console.print("[bold]ingest[/] validate and load every table …")
    ing = _child("ingest", {"out": str(out), "data_dir": str(workdir / "var")})
    console.print(f"  {ing['seconds']:.1f} s")
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)

    gen_rows = sum(gen["rows"].values())
    flows = ing["tables"].get("account_flows", {"rows": 0, "seconds": 0.0})
    flow_rate = flows["rows"] / flows["seconds"] if flows["seconds"] else 0.0
    base_rate = base["rows"] / base["seconds"] if base["seconds"] else 0.0
    ing_rows = sum(t["rows"] for t in ing["tables"].values())
    rows = [
        {
            "stage": "generate (all tables)",
            "rows": gen_rows,
            "seconds": gen["seconds"],
            "rows/s": gen_rows / gen["seconds"],
            "peak MB": gen["peak_mb"],
        },
        {
            "stage": "baseline: read+write flows",
            "rows": base["rows"],
            "seconds": base["seconds"],
            "rows/s": base_rate,
            "peak MB": base["peak_mb"],
        },
        {
            "stage": "ingest (all tables)",
            "rows": ing_rows,
            "seconds": ing["seconds"],
            "rows/s": ing_rows / ing["seconds"],
            "peak MB": ing["peak_mb"],
        },
    ]
    for name, t in ing["tables"].items():
        rows.append(
            {
                "stage": f"  ingest {name}",
                "rows": t["rows"],
                "seconds": t["seconds"],
                "rows/s": t["rows"] / t["seconds"] if t["seconds"] else 0.0,
                "peak MB": "",
            }
        )
    figures = {
        "customers": customers,
        "generate_seconds": round(gen["seconds"], 2),
        "generate_rows": gen_rows,
        "generate_peak_mb": round(gen["peak_mb"]),
        "flow_rows": flows["rows"],
        "ingest_seconds": round(ing["seconds"], 2),
        "ingest_flow_rows_per_s": round(flow_rate),
        "baseline_flow_rows_per_s": round(base_rate),
        "ingest_vs_baseline": round(flow_rate / base_rate, 3) if base_rate else None,
        "ingest_peak_mb": round(ing["peak_mb"]),
        "rejected": ing["rejected"],
    }
    notes = {
        "targets": "generate 1M customers < 60 s; ingest >= 1,000,000 flow rows/s; memory bounded",
        "ingest vs baseline": f"{figures['ingest_vs_baseline']}x the rate of a plain Parquet read+write",
    }
    return {"rows": rows, "figures": figures, "notes": notes}


if __name__ == "__main__":
    stage, raw = sys.argv[1], json.loads(sys.argv[2])
    if stage == "generate":
        res = _stage_generate(Path(raw["out"]), raw["customers"], raw["seed"])
    elif stage == "baseline":
        res = _stage_baseline(Path(raw["out"]), Path(raw["scratch"]))
    else:
        res = _stage_ingest(Path(raw["out"]), Path(raw["data_dir"]))
    sys.stdout.write(json.dumps(res) + "\n")
