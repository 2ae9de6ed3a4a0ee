"""Benchmark: the decision facts on a sandbox bank (``creditfactory bench facts``).

Stages, each in its own process so that its peak memory is its own:

* ``generate`` and ``ingest`` — the sandbox bank, ingested into SQLite and (when a server is
  given) into a scratch PostgreSQL database; skipped for generation with ``--sandbox``;
* ``graph`` — the relationship graph built in bulk from the lake, per database, beside a plain
  Polars scan and collect of the tables it reads (the I/O floor);
* ``truth`` — the graph against the planted fraud rings (members within N hops of the negative
  list or grouped with their ring, against everyone else);
* ``gather`` — per database: ``applications`` applications recorded first (seen table and
  graph, one commit each, spread over the 30 days before), then ``samples`` applications whose
  facts are gathered one at a time, timed each; the baseline is one indexed read of a customer
  (``contract.customer_home``) in the same process, the cost of a single round trip.

Targets: a few milliseconds per application on 2 cores with a 50,000-customer graph; the bulk
build of 1,000,000 customers projected linearly from the size measured.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

AT = datetime(2025, 7, 31, 4, 0, tzinfo=UTC)
BUSINESS_DATE = date(2025, 7, 31)
SCRATCH = "cf_bench_facts"  # the PostgreSQL database of a run, dropped after it unless kept
GRAPH_TABLES = ("customers", "devices", "contacts", "negative_list", "loans", "loan_performance")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _settings(data_dir: str, database_url: str | None) -> Any:
    from creditfactory.config import Settings

    return Settings(data_dir=Path(data_dir), database_url=database_url)


def _container(data_dir: str, database_url: str | None) -> Any:
    from creditfactory.bootstrap import build
    from creditfactory.clock import FixedClock

    return build(_settings(data_dir, database_url), clock=FixedClock(AT))


def _stage_generate(out: str, customers: int, seed: int) -> dict[str, Any]:
    from creditfactory.sandbox import SandboxConfig, generate

    t0 = time.perf_counter()
    generate(SandboxConfig(customers=customers, seed=seed, months=12), Path(out))
    return {"seconds": time.perf_counter() - t0, "peak_mb": _peak_mb()}


def _stage_ingest(out: str, data_dir: str, database_url: str | None) -> dict[str, Any]:
    from creditfactory.contract import IngestSettings, ingest_directory

    c = _container(data_dir, database_url)
    t0 = time.perf_counter()
    result = ingest_directory(
        directory=Path(out),
        uow_factory=c.sessions,
        clock=c.clock,
        vault=c.vault,
        settings=IngestSettings(lake=c.lake_dir, reject_root=c.reject_dir),
    )
    c.close()
    return {"seconds": time.perf_counter() - t0, "rejected": result.rejected, "peak_mb": _peak_mb()}


def _stage_graph(data_dir: str, database_url: str | None) -> dict[str, Any]:
    from creditfactory import contract, decisioning

    c = _container(data_dir, database_url)
    t0 = time.perf_counter()
    rows = 0
    for table in GRAPH_TABLES:
        frame = contract.scan(c.lake_dir, table).collect()
        rows += frame.height
        del frame
    baseline = time.perf_counter() - t0
    with c.uow() as uow:
        result = decisioning.build_graph(uow, lake=c.lake_dir, clock=c.clock)
        t1 = time.perf_counter()
        uow.commit()
        commit = time.perf_counter() - t1
    c.close()
    return {
        "seconds": result.seconds + commit,
        "stages": {**{k: round(v, 2) for k, v in result.stage_seconds.items()}, "commit": round(commit, 2)},
        "nodes": result.nodes,
        "edges": result.edges,
        "summary": result.summary,
        "input_rows": rows,
        "baseline_seconds": baseline,
        "peak_mb": _peak_mb(),
    }


def _stage_truth(data_dir: str, sandbox: str) -> dict[str, Any]:
    from creditfactory.cli.graph_truth import measure_rings

    c = _container(data_dir, None)
    t0 = time.perf_counter()
    measures = measure_rings(c, sandbox=Path(sandbox))
    c.close()
    return {"seconds": time.perf_counter() - t0, "measures": measures, "peak_mb": _peak_mb()}


def _people(lake: Path) -> tuple[list[dict[str, Any]], list[str]]:
    import polars as pl

    from creditfactory import contract

    customers = contract.scan(lake, "customers").select(
        "customer_id", "id_number_token", "phone_token", "lat", "lon"
    )
    devices = (
        contract.scan(lake, "devices")
        .select("customer_id", "fingerprint", "ip_address", "is_emulator", "is_rooted")
        .unique("customer_id", keep="first")
    )
    contacts = (
        contract.scan(lake, "contacts")
        .group_by("customer_id")
        .agg(pl.col("contact_phone_token").alias("contacts"))
    )
    frame = customers.join(devices, on="customer_id", how="left").join(contacts, on="customer_id", how="left")
    people = frame.collect().sort("customer_id").to_dicts()
    fingerprints = [p["fingerprint"] for p in people if p["fingerprint"]]
    return people, fingerprints


def _applicant(rng: random.Random, people: list[dict[str, Any]], fps: list[str], at: datetime, n: int) -> Any:
    from creditfactory.decisioning import Applicant, Contact

    if rng.random() < 0.8:
        p = people[rng.randrange(len(people))]
        near = rng.random() < 0.7 and p["lat"] is not None
        return Applicant(
            id_number_token=p["id_number_token"],
            phone_token=p["phone_token"],
            customer_id=p["customer_id"],
            applied_at=at,
            business_date=at.date(),
            device_fingerprint=p["fingerprint"],
            is_emulator=bool(p["is_emulator"]),
            is_rooted=bool(p["is_rooted"]),
            ip_address=p["ip_address"],
            lat=(p["lat"] + rng.uniform(-0.05, 0.05)) if near else None,
            lon=(p["lon"] + rng.uniform(-0.05, 0.05)) if near else None,
            declared_annual_income=Decimal(rng.randrange(20_000, 200_000)),
            contacts=tuple(Contact(t, "friend") for t in (p["contacts"] or [])),
        )
    # Someone the bank does not know, now and then on a device a customer uses.
    return Applicant(
        id_number_token=f"new-id-{n}",
        phone_token=f"new-phone-{n}",
        applied_at=at,
        business_date=at.date(),
        device_fingerprint=fps[rng.randrange(len(fps))] if rng.random() < 0.05 else f"new-fp-{n}",
        ip_address=f"10.{n % 250}.{(n // 250) % 250}.{rng.randrange(1, 250)}",
        lat=31.4 + rng.uniform(-0.3, 0.3),
        lon=116.9 + rng.uniform(-0.3, 0.3),
        declared_annual_income=Decimal(rng.randrange(20_000, 200_000)),
        contacts=(Contact(people[rng.randrange(len(people))]["phone_token"], "friend"),),
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _stage_gather(
    data_dir: str, database_url: str | None, applications: int, samples: int, seed: int
) -> dict[str, Any]:
    from creditfactory import contract, decisioning

    c = _container(data_dir, database_url)
    people, fps = _people(c.lake_dir)
    rng = random.Random(seed)
    row = {
        "as_of": date(2025, 6, 30),
        "payroll_avg_12m": 5200.0,
        "payroll_months_12m": 12,
        "annual_income_est": 80_000.0,
        "tax_revenue_12m": None,
        "tax_filings_12m": 0,
    }

    # Applications of the last 30 days: seen and in the graph, one transaction each.
    record_ms: list[float] = []
    for n in range(applications):
        at = AT - timedelta(seconds=rng.uniform(1, 30 * 86_400))
        app = _applicant(rng, people, fps, at, n)
        t0 = time.perf_counter()
        with c.uow() as uow:
            decisioning.record_seen(uow, applicant=app, application_ref=f"W{n}")
            decisioning.add_applicant(uow, applicant=app)
            if rng.random() < 0.15:
                decisioning.record_outcome(uow, application_ref=f"W{n}", outcome="decline", at=at)
            uow.commit()
        record_ms.append((time.perf_counter() - t0) * 1000)

    gather_ms: list[float] = []
    parts: dict[str, list[float]] = {}
    for n in range(samples):
        app = _applicant(rng, people, fps, AT + timedelta(seconds=n), applications + n)
        with c.uow() as uow:
            uow.session.connection()  # the decision's transaction is open already
            t0 = time.perf_counter()
            facts = decisioning.gather(uow, applicant=app, portrait_row=row if app.customer_id else None)
            gather_ms.append((time.perf_counter() - t0) * 1000)
            # A decision commits (it records the application); a rollback would also make psycopg
            # forget its prepared statements and PostgreSQL plan every statement again.
            uow.commit()
        for k, v in facts.timings_ms.items():
            parts.setdefault(k, []).append(v)

    base_ms: list[float] = []
    for _ in range(min(samples, 1000)):
        cid = people[rng.randrange(len(people))]["customer_id"]
        with c.uow() as uow:
            uow.session.connection()
            t0 = time.perf_counter()
            contract.customer_home(uow, customer_id=cid)
            base_ms.append((time.perf_counter() - t0) * 1000)
            uow.commit()
    dialect = c.engine.dialect.name
    c.close()
    return {
        "database": dialect,
        "gather_p50": statistics.median(gather_ms),
        "gather_p95": _pct(gather_ms, 0.95),
        "gather_p99": _pct(gather_ms, 0.99),
        "gather_mean": statistics.fmean(gather_ms),
        "parts_p50": {k: round(statistics.median(v), 3) for k, v in parts.items()},
        "record_p50": statistics.median(record_ms) if record_ms else None,
        "record_p99": _pct(record_ms, 0.99) if record_ms else None,
        "baseline_p50": statistics.median(base_ms),
        "samples": samples,
        "applications": applications,
        "peak_mb": _peak_mb(),
    }


def _child(stage: str, args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, stage, json.dumps(args)], stdout=subprocess.PIPE, text=True, check=False
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
    postgres_url: str | None,
    applications: int,
    samples: int,
    sandbox: Path | None,
    keep: bool,
    console: Any,
) -> dict[str, Any]:
    from creditfactory.cli.bench import drop_scratch_database, scratch_database

    workdir = Path(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    if sandbox is None:
        sandbox = workdir / "bank"
        console.print(f"[bold]generate[/] {customers:,} customers (seed {seed}), 12 months …")
        gen = _child("generate", {"out": str(sandbox), "customers": customers, "seed": seed})
        rows.append(
            {"stage": "setup: generate sandbox", "seconds": gen["seconds"], "peak MB": gen["peak_mb"]}
        )
    databases: dict[str, tuple[str, str | None]] = {"sqlite": (str(workdir / "sqlite"), None)}
    if postgres_url:
        try:
            databases["postgresql"] = (str(workdir / "pg"), scratch_database(postgres_url, SCRATCH))
        except Exception as exc:  # reported, not hidden
            console.print(f"PostgreSQL not used: {exc}")
    figures: dict[str, Any] = {"customers": customers}
    for db, (data_dir, url) in databases.items():
        console.print(f"[bold]{db}[/]: ingest …")
        ing = _child("ingest", {"out": str(sandbox), "data_dir": data_dir, "database_url": url})
        rows.append({"stage": f"setup: ingest ({db})", "seconds": ing["seconds"], "peak MB": ing["peak_mb"]})
        console.print(f"[bold]{db}[/]: graph in bulk …")
        g = _child("graph", {"data_dir": data_dir, "database_url": url})
        rows.append(
            {
                "stage": f"{db}: baseline scan + collect of the graph's tables",
                "seconds": g["baseline_seconds"],
                "peak MB": "",
                "note": f"{g['input_rows']:,} rows",
            }
        )
        rows.append(
            {
                "stage": f"{db}: graph build (bulk)",
                "seconds": g["seconds"],
                "peak MB": g["peak_mb"],
                "note": f"{g['nodes']:,} nodes, {g['edges']:,} edges; {g['stages']}",
            }
        )
        figures[f"{db}_graph_seconds"] = round(g["seconds"], 2)
        figures[f"{db}_graph_vs_baseline"] = round(g["seconds"] / g["baseline_seconds"], 1)
        figures[f"{db}_graph_projected_1m_seconds"] = round(g["seconds"] * 1_000_000 / customers, 1)
        figures[f"{db}_graph_stages"] = g["stages"]
        figures["graph_nodes"] = g["nodes"]
        figures["graph_edges"] = g["edges"]
        figures["graph_summary"] = g["summary"]
        if db == "sqlite":
            console.print("[bold]truth[/]: planted rings …")
            t = _child("truth", {"data_dir": data_dir, "sandbox": str(sandbox)})
            figures["truth"] = t["measures"]
        if samples <= 0:
            continue
        console.print(f"[bold]{db}[/]: {applications:,} applications recorded, {samples:,} gathered …")
        ga = _child(
            "gather",
            {
                "data_dir": data_dir,
                "database_url": url,
                "applications": applications,
                "samples": samples,
                "seed": seed,
            },
        )
        rows.append(
            {
                "stage": f"{db}: record an application (seen + graph + commit)",
                "seconds": "",
                "peak MB": "",
                "note": f"p50 {ga['record_p50']:.2f} ms, p99 {ga['record_p99']:.2f} ms",
            }
        )
        rows.append(
            {
                "stage": f"{db}: gather all facts of one application",
                "seconds": "",
                "peak MB": ga["peak_mb"],
                "note": f"p50 {ga['gather_p50']:.2f} ms, p95 {ga['gather_p95']:.2f}, p99 "
                f"{ga['gather_p99']:.2f}; baseline one indexed read p50 {ga['baseline_p50']:.3f} ms "
                f"({ga['gather_p50'] / ga['baseline_p50']:.0f}x)",
            }
        )
        for key in (
            "gather_p50",
            "gather_p95",
            "gather_p99",
            "gather_mean",
            "record_p50",
            "record_p99",
            "baseline_p50",
        ):
            figures[f"{db}_{key}_ms"] = round(ga[key], 3)
        figures[f"{db}_parts_p50_ms"] = ga["parts_p50"]
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
        if postgres_url and "postgresql" in databases:
            drop_scratch_database(postgres_url, SCRATCH)
    if "truth" in figures:
        m = figures["truth"]
        for who, part in (("ring members", m["labelled"]), ("everyone else", m["unlabelled"])):
            rows.append(
                {
                    "stage": f"truth: {who}",
                    "seconds": "",
                    "peak MB": "",
                    "note": f"{part['people']:,} people; within 1/2/4 hops "
                    f"{part['within_hops']['1']:.1%}/{part['within_hops']['2']:.1%}/{part['within_hops']['4']:.1%}; "
                    f"ring group {part['grouped_with_label']:.1%}; group>=3 {part['group_3_or_more']:.1%}",
                }
            )
    notes = {
        "target": "a few ms per application (p50/p99) on 2 cores; bulk build of 1M customers projected linearly",
        **{
            f"{db}: projected bulk build for 1M customers": f"{figures[f'{db}_graph_projected_1m_seconds']} s"
            for db in databases
        },
    }
    columns = ("stage", "seconds", "peak MB", "note")
    return {"rows": [{c: r.get(c, "") for c in columns} for r in rows], "figures": figures, "notes": notes}


if __name__ == "__main__":
    stage, raw = sys.argv[1], json.loads(sys.argv[2])
    if stage == "generate":
        res = _stage_generate(raw["out"], raw["customers"], raw["seed"])
    elif stage == "ingest":
        res = _stage_ingest(raw["out"], raw["data_dir"], raw["database_url"])
    elif stage == "graph":
        res = _stage_graph(raw["data_dir"], raw["database_url"])
    elif stage == "truth":
        res = _stage_truth(raw["data_dir"], raw["sandbox"])
    else:
        res = _stage_gather(
            raw["data_dir"], raw["database_url"], raw["applications"], raw["samples"], raw["seed"]
        )
    sys.stdout.write(json.dumps(res, default=str) + "\n")
