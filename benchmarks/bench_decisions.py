"""Benchmark: the application endpoint deciding the sandbox's applicants (``creditfactory bench decisions``).

Stages, each in its own process:

* ``generate`` — a sandbox bank (skipped with ``--sandbox``);
* ``setup`` — per database (SQLite, and PostgreSQL when reachable): the extracts ingested, the
  sample products defined, the relationship graph built, the decision strategy published (when
  the engine offers one), a whitelist mined with the shipped mining strategy and published, the
  sandbox's applicants drawn (``sandbox.applicants``: customers applying on their offer and
  customers without one, the planted rings in bursts) and their consents given;
* ``inproc`` — ``POST /v1/applications`` through httpx's ASGI transport in the benchmark's own
  process, one request at a time: the cost of a decision with nothing of the network; beside it,
  in the same process, ``GET /bench/ping`` the same way (one unit of work running ``SELECT 1``
  and committing: the floor of any request that touches the database) and the decision
  strategy evaluated alone on one row of facts (``plan.evaluate_one``); before the timed
  requests, a fifth of them (up to 100) counted for their Python function calls by library;
  after them, another fifth (up to 100) each followed by ``GET /v1/applications/{id}`` with
  the customer's token, as the app polls it (the read timed; the CPU of each pair, the
  database's included, beside a decision's alone);
* ``http`` — a uvicorn server on a loopback port (its own process) and a load generator of
  ``clients`` concurrent keep-alive connections sending the next applicants' requests, bounded
  in count (``requests``) and in time (``seconds``); beside it, ``GET /bench/ping`` under the
  same load (the HTTP floor). The generator writes prepared request bytes on asyncio streams
  and reads the answers by length, as wrk does: on the same two cores, a general HTTP client
  would take about a tenth of them from the server it measures.
  Then an open loop at each ``--rate`` on the next applicants (``_paced``): each request sent
  when it is due, its latency counted from then, as wrk2 does.

The decision records' own timings (facts, portrait, scoring, rules, persist, total) give the
stages of each decision; the rules stage is the strategy evaluation alone.

The machine's pace (``creditfactory.cli.bench.machine_pace_ms``) is taken before each timed
stage as well as before and after the run: the cores are shared, and one run's stages may go
at paces far apart.

Every request is a different customer (an application in progress blocks a second one), with a
bank-signed HS256 token (the way mobile banking calls), its own ``Idempotency-Key`` and full
persistence (the endpoint commits the application and its decision before it answers); the
rows written are counted afterwards.

Targets (2 cores): p99 under 50 ms and at least 200 decisions per second over HTTP on
PostgreSQL; the strategy evaluation alone under 2 ms p99.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

#: The business date the benchmark runs on: the day after the sandbox's history.
BUSINESS_DAY = date(2025, 7, 1)
SECRET = "bench-mobile-bank-shared-secret-0123456789-0123456789-abcdefgh"
ISSUER, AUDIENCE = "mobile-bank", "creditfactory"
SCRATCH = "cf_bench_decisions"  # the PostgreSQL database of a run, dropped after it unless kept


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _env(data_dir: str, database_url: str | None) -> dict[str, str]:
    """The settings of both the benchmark's containers and the server, as environment variables."""
    env = {
        "CREDITFACTORY_DATA_DIR": data_dir,
        "CREDITFACTORY_SECURITY__BANK_TOKEN__ALGORITHM": "HS256",
        "CREDITFACTORY_SECURITY__BANK_TOKEN__KEY": SECRET,
        "CREDITFACTORY_SECURITY__BANK_TOKEN__ISSUER": ISSUER,
        "CREDITFACTORY_SECURITY__BANK_TOKEN__AUDIENCE": AUDIENCE,
        "CREDITFACTORY_SECURITY__BANK_TOKEN__CUSTOMER_CLAIM": "cif",
        "CREDITFACTORY_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["CREDITFACTORY_DATABASE_URL"] = database_url
    return env


def _container(data_dir: str, database_url: str | None) -> Any:
    from creditfactory.bootstrap import build
    from creditfactory.config import Settings

    os.environ.update(_env(data_dir, database_url))
    return build(Settings())


def _stage_generate(out: str, customers: int, seed: int) -> dict[str, Any]:
    from creditfactory.sandbox import SandboxConfig, generate

    t0 = time.perf_counter()
    generate(SandboxConfig(customers=customers, seed=seed, months=6), Path(out))
    return {"seconds": time.perf_counter() - t0, "peak_mb": _peak_mb()}


#: The offers of the whitelist mined at set-up (customer id, limit in fen, version), beside the
#: database's data: every stage draws the same applicants from them.
OFFERS_FILE = "bench_offers.parquet"


def applicants_frame(sandbox: str, seed: int, data_dir: str | None = None) -> Any:
    """The stream the benchmark sends: most customers apply (a dense stream), rings included;
    the customers of the whitelist mined at set-up (``data_dir``'s offers) reached by their offer
    and applying on it, the others without one."""
    import polars as pl

    from creditfactory.sandbox.applicants import ApplicantSettings, generate_applicants

    offers_path = Path(data_dir) / OFFERS_FILE if data_dir else None
    offers = pl.read_parquet(offers_path) if offers_path is not None and offers_path.exists() else None
    return generate_applicants(
        Path(sandbox),
        offers=offers,
        settings=ApplicantSettings(seed=seed, existing_rate=0.5, ring_rate=1.0, start=BUSINESS_DAY, days=1),
    )


AS_OF = date(2025, 6, 30)
MODEL = "bench_scorecard"


def _train(c: Any, sandbox: str) -> dict[str, Any]:
    """One approved scorecard for every segment, trained on the current portrait with the
    sandbox's realised defaults as the label (a shortcut of the benchmark: a 6-month history
    has no development window; the scoring cost is the same)."""
    import polars as pl

    from creditfactory import modeling, portrait
    from creditfactory.sandbox import measure

    truth = measure.truth(Path(sandbox)).select("customer_id", pl.col("bad_12m").cast(pl.Int64).alias("bad"))
    dev = portrait.read(c.lake_dir, as_of=AS_OF).collect().join(truth, on="customer_id")
    with c.uow() as uow:
        result = modeling.train_and_register(
            uow,
            models_dir=c.models_dir,
            name=MODEL,
            kind="scorecard",
            segment=None,
            dev=dev,
            oot=None,
            target="bad",
            features=None,
            trained_by="S-BENCH",
            seed=1,
            clock=c.clock,
            exclude=modeling.portrait_exclusions(dev, target="bad"),
            params={"max_features": 12, "C": 0.5},
        )
        uow.commit()
    with c.uow() as uow:
        modeling.approve_version(
            uow,
            models_dir=c.models_dir,
            name=MODEL,
            version=result.version,
            approved_by="S-BENCH-HEAD",
            clock=c.clock,
            schema=portrait.schema(c.lake_dir, as_of=AS_OF),
        )
        uow.commit()
    return {"model": MODEL, "version": result.version}


#: The scorecards the shipped example strategies name, one per segment.
_EXAMPLE_MODELS = (
    "farmer_scorecard",
    "merchant_scorecard",
    "salaried_scorecard",
    "general_scorecard",
    "other_scorecard",
)


def _on_bench_model(c: Any, example: str) -> Path:
    """The shipped example strategy ``example`` with every segment scored by the benchmark's
    scorecard, written under the data folder; its path."""
    from creditfactory import strategy

    text = strategy.example_path(example).read_text(encoding="utf-8")
    for name in _EXAMPLE_MODELS:
        text = text.replace(name, MODEL)
    path = c.data_dir / "strategies" / example
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _publish_strategy(c: Any) -> str:
    """The shipped decision strategy with every segment scored by the benchmark's scorecard,
    published as champion."""
    from creditfactory import decisioning

    path = _on_bench_model(c, "decision.yaml")
    with c.uow() as uow:
        published = decisioning.publish_strategy(
            uow, path=path, clock=c.clock, actor="S-BENCH", lake=c.lake_dir
        )
        uow.commit()
    return published.label


def _mine_whitelist(c: Any) -> dict[str, Any]:
    """The shipped mining strategy with every segment scored by the benchmark's scorecard,
    mined over the portrait and published; its offers written beside the data for the stages."""
    import polars as pl

    from creditfactory import whitelist
    from creditfactory.whitelist import mining

    path = _on_bench_model(c, "mining.yaml")
    mined = mining.mine(
        c.uow,
        lake=c.lake_dir,
        models_dir=c.models_dir,
        strategy_path=path,
        as_of=AS_OF,
        business_date=BUSINESS_DAY,
        created_by="S-BENCH",
        now=c.clock.now(),
    )
    offers = (
        whitelist.read_lines(c.lake_dir, mined.version_id)
        .filter(pl.col("limit_fen").is_not_null())
        .select("customer_id", "limit_fen", pl.lit(mined.version_id).alias("version_id"))
        .collect()
    )
    offers.write_parquet(c.data_dir / OFFERS_FILE)
    return {"version_id": mined.version_id, "eligible": mined.eligible, "offers": offers.height}


def _stage_setup(sandbox: str, data_dir: str, database_url: str | None, seed: int) -> dict[str, Any]:
    from creditfactory import decisioning, portrait
    from creditfactory.contract import IngestSettings, ingest_directory
    from creditfactory.jobs import open_business_date
    from creditfactory.origination import REQUIRED_CONSENTS, consents
    from creditfactory.servicing import service as servicing
    from creditfactory.servicing.model import load_products, sample_products_dir

    c = _container(data_dir, database_url)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    result = ingest_directory(
        directory=Path(sandbox),
        uow_factory=c.sessions,
        clock=c.clock,
        vault=c.vault,
        settings=IngestSettings(lake=c.lake_dir, reject_root=c.reject_dir),
    )
    out["ingest_seconds"] = time.perf_counter() - t0
    out["rejected"] = result.rejected
    with c.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            servicing.define_product(uow.session, product, clock=c.clock)
        # the bank's business date: the day after the sandbox's history, when the offers are live
        open_business_date(uow.session, on=BUSINESS_DAY, clock=c.clock)
        uow.commit()
    t0 = time.perf_counter()
    portrait.build(c.lake_dir, as_of=AS_OF)
    out["portrait_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with c.uow() as uow:
        decisioning.build_graph(uow, lake=c.lake_dir, clock=c.clock)
        uow.commit()
    out["graph_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["model"] = _train(c, sandbox)
    out["train_seconds"] = time.perf_counter() - t0
    out["strategy"] = _publish_strategy(c)
    t0 = time.perf_counter()
    out["whitelist"] = _mine_whitelist(c)
    out["mine_seconds"] = time.perf_counter() - t0
    stream = applicants_frame(sandbox, seed, data_dir)
    customers = stream.requests["customer_id"].to_list()
    t0 = time.perf_counter()
    now = c.clock.now()
    texts = {k: consents.consent_text(k, language="zh") for k in REQUIRED_CONSENTS}
    for start in range(0, len(customers), 500):
        with c.uow() as uow:
            for cid in customers[start : start + 500]:
                for kind, text in texts.items():
                    consents.give_consent(
                        uow,
                        customer_id=cid,
                        kind=kind,
                        version=text.version,
                        language="zh",
                        text_sha256=text.sha256,
                        channel="app",
                        actor=f"cust-{cid}",
                        business_date=BUSINESS_DAY,
                        now=now,
                    )
            uow.commit()
    out["consent_seconds"] = time.perf_counter() - t0
    out["applicants"] = stream.counts()
    out["peak_mb"] = _peak_mb()
    c.close()
    return out


# ------------------------------------------------------------------------------ requests


def _prepared(
    sandbox: str, seed: int, data_dir: str, lo: int, hi: int
) -> list[tuple[str, dict[str, str], bytes]]:
    """``(customer_id, headers, body)`` of requests ``lo..hi`` of the stream, tokens signed."""
    import jwt

    from creditfactory.sandbox.applicants import request_bodies

    stream = applicants_frame(sandbox, seed, data_dir)
    exp = int((datetime.now(UTC) + timedelta(hours=2)).timestamp())
    out = []
    for _, body in request_bodies(stream.requests.slice(lo, hi - lo)):
        cid = body["customer_id"]
        token = jwt.encode(
            {"sub": f"mb-{cid}", "cif": cid, "iss": ISSUER, "aud": AUDIENCE, "exp": exp},
            SECRET,
            algorithm="HS256",
        )
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        out.append((cid, headers, json.dumps(body, ensure_ascii=False).encode()))
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(
    ms: list[float], seconds: float, statuses: dict[str, int], outcomes: dict[str, int]
) -> dict[str, Any]:
    return {
        "requests": len(ms),
        "p50_ms": statistics.median(ms) if ms else float("nan"),
        "p95_ms": _pct(ms, 0.95),
        "p99_ms": _pct(ms, 0.99),
        "max_ms": max(ms) if ms else float("nan"),
        "per_second": len(ms) / seconds if seconds else float("nan"),
        "seconds": seconds,
        "statuses": statuses,
        "outcomes": outcomes,
    }


def _count(statuses: dict[str, int], outcomes: dict[str, int], status: int, payload: bytes) -> None:
    statuses[str(status)] = statuses.get(str(status), 0) + 1
    if status in (200, 201):
        try:
            got = json.loads(payload).get("status", "?")
        except ValueError:
            got = "?"
        outcomes[got] = outcomes.get(got, 0) + 1
    elif len(outcomes) < 50:
        try:
            code = json.loads(payload).get("code", "?")
        except ValueError:
            code = "?"
        outcomes[f"error:{code}"] = outcomes.get(f"error:{code}", 0) + 1


def _app(c: Any) -> Any:
    """The API, plus ``GET /bench/ping``: one unit of work that runs ``SELECT 1`` and commits,
    the floor of any request that touches the database."""
    from sqlalchemy import text

    from creditfactory.api import create_app

    app = create_app(c)

    def ping() -> dict[str, int]:
        with c.uow() as uow:
            uow.session.execute(text("SELECT 1"))
            uow.commit()
        return {"ok": 1}

    app.add_api_route("/bench/ping", ping, methods=["GET"])
    return app


def _last_decision(c: Any) -> int:
    from sqlalchemy import func, select

    from creditfactory.decisioning.records import decision_table

    with c.uow() as uow:
        return int(uow.session.scalar(select(func.max(decision_table.c.id))) or 0)


def _stages(c: Any, after: int) -> dict[str, dict[str, float]]:
    """p50 / p99 of each stage timed in the decision records written after decision ``after``."""
    from sqlalchemy import select

    from creditfactory.decisioning.records import decision_table

    with c.uow() as uow:
        rows = uow.session.execute(
            select(decision_table.c.timings, decision_table.c.total_ms).where(decision_table.c.id > after)
        ).all()
    parts: dict[str, list[float]] = {}
    for timings, total in rows:
        for k, v in json.loads(timings).items():
            parts.setdefault(k, []).append(float(v))
        parts.setdefault("total", []).append(float(total))
    return {k: {"p50": statistics.median(v), "p99": _pct(v, 0.99)} for k, v in sorted(parts.items())}


def _rows_written(c: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from creditfactory.origination.store import Application

    with c.uow() as uow:
        n = int(uow.session.scalar(select(func.count()).select_from(Application)) or 0)
        decided = int(
            uow.session.scalar(
                select(func.count()).select_from(Application).where(Application.decision_outcome.is_not(None))
            )
            or 0
        )
    return {"applications": n, "decided": decided}


def _strategy_alone(c: Any, after: int, limit: int = 2_000) -> dict[str, Any]:
    """The strategy evaluation alone, on the inputs stored with the decisions just made: the
    engine's ``evaluate`` (the plan, then the product's and the offer's bounds) on the row the
    decision evaluated; its baseline is the raw one-row evaluation of the plan
    (``plan.evaluate_one``) on the same rows."""
    from sqlalchemy import select

    from creditfactory import decisioning
    from creditfactory.decisioning.evaluate import Terms, evaluate, evaluation_row
    from creditfactory.decisioning.records import decision_table

    with c.uow() as uow:
        rows = uow.session.execute(
            select(
                decision_table.c.inputs,
                decision_table.c.score,
                decision_table.c.pd,
                decision_table.c.strategy_id,
            )
            .where(decision_table.c.id > after)
            .order_by(decision_table.c.id)
            .limit(limit)
        ).all()
        strategies = {s.id: s for s in decisioning.list_strategies(uow)}
    engine = decisioning.DecisionEngine(lake=c.lake_dir, models_dir=c.models_dir)
    cases = []
    for inputs, score, pd, sid in rows:
        data = json.loads(inputs)
        plan = engine.plan(strategies[sid])
        portrait_row = data["portrait"]["row"]
        row = evaluation_row(
            plan,
            portrait_row=portrait_row,
            facts=data["facts"],
            fields=data["fields"],
            scores={"score": score, "pd": pd},
        )
        cases.append((plan, row, Terms.from_json(data["terms"])))
    out: dict[str, Any] = {"calls": len(cases)}
    if not cases:
        return out
    gc.collect()
    gc.freeze()
    for what, fn in (
        ("strategy", lambda plan, row, terms: evaluate(plan, row, terms=terms)),
        ("baseline", lambda plan, row, terms: plan.evaluate_one(row)),
    ):
        for case in cases[:50]:
            fn(*case)
        ms = []
        for case in cases:
            t0 = time.perf_counter()
            fn(*case)
            ms.append((time.perf_counter() - t0) * 1000)
        out[f"{what}_p50_ms"] = statistics.median(ms)
        out[f"{what}_p99_ms"] = _pct(ms, 0.99)
    gc.unfreeze()
    return out


#: Where a Python function's code lives, by the first matching part of its file's path.
_CALL_GROUPS = (
    ("sqlalchemy/orm/", "sqlalchemy_orm"),
    ("sqlalchemy/", "sqlalchemy_core"),
    ("psycopg", "psycopg"),
    ("fastapi/", "web"),
    ("starlette/", "web"),
    ("anyio/", "web"),
    ("pydantic", "web"),
    ("jwt/", "jwt"),
    ("httpx/", "client"),
    ("httpcore/", "client"),
    ("creditfactory/", "creditfactory"),
)


def _calls_per_decision(
    app: Any, warm: list[tuple[str, dict[str, str], bytes]], sent: list[tuple[str, dict[str, str], bytes]]
) -> dict[str, float]:
    """Python function calls a decision, in process, by where the function lives: counted with
    a profile hook on the event loop and on the thread pool's threads (started after the hook is
    set), so the figure does not move with the machine's pace as times do. ``warm`` requests
    first, not counted."""
    import threading
    from collections import Counter

    import httpx

    counts: Counter[str] = Counter()
    groups: dict[str, str] = {}
    answered: dict[int, int] = {}
    on = False

    def hook(frame: Any, event: str, _arg: Any) -> None:
        if on and event == "call":
            path = frame.f_code.co_filename
            group = groups.get(path)
            if group is None:
                group = next((g for part, g in _CALL_GROUPS if part in path), "other")
                groups[path] = group
            counts[group] += 1

    async def go() -> None:
        nonlocal on
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            for _, headers, body in warm:  # imports, first plans, the model loaded
                await client.post("/v1/applications", headers=headers, content=body)
            on = True
            for _, headers, body in sent:
                r = await client.post("/v1/applications", headers=headers, content=body)
                answered[r.status_code] = answered.get(r.status_code, 0) + 1
            on = False

    threading.setprofile(hook)  # the loop's thread pool starts its threads with it
    sys.setprofile(hook)
    try:
        asyncio.run(go())
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    n = max(len(sent), 1)
    out = {group: round(v / n, 1) for group, v in sorted(counts.items())}
    out["total"] = round(sum(counts.values()) / n, 1)
    out["server"] = round(out["total"] - out.get("client", 0.0), 1)
    out["decisions"] = answered.get(201, 0)  # the others answered otherwise (counted, not hidden)
    out["requests"] = len(sent)
    return out


def _stage_inproc(
    sandbox: str, data_dir: str, database_url: str | None, seed: int, count: int
) -> dict[str, Any]:
    import httpx

    c = _container(data_dir, database_url)
    app = _app(c)
    probe = _DatabaseCpu(c.engine.url)
    prepared = _prepared(sandbox, seed, data_dir, 0, count)
    counted = min(100, count // 5)
    calls = _calls_per_decision(app, prepared[:5], prepared[5 : 5 + counted])
    follow = min(100, count // 5, max(0, count - 5 - counted))
    timed = prepared[5 + counted : count - follow]  # each customer applies once
    followed_by_a_read = prepared[count - follow :]
    before = _last_decision(c)

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            nonlocal before
            before = _last_decision(c)
            gc.collect()
            gc.freeze()
            ms: list[float] = []
            statuses: dict[str, int] = {}
            outcomes: dict[str, int] = {}
            db_before = probe.read()
            t_all, cpu = time.perf_counter(), time.process_time()
            for _, headers, body in timed:
                t0 = time.perf_counter()
                r = await client.post("/v1/applications", headers=headers, content=body)
                ms.append((time.perf_counter() - t0) * 1000)
                _count(statuses, outcomes, r.status_code, r.content)
            decided = _summary(ms, time.perf_counter() - t_all, statuses, outcomes)
            decided["cpu_ms"] = 1000 * (time.process_time() - cpu) / max(len(ms), 1)
            db_cpu = _cpu_since(db_before, probe.read())
            if db_cpu is not None:
                decided["database_cpu_ms"] = 1000 * db_cpu / max(len(ms), 1)
            # Then each customer follows their application: its decision, then a GET of it with
            # the same token, as the app polls it (the read's cost, and what it leaves behind for
            # the next decision on its connection).
            reads: list[float] = []
            read_statuses: dict[str, int] = {}
            read_outcomes: dict[str, int] = {}
            db_before = probe.read()
            cpu = time.process_time()
            for _, headers, body in followed_by_a_read:
                r = await client.post("/v1/applications", headers=headers, content=body)
                _count(read_statuses, read_outcomes, r.status_code, r.content)
                if r.status_code != 201:
                    continue
                t0 = time.perf_counter()
                got = await client.get(
                    f"/v1/applications/{r.json()['id']}", headers={"Authorization": headers["Authorization"]}
                )
                reads.append((time.perf_counter() - t0) * 1000)
                key = f"GET {got.status_code}"
                read_statuses[key] = read_statuses.get(key, 0) + 1
            pairs = max(len(reads), 1)  # the decisions that were followed by a read
            followed = _summary(reads, sum(reads) / 1000, read_statuses, read_outcomes)  # GETs a second
            followed["pair_cpu_ms"] = 1000 * (time.process_time() - cpu) / pairs
            db_cpu = _cpu_since(db_before, probe.read())
            if db_cpu is not None:
                followed["pair_database_cpu_ms"] = 1000 * db_cpu / pairs
            floor: list[float] = []
            t_all = time.perf_counter()
            for _ in range(min(len(ms), 500)):
                t0 = time.perf_counter()
                await client.get("/bench/ping")
                floor.append((time.perf_counter() - t0) * 1000)
            floor_summary = _summary(floor, time.perf_counter() - t_all, {}, {})
            return decided, followed, floor_summary

    decided, followed, floor_summary = asyncio.run(go())
    probe.close()
    alone = _strategy_alone(c, before)
    written = _rows_written(c)
    stages = _stages(c, before)
    dialect = c.engine.dialect.name
    c.close()
    return {
        "database": dialect,
        "calls": calls,
        "decided": decided,
        "followed": followed,
        "floor": floor_summary,
        "alone": alone,
        "stages": stages,
        "written": written,
        "load_average": os.getloadavg()[0],
        "peak_mb": _peak_mb(),
    }


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (Linux ``/proc``); ``None`` when it
    cannot be read (gone, or not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far (Linux ``/proc``)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    return sum(cpu for cpu in map(_process_cpu, pids) if cpu is not None)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


class _DatabaseCpu:
    """Readings of the CPU seconds of a PostgreSQL server on this machine, on a connection of
    their own (so that reading disturbs no pool the benchmark measures): every backend but the
    reading one, and the processes that ended (their time is their parent's, the postmaster's,
    once it has reaped them). :meth:`read` gives ``None`` for SQLite or a server whose
    processes cannot be read here."""

    def __init__(self, url: Any) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        self.conn: Any = None
        self.postmaster: int | None = None
        if url.get_backend_name() != "postgresql":
            return
        self.engine = create_engine(url, poolclass=NullPool)
        self.conn = self.engine.connect()
        self.mine = int(self.conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        mine = _stat(self.mine)
        self.postmaster = int(mine[1]) if mine else None
        self.conn.commit()

    def read(self) -> dict[int, float] | None:
        from sqlalchemy import text

        if self.conn is None or self.postmaster is None:
            return None
        pids = self.conn.execute(text("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"))
        out = {int(p): cpu for p in pids.scalars() if (cpu := _process_cpu(int(p))) is not None}
        self.conn.commit()
        parent = _stat(self.postmaster)
        if parent is None:
            return None
        # key 0: the ended children's time (cutime + cstime)
        out[0] = (int(parent[13]) + int(parent[14])) / os.sysconf("SC_CLK_TCK")
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.engine.dispose()


def _cpu_since(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds of the database's processes between two :meth:`_DatabaseCpu.read`: those
    alive at the second reading since the first (or since they started), plus those that ended
    meanwhile (the postmaster's children's time, less what the first reading had counted of
    them)."""
    if before is None or after is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")  # the readings are whole clock ticks: count in ticks, exactly

    def ticks(seconds: float) -> int:
        return round(seconds * tick)

    alive = sum(ticks(v) - ticks(before.get(pid, 0.0)) for pid, v in after.items() if pid)
    ended = (
        ticks(after[0])
        - ticks(before[0])
        - sum(ticks(v) for pid, v in before.items() if pid and pid not in after)
    )
    return (alive + max(ended, 0)) / tick


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def factory() -> Any:
    """The server's app (one per worker process), from the environment ``_env`` sets."""
    from creditfactory.api.asgi import settle, warm

    c = _container(os.environ["CREDITFACTORY_DATA_DIR"], os.environ.get("CREDITFACTORY_DATABASE_URL"))
    warm(c)  # as creditfactory serve does (serve_app), with the ping route added
    return settle(_app(c))


def _serve(port: int, workers: int) -> None:
    """The server, as ``creditfactory serve`` runs it: one process, or ``workers`` processes on
    ``SO_REUSEPORT`` sockets of their own."""
    import uvicorn

    from creditfactory.api.asgi import serve_processes

    here = str(Path(__file__).parent)
    if workers > 1:
        sys.exit(
            serve_processes(
                host="127.0.0.1",
                port=port,
                workers=workers,
                factory="bench_decisions:factory",
                app_dir=here,
                log_level="warning",
                access_log=False,
            )
        )
    sys.path.insert(0, here)
    uvicorn.run(
        "bench_decisions:factory",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


class _Stale(Exception):
    """A kept-alive connection the server had closed: the request is sent again on a new one."""


class _Connection:
    """One keep-alive HTTP/1.1 connection of the load generator: requests written as prepared
    bytes, responses read by ``Content-Length`` (or chunks). A lean client, as wrk or ab are, so
    that the generator takes as little as it can of the cores the server is measured on."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.answered = 0  # answers read on this connection
        self.closing = False  # the server said it closes the connection after its answer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial or not self.answered:
                raise
            raise _Stale from None  # closed by the server while idle: nothing was answered
        self.answered += 1
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                fields[name.strip().lower()] = value.strip()
        self.closing = fields.get(b"connection", b"").lower() == b"close"
        if b"content-length" in fields:
            return status, await self.reader.readexactly(int(fields[b"content-length"]))
        body = b""
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        return status, body

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def _raw(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


#: What sending a request can fail with: each counted by its name, never hidden.
_SEND_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError)


async def _send(
    conn: _Connection | None, raw: bytes, host: str, port: int
) -> tuple[_Connection, int, bytes, int]:
    """``raw`` sent on ``conn`` (a new connection when ``None``, and on a new one again when the
    server had closed it while idle): the connection, the answer's status and body, and how many
    connections were opened. On one of :data:`_SEND_ERRORS` the connection is closed first."""
    opened = 0
    try:
        if conn is None:
            conn = await _Connection.open(host, port)
            opened += 1
        try:
            status, payload = await asyncio.wait_for(conn.send(raw), timeout=30.0)
        except _Stale:  # closed while idle (after an error, say): once more, anew
            await conn.close()
            conn = await _Connection.open(host, port)
            opened += 1
            status, payload = await asyncio.wait_for(conn.send(raw), timeout=30.0)
    except _SEND_ERRORS:
        if conn is not None:
            await conn.close()
        raise
    return conn, status, payload, opened


async def _load(
    base: str,
    prepared: list[tuple[str, dict[str, str], bytes]],
    *,
    clients: int,
    seconds: float,
    path: str = "/v1/applications",
    method: str = "POST",
) -> dict[str, Any]:
    """``clients`` keep-alive connections sending ``prepared`` requests (each taken once) until
    none are left or ``seconds`` have passed; a connection that fails is counted and opened
    again, and so is one the server closed (``connections``: how many were opened in all; with
    several server processes, those past ``clients`` were mostly closed by a process over its
    share of them, see ``creditfactory.api.balance``)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    queue = [_raw(method, path, f"{host}:{port}", headers, body) for _, headers, body in reversed(prepared)]
    ms: list[float] = []
    statuses: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    opened = 0

    async def worker() -> None:
        nonlocal opened
        conn: _Connection | None = None
        while queue and time.perf_counter() < deadline:
            raw = queue.pop()
            t0 = time.perf_counter()
            try:
                conn, status, payload, new = await _send(conn, raw, host, int(port))
                opened += new
            except _SEND_ERRORS as exc:
                ms.append((time.perf_counter() - t0) * 1000)  # counted, not hidden
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                conn = None
                continue
            ms.append((time.perf_counter() - t0) * 1000)
            _count(statuses, outcomes, status, payload)
            if conn.closing:
                await conn.close()
                conn = None
        if conn is not None:
            await conn.close()

    t_all = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t_all
    return {**_summary(ms, wall, statuses, outcomes), "connections": opened}


async def _paced(
    base: str,
    prepared: list[tuple[str, dict[str, str], bytes]],
    *,
    rate: float,
    connections: int = 512,
    path: str = "/v1/applications",
    method: str = "POST",
) -> dict[str, Any]:
    """An open loop, as wrk2 drives a server: request ``i`` of ``prepared`` is due ``i / rate``
    seconds after the start whatever the answers before it, on an idle keep-alive connection or
    a new one (at most ``connections`` at once), and its latency counts from when it was due.
    A server that falls behind the rate therefore shows the wait it causes, which a closed loop
    of a few clients hides (coordinated omission): the latency of a decision at a given load."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    raws = [_raw(method, path, f"{host}:{port}", headers, body) for _, headers, body in prepared]
    ms: list[float] = []
    statuses: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    idle: list[_Connection] = []
    opened = 0
    lag: list[float] = []  # how late the generator itself sent each request
    gate = asyncio.Semaphore(connections)

    async def one(raw: bytes, due: float) -> None:
        nonlocal opened
        async with gate:
            lag.append((time.perf_counter() - due) * 1000)
            try:
                conn, status, payload, new = await _send(idle.pop() if idle else None, raw, host, int(port))
            except _SEND_ERRORS as exc:
                ms.append((time.perf_counter() - due) * 1000)  # counted, not hidden
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                return
            opened += new
            ms.append((time.perf_counter() - due) * 1000)
            _count(statuses, outcomes, status, payload)
            if conn.closing:
                await conn.close()
            else:
                idle.append(conn)

    tasks = []
    start = time.perf_counter() + 0.01
    for i, raw in enumerate(raws):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(raw, due)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    for conn in idle:
        await conn.close()
    out = _summary(ms, wall, statuses, outcomes)
    out["offered_per_second"] = rate
    out["connections"] = opened
    out["send_lag_p99_ms"] = _pct(lag, 0.99)
    return out


def _stage_http(
    sandbox: str,
    data_dir: str,
    database_url: str | None,
    seed: int,
    offset: int,
    count: int,
    clients: int,
    seconds: float,
    workers: int,
    polars_threads: int | None,
    paced: Sequence[tuple[float, int]] = (),
) -> dict[str, Any]:
    """The closed loop of ``clients`` connections, then each open-loop ``(rate, count)`` of
    ``paced`` on the next applicants (after ``offset + count``), then the ping floor."""
    import httpx

    prepared = _prepared(sandbox, seed, data_dir, offset, offset + count)
    after = offset + count
    paced_requests = []
    for rate, n in paced:
        paced_requests.append((rate, _prepared(sandbox, seed, data_dir, after, after + n)))
        after += n
    port = _free_port()
    env = {**os.environ, **_env(data_dir, database_url)}
    if polars_threads:
        env["POLARS_MAX_THREADS"] = str(polars_threads)
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "serve",
            json.dumps({"port": port, "workers": workers}),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        warm = prepared[: 3 * clients]
        asyncio.run(_load(base, warm, clients=clients, seconds=seconds))
        c = _container(data_dir, database_url)
        before = _last_decision(c)
        probe = _DatabaseCpu(c.engine.url)
        db_before = probe.read()
        server_cpu, client_cpu = _cpu_seconds(server.pid), time.process_time()
        t_load = time.perf_counter()
        decided = asyncio.run(_load(base, prepared[3 * clients :], clients=clients, seconds=seconds))
        server_cpu, client_cpu = _cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
        wall = time.perf_counter() - t_load
        db_after = probe.read()
        n = max(decided["requests"], 1)
        decided["server_cpu_ms"] = 1000 * server_cpu / n
        decided["client_cpu_ms"] = 1000 * client_cpu / n
        decided["server_cores"] = server_cpu / wall
        decided["client_cores"] = client_cpu / wall
        db_cpu = _cpu_since(db_before, db_after)
        if db_cpu is not None:
            decided["database_cpu_ms"] = 1000 * db_cpu / n
            decided["database_cores"] = db_cpu / wall
        at_rates = []
        for rate, requests in paced_requests:
            if not requests:
                continue
            db_before = probe.read()
            server_cpu = _cpu_seconds(server.pid)
            t_load = time.perf_counter()
            at = asyncio.run(_paced(base, requests, rate=rate))
            wall = time.perf_counter() - t_load
            at["server_cores"] = (_cpu_seconds(server.pid) - server_cpu) / wall
            db_cpu = _cpu_since(db_before, probe.read())
            if db_cpu is not None:
                at["database_cores"] = db_cpu / wall
            at_rates.append(at)
        probe.close()
        c.close()
        floor_requests = [("", {}, b"")] * max(decided["requests"], 200)
        floor_summary = asyncio.run(
            _load(
                base,
                floor_requests,
                clients=clients,
                seconds=min(seconds, 10.0),
                path="/bench/ping",
                method="GET",
            )
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    c = _container(data_dir, database_url)
    written = _rows_written(c)
    stages = _stages(c, before)
    c.close()
    return {
        "decided": decided,
        "at_rates": at_rates,
        "floor": floor_summary,
        "written": written,
        "stages": stages,
        "clients": clients,
        "load_average": os.getloadavg()[0],
    }


# ------------------------------------------------------------------------------ driver


def _child(stage: str, args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, stage, json.dumps(args)], stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark stage {stage} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _row(stage: str, s: dict[str, Any], note: str = "") -> dict[str, Any]:
    return {
        "stage": stage,
        "requests": s["requests"],
        "p50 ms": round(s["p50_ms"], 2),
        "p95 ms": round(s["p95_ms"], 2),
        "p99 ms": round(s["p99_ms"], 2),
        "per s": round(s["per_second"], 1),
        "note": note,
    }


def _cpu_note(d: dict[str, Any]) -> str:
    """CPU a decision, and cores in use during the load, of the server, the database (when its
    processes could be read) and the load generator."""
    parts = [("server", "server"), ("database", "database"), ("load generator", "client")]
    shown = [
        f"{label} {d[f'{key}_cpu_ms']:.1f} ms ({d[f'{key}_cores']:.2f} cores)"
        for label, key in parts
        if f"{key}_cpu_ms" in d
    ]
    return "CPU a decision: " + ", ".join(shown)


def cpu_ceiling(d: dict[str, Any], *, cores: int, workers: int) -> float:
    """The most decisions a second the machine could answer at the CPU a decision measured over
    HTTP (``d``: the server's, the database's where it runs apart, the load generator's), were
    its ``cores`` busy with nothing else and never idle: the cores share all three, and no
    server process works on more than one core. A bound, not a forecast: a queue's waits grow
    long well before the cores are full."""
    all_in = d["server_cpu_ms"] + d.get("database_cpu_ms", 0.0) + d["client_cpu_ms"]
    return min(cores * 1000 / all_in, workers * 1000 / d["server_cpu_ms"])


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _outcomes(s: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(s["outcomes"].items()))


def run(
    *,
    customers: int,
    seed: int,
    inproc: int,
    requests: int,
    seconds: float,
    clients: int,
    workers: int,
    polars_threads: int | None,
    workdir: Path,
    rates: tuple[float, ...] = (),
    rate_seconds: float = 8.0,
    postgres_url: str | None,
    sandbox: Path | None,
    keep: bool,
    console: Any,
) -> dict[str, Any]:
    from creditfactory.cli.bench import drop_scratch_database, machine_pace_ms, scratch_database

    workdir = Path(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    sent_rates: list[float] = []  # the open loops that had applicants left to send
    if sandbox is None:
        sandbox = workdir / "bank"
        console.print(f"[bold]generate[/] {customers:,} customers (seed {seed}) …")
        _child("generate", {"out": str(sandbox), "customers": customers, "seed": seed})
    databases: dict[str, tuple[str, str | None]] = {"sqlite": (str(workdir / "sqlite"), None)}
    if postgres_url:
        try:
            databases["postgresql"] = (str(workdir / "pg"), scratch_database(postgres_url, SCRATCH))
        except Exception as exc:  # reported, not hidden
            console.print(f"PostgreSQL not used: {exc}")
    paces: dict[str, float] = {}  # the machine's pace before each stage that is timed
    ceilings: dict[str, str] = {}  # the most the cores could answer at the CPU a decision measured
    figures: dict[str, Any] = {
        "customers": customers,
        "clients": clients,
        "server_workers": workers,
        "polars_threads": polars_threads,
    }
    for db, (data_dir, url) in databases.items():
        console.print(f"[bold]{db}[/]: ingest, graph, strategy, consents …")
        st = _child(
            "setup", {"sandbox": str(sandbox), "data_dir": data_dir, "database_url": url, "seed": seed}
        )
        available = st["applicants"]["all"]
        figures["applicants"] = st["applicants"]
        figures["whitelist"] = st["whitelist"]
        figures["strategy"] = st["strategy"]
        n_in = min(inproc, available // 3)
        n_http = min(requests, available - n_in)
        left = available - n_in - n_http
        paced = []
        for rate in rates:
            n = min(int(rate * rate_seconds), left)
            left -= n
            paced.append((rate, n))
            if n and rate not in sent_rates:
                sent_rates.append(rate)
        console.print(f"[bold]{db}[/]: {n_in:,} decisions in process …")
        paces[f"{db} in process"] = figures[f"{db}_inproc_pace_ms"] = round(machine_pace_ms(), 2)
        ip = _child(
            "inproc",
            {"sandbox": str(sandbox), "data_dir": data_dir, "database_url": url, "seed": seed, "count": n_in},
        )
        rows.append(
            _row(
                f"{db}: in process, POST /v1/applications",
                ip["decided"],
                f"{_outcomes(ip['decided'])}; CPU {ip['decided']['cpu_ms']:.1f} ms a decision",
            )
        )
        fw = ip["followed"]
        if fw["requests"]:
            decision_db = ip["decided"].get("database_cpu_ms")
            rows.append(
                _row(
                    f"{db}: in process, a decision then GET /v1/applications/{{id}} (the GET timed)",
                    fw,
                    f"CPU a pair {fw['pair_cpu_ms']:.1f} ms (a decision alone "
                    f"{ip['decided']['cpu_ms']:.1f} ms)"
                    + (
                        f"; PostgreSQL's CPU a pair {fw['pair_database_cpu_ms']:.2f} ms "
                        f"(a decision alone {decision_db:.2f} ms)"
                        if "pair_database_cpu_ms" in fw and decision_db is not None
                        else ""
                    )
                    + f"; {', '.join(f'{k} {v}' for k, v in sorted(fw['statuses'].items()))}",
                )
            )
            for k in ("p50_ms", "p99_ms", "pair_cpu_ms", "pair_database_cpu_ms"):
                if k in fw:
                    figures[f"{db}_inproc_read_{k}"] = round(fw[k], 3)
            figures[f"{db}_inproc_read_statuses"] = fw["statuses"]
        if "database_cpu_ms" in ip["decided"]:
            figures[f"{db}_inproc_database_cpu_ms"] = round(ip["decided"]["database_cpu_ms"], 2)
        rows.append(_row(f"{db}: in process, baseline GET /bench/ping", ip["floor"]))
        calls = ip["calls"]
        rows.append(
            {
                "stage": f"{db}: in process, Python calls a decision (server)",
                "requests": calls["requests"],
                "p50 ms": "",
                "p95 ms": "",
                "p99 ms": "",
                "per s": "",
                "note": f"{calls['server']:,.0f} calls: "
                + ", ".join(
                    f"{label} {calls.get(key, 0.0):,.0f}"
                    for key, label in (
                        ("sqlalchemy_orm", "SQLAlchemy ORM"),
                        ("sqlalchemy_core", "SQLAlchemy Core"),
                        ("psycopg", "psycopg"),
                        ("web", "FastAPI/Starlette/anyio/pydantic"),
                        ("jwt", "PyJWT"),
                        ("creditfactory", "creditfactory"),
                        ("other", "standard library and others"),
                    )
                )
                + f" ({calls['decisions']} of {calls['requests']} decided)",
            }
        )
        figures[f"{db}_inproc_calls_per_decision"] = calls
        console.print(
            f"[bold]{db}[/]: up to {n_http:,} decisions over HTTP, {clients} clients, {seconds:.0f} s …"
        )
        paces[f"{db} HTTP"] = figures[f"{db}_http_pace_ms"] = round(machine_pace_ms(), 2)
        hp = _child(
            "http",
            {
                "sandbox": str(sandbox),
                "data_dir": data_dir,
                "database_url": url,
                "seed": seed,
                "offset": n_in,
                "count": n_http,
                "clients": clients,
                "seconds": seconds,
                "workers": 1 if db == "sqlite" else workers,
                "polars_threads": polars_threads,
                "paced": paced,
            },
        )
        rows.append(
            _row(
                f"{db}: HTTP, POST /v1/applications",
                hp["decided"],
                f"{_outcomes(hp['decided'])}; {_cpu_note(hp['decided'])}; "
                f"{hp['decided']['connections']} connections for {clients} clients",
            )
        )
        for at in hp["at_rates"]:
            rate = at["offered_per_second"]
            rows.append(
                _row(
                    f"{db}: HTTP, open loop at {rate:g} a second (latency from when each was due)",
                    at,
                    f"{_outcomes(at)}; cores: server {at['server_cores']:.2f}"
                    + (f", database {at['database_cores']:.2f}" if "database_cores" in at else "")
                    + f"; {at['connections']} connections; generator lag p99 {at['send_lag_p99_ms']:.1f} ms",
                )
            )
            key = f"{db}_http_at_{rate:g}"
            for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "per_second", "server_cores", "database_cores"):
                if k in at:
                    figures[f"{key}_{k}"] = round(at[k], 3)
            figures[f"{key}_requests"] = at["requests"]
            figures[f"{key}_statuses"] = at["statuses"]
        rows.append(_row(f"{db}: HTTP, baseline GET /bench/ping", hp["floor"]))
        for mode, part in (("inproc", ip), ("http", hp)):
            d = part["decided"]
            for k in ("p50_ms", "p95_ms", "p99_ms", "per_second"):
                figures[f"{db}_{mode}_{k}"] = round(d[k], 3)
            figures[f"{db}_{mode}_outcomes"] = d["outcomes"]
            figures[f"{db}_{mode}_ping_p50_ms"] = round(part["floor"]["p50_ms"], 3)
            figures[f"{db}_{mode}_ping_per_second"] = round(part["floor"]["per_second"], 1)
            figures[f"{db}_{mode}_stages_ms"] = {
                k: {q: round(x, 3) for q, x in v.items()} for k, v in part["stages"].items()
            }
        figures[f"{db}_inproc_cpu_ms"] = round(ip["decided"]["cpu_ms"], 2)
        figures[f"{db}_http_server_cpu_ms"] = round(hp["decided"]["server_cpu_ms"], 2)
        figures[f"{db}_http_connections"] = hp["decided"]["connections"]
        figures[f"{db}_http_client_cpu_ms"] = round(hp["decided"]["client_cpu_ms"], 2)
        if "database_cpu_ms" in hp["decided"]:
            figures[f"{db}_http_database_cpu_ms"] = round(hp["decided"]["database_cpu_ms"], 2)
        served_by = 1 if db == "sqlite" else workers
        cores = _cores()
        ceiling = cpu_ceiling(hp["decided"], cores=cores, workers=served_by)
        figures[f"{db}_http_cpu_ceiling_per_second"] = round(ceiling, 1)
        processes = f"{served_by} server process" + ("es" if served_by > 1 else "")
        ceilings[db] = f"{db} {ceiling:.0f} a second ({cores} cores, {processes})"
        for who in ("server", "database", "client"):
            if f"{who}_cores" in hp["decided"]:
                figures[f"{db}_http_{who}_cores"] = round(hp["decided"][f"{who}_cores"], 2)
        figures[f"{db}_rows_written"] = hp["written"]
        figures[f"{db}_load_average"] = [round(ip["load_average"], 2), round(hp["load_average"], 2)]
        figures[f"{db}_setup"] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in st.items()}
        for mode, part in (("in process", ip), ("HTTP", hp)):
            stages = part["stages"]
            if stages:
                rows.append(
                    {
                        "stage": f"{db}: {mode}, stages of a decision (its record)",
                        "requests": "",
                        "p50 ms": round(stages["total"]["p50"], 2),
                        "p95 ms": "",
                        "p99 ms": round(stages["total"]["p99"], 2),
                        "per s": "",
                        "note": "p50/p99 "
                        + ", ".join(
                            f"{k} {v['p50']:.2f}/{v['p99']:.2f}"
                            for k, v in stages.items()
                            if k in ("facts", "portrait", "scoring", "rules", "persist")
                        ),
                    }
                )
        a = ip["alone"]
        if a.get("calls"):
            figures[f"{db}_strategy_alone_p50_ms"] = round(a["strategy_p50_ms"], 4)
            figures[f"{db}_strategy_alone_p99_ms"] = round(a["strategy_p99_ms"], 4)
            figures[f"{db}_strategy_baseline_p99_ms"] = round(a["baseline_p99_ms"], 4)
            rows.append(
                {
                    "stage": f"{db}: strategy evaluation alone (evaluate, one stored row)",
                    "requests": a["calls"],
                    "p50 ms": round(a["strategy_p50_ms"], 4),
                    "p95 ms": "",
                    "p99 ms": round(a["strategy_p99_ms"], 4),
                    "per s": "",
                    "note": f"baseline plan.evaluate_one on the same rows p50 {a['baseline_p50_ms']:.4f}, "
                    f"p99 {a['baseline_p99_ms']:.4f} ms",
                }
            )
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
        if postgres_url and "postgresql" in databases:
            drop_scratch_database(postgres_url, SCRATCH)
    notes = {
        "target": "over HTTP on PostgreSQL p99 < 50 ms and >= 200 decisions/s; strategy alone p99 < 2 ms (2 cores)",
        "load": f"{clients} concurrent keep-alive clients in one process beside the server: one process on "
        f"SQLite (one writer at a time), {workers} on PostgreSQL (SO_REUSEPORT, as creditfactory serve --workers)"
        + (f" (POLARS_MAX_THREADS={polars_threads})" if polars_threads else "")
        + ", "
        f"bounded by {requests:,} requests and {seconds:.0f} s"
        + (
            f"; then an open loop at {', '.join(f'{r:g}' for r in sent_rates)} a second "
            f"for up to {rate_seconds:g} s each, on applicants not sent before"
            if sent_rates
            else ""
        ),
        "pace before each stage": ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in paces.items())
        + " (lower is faster; see machine pace below)",
    }
    if ceilings:
        notes["CPU ceiling over HTTP"] = (
            "; ".join(ceilings.values()) + ": the most the cores could answer at the CPU a decision "
            "measured (server, database and load generator), busy with nothing else and never idle"
        )
    return {"rows": rows, "figures": figures, "notes": notes}


if __name__ == "__main__":
    stage, raw = sys.argv[1], json.loads(sys.argv[2])
    if stage == "serve":
        _serve(raw["port"], raw["workers"])
        sys.exit(0)
    if stage == "generate":
        res = _stage_generate(raw["out"], raw["customers"], raw["seed"])
    elif stage == "setup":
        res = _stage_setup(raw["sandbox"], raw["data_dir"], raw["database_url"], raw["seed"])
    elif stage == "inproc":
        res = _stage_inproc(raw["sandbox"], raw["data_dir"], raw["database_url"], raw["seed"], raw["count"])
    else:
        res = _stage_http(
            raw["sandbox"],
            raw["data_dir"],
            raw["database_url"],
            raw["seed"],
            raw["offset"],
            raw["count"],
            raw["clients"],
            raw["seconds"],
            raw["workers"],
            raw["polars_threads"],
            [tuple(p) for p in raw.get("paced", [])],
        )
    sys.stdout.write(json.dumps(res, default=str) + "\n")
