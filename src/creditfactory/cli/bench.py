"""``creditfactory bench NAME``: performance benchmarks with figures and ratios.

Each benchmark lives in ``benchmarks/bench_<name>.py`` at the project root and exposes
``run(**options, progress=callable) -> dict``: a list of measured rows (``rows``) and headline
figures (``figures``). The command prints a readable table and ends with one JSON line.

Every benchmark also reports the machine's pace before and after it (:func:`machine_pace_ms`,
``pace_ms`` in the JSON line): the same code can run at twice the speed in one hour as in
another (README, Benchmarks), and two runs' figures compare only as far as their paces agree.
And it names the Python that ran it (:func:`interpreter`, ``python`` in the JSON line): two
builds of the same Python version ran the pace's work in 5.9-6.4 and 8.1-9.3 ms on one machine.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, state

app = typer.Typer(
    help="Benchmarks: figures and ratios against a baseline run in the same process.", no_args_is_help=True
)

BENCH_DIR = Path(__file__).resolve().parents[3] / "benchmarks"


#: A document of the kind a request encodes and decodes: names, amounts, counts, flags.
_PACE_DOC = {f"feature_{i:03d}": [i * 0.37, i, f"value {i}", i % 3 == 0] for i in range(300)}


def _pace_work() -> int:
    """A fixed piece of pure-Python work, about what a few requests do between their database
    calls: JSON written with sorted keys and read back, small dictionaries made and read."""
    n = 0
    for _ in range(10):
        n += len(json.loads(json.dumps(_PACE_DOC, sort_keys=True)))
    rows = [{"id": i, "amount": i * 1.5, "name": str(i)} for i in range(20_000)]
    return n + sum(r["id"] for r in rows if r["amount"] > 10.0)


def machine_pace_ms(*, repeat: int = 5, work: Callable[[], object] = _pace_work) -> float:
    """The machine's pace now: the shortest of ``repeat`` runs of ``work`` (by default a fixed
    piece of pure-Python work of some 8 to 20 ms), in milliseconds; lower is faster. The
    shortest, as ``timeit`` advises: a longer run measures what else the machine was doing
    meanwhile. One untimed run goes first: the first in a process also pays for the memory it
    takes the first time (16.1 ms against 8.2 to 14.6 for the next three, once)."""
    work()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def interpreter() -> dict[str, str]:
    """The Python running this process: its version, its build (as ``sys.version`` gives it) and
    the interpreter a virtualenv's ``python`` leads to. Builds differ: on 2026-12-04, Debian's
    CPython 3.11.2 (built with profile-guided and link-time optimisation) ran the pace's work in
    5.9 to 6.4 ms while a pyenv build of 3.11.7 with its default options took 8.1 to 9.3 ms."""
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "build": sys.version.partition(" ")[2].replace("\n", " "),
        "executable": os.path.realpath(sys.executable),
    }


def scratch_database(base_url: str, name: str) -> str:
    """A new, empty PostgreSQL database ``name`` on the server ``base_url`` names (one left by an
    earlier run dropped first), and its URL: a benchmark's scratch database. The benchmark drops
    it with :func:`drop_scratch_database` when it ends, as it removes its scratch files."""
    from sqlalchemy.engine import make_url

    drop_scratch_database(base_url, name)
    _admin(base_url, f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_scratch_database(base_url: str, name: str) -> None:
    """Drop the scratch database ``name`` (:func:`scratch_database`), its sessions ended first,
    from the database ``base_url`` names: a database cannot be dropped from itself."""
    _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(base_url: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


_PACE_BEFORE = "creditfactory.bench.pace_before_ms"


def _start(ctx: typer.Context, name: str) -> ModuleType:
    """The benchmark ``name`` loaded, the machine's pace taken first (reported by :func:`report`)."""
    ctx.meta[_PACE_BEFORE] = machine_pace_ms()
    return _load(name)


def _load(name: str) -> ModuleType:
    path = BENCH_DIR / f"bench_{name}.py"
    if not path.exists():
        known = sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))
        raise typer.BadParameter(
            f"no benchmark {name!r} in {BENCH_DIR} (known: {', '.join(known) or 'none'})"
        )
    spec = importlib.util.spec_from_file_location(f"benchmarks.bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def report(ctx: typer.Context, title: str, result: dict[str, Any], *, json_out: bool) -> None:
    st = state(ctx)
    rows: list[dict[str, Any]] = result["rows"]
    table = RichTable(title=title, title_justify="left")
    columns = list(rows[0]) if rows else []
    for col in columns:
        table.add_column(
            col,
            justify="left" if col in ("stage", "what", "table", "dataset", "pipeline", "note") else "right",
        )
    for row in rows:
        table.add_row(
            *[
                f"{v:,.0f}"
                if isinstance(v, int | float) and abs(v) >= 100
                else (f"{v:.2f}" if isinstance(v, float) else str(v))
                for v in row.values()
            ]
        )
    st.console.print(table)
    for key, value in result.get("notes", {}).items():
        st.console.print(f"{key}: {value}")
    paces = {"before": ctx.meta.get(_PACE_BEFORE), "after": machine_pace_ms()}
    pace_ms = {when: round(ms, 2) for when, ms in paces.items() if ms is not None}
    st.console.print(
        "machine pace: "
        + ", ".join(f"{when} {ms:.1f} ms" for when, ms in pace_ms.items())
        + " (a fixed piece of Python work, the shortest of 5 runs; lower is faster)"
    )
    python = interpreter()
    st.console.print(
        f"python: {python['implementation']} {python['version']} {python['build']}, {python['executable']}"
    )
    emit_json({"bench": title, **result["figures"], "pace_ms": pace_ms, "python": python})
    _ = json_out


@app.command("sandbox")
def bench_sandbox(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(help="Customers to generate.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Sandbox seed.")] = 7,
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/sandbox).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the generated files and lake afterwards.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """Generate and ingest a sandbox bank: rows per second and peak memory per stage.

    The baseline is a plain Parquet read and write of the same flow files in the same run (the
    I/O floor that ingestion's validation is measured against).
    """
    st = state(ctx)
    module = _start(ctx, "sandbox")
    settings = st.settings
    assert settings is not None
    result = module.run(
        customers=customers,
        seed=seed,
        workdir=workdir or settings.data_dir / "bench" / "sandbox",
        keep=keep,
        console=st.err,
    )
    report(ctx, f"sandbox ({customers:,} customers)", result, json_out=json_out)


@app.command("eod")
def bench_eod(
    ctx: typer.Context,
    loans: Annotated[int, typer.Option(help="Active loans in the book.")] = 1_000_000,
    sample: Annotated[int, typer.Option(help="Loans in the naive per-loan baseline.")] = 10_000,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="CREDITFACTORY_BENCH_POSTGRES_URL",
            help="PostgreSQL server to also run on (a scratch database, dropped after the run).",
        ),
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/eod).")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """One end of day over a book of active loans, on SQLite and PostgreSQL, against a naive loop."""
    st = state(ctx)
    module = _start(ctx, "eod")
    settings = st.settings
    assert settings is not None
    result = module.run(
        loans=loans,
        sample=min(sample, loans),
        workdir=workdir or settings.data_dir / "bench" / "eod",
        postgres_url=postgres_url or None,
        console=st.err,
    )
    report(ctx, f"eod ({loans:,} loans)", result, json_out=json_out)


@app.command("portrait")
def bench_portrait(
    ctx: typer.Context,
    customers: Annotated[
        int, typer.Option(help="Customers in the sandbox bank (24 months of flows).")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Sandbox seed.")] = 7,
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date of the portrait.")] = "2025-06-30",
    engine: Annotated[str, typer.Option(help="local or spark.")] = "local",
    lake: Annotated[
        Path | None, typer.Option(help="Benchmark this existing lake instead of generating one.")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/portrait).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the generated files and lake afterwards.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """Build the customer portrait of a sandbox bank: seconds, rows per second and peak memory,
    beside a plain Polars scan and collect of the same input tables."""
    st = state(ctx)
    module = _start(ctx, "portrait")
    settings = st.settings
    assert settings is not None
    result = module.run(
        customers=customers,
        seed=seed,
        workdir=workdir or settings.data_dir / "bench" / "portrait",
        keep=keep,
        lake=lake,
        as_of=as_of,
        engine=engine,
        console=st.err,
    )
    title = f"portrait ({result['figures']['customers']:,} customers)"
    report(ctx, title, result, json_out=json_out)


@app.command("strategy")
def bench_strategy(
    ctx: typer.Context,
    rows: Annotated[int, typer.Option(help="Customers in the batch.")] = 10_000_000,
    calls: Annotated[int, typer.Option(help="One-row decisions to time.")] = 20_000,
    polars_calls: Annotated[int, typer.Option(help="One-row decisions through a Polars frame.")] = 500,
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/strategy).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the Parquet files afterwards.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """The strategy language: a mining plan over a batch, a decision plan on one row at a time.

    The baseline is a plain Parquet read and write of the same scored customers in the same run.
    """
    st = state(ctx)
    module = _start(ctx, "strategy")
    settings = st.settings
    assert settings is not None
    result = module.run(
        rows=rows,
        calls=calls,
        polars_calls=polars_calls,
        workdir=workdir or settings.data_dir / "bench" / "strategy",
        keep=keep,
        console=st.err,
    )
    report(ctx, f"strategy ({rows:,} customers)", result, json_out=json_out)


@app.command("models")
def bench_models(
    ctx: typer.Context,
    datasets: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the public data sets (default: ../shared/datasets from the project root)."
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this data set (repeatable): german_credit, hmeq, ..."),
    ] = None,
    external: Annotated[
        list[str] | None,
        typer.Option(
            "--pipeline",
            help="External pipeline to compare (repeatable; default: optbinning, toad, scorecardpy).",
        ),
    ] = None,
    scoring_rows: Annotated[
        int, typer.Option(help="Rows for the scoring-speed measurement (0: skip).")
    ] = 1_000_000,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Scratch folder and scorecardpy's environment (default: DATA_DIR/bench)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """Our scorecard and LightGBM against optbinning, toad and scorecardpy on the same splits; scoring speed."""
    st = state(ctx)
    module = _start(ctx, "models")
    settings = st.settings
    assert settings is not None
    result = module.run(
        datasets_dir=datasets or BENCH_DIR.parent.parent / "shared" / "datasets",
        workdir=workdir or settings.data_dir / "bench",
        scoring_rows=scoring_rows,
        external=tuple(external) if external else module.EXTERNAL,
        only=tuple(only or ()),
        console=st.err,
    )
    report(ctx, "models (test AUC and KS on a stratified 70/30 split, seed 42)", result, json_out=json_out)


@app.command("mining")
def bench_mining(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(help="Portrait-shaped customers to mine.")] = 10_000_000,
    base: Annotated[
        int, typer.Option(help="Customers of the sandbox bank the portrait rows and the models come from.")
    ] = 50_000,
    seed: Annotated[int, typer.Option(help="Sandbox seed.")] = 7,
    pandas_rows: Annotated[int, typer.Option(help="Customers in the pandas baseline.")] = 2_000_000,
    spark: Annotated[bool, typer.Option(help="Also run the scorecard strategy on Spark local[2].")] = True,
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/mining).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the generated files afterwards.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """Whitelist mining: scorecard and LightGBM strategies end to end on the local engine, beside the
    raw LightGBM predict and a pandas implementation, and on Spark local[2]."""
    st = state(ctx)
    module = _start(ctx, "mining")
    settings = st.settings
    assert settings is not None
    result = module.run(
        customers=customers,
        seed=seed,
        base=base,
        pandas_rows=pandas_rows,
        spark=spark,
        workdir=workdir or settings.data_dir / "bench" / "mining",
        keep=keep,
        console=st.err,
    )
    report(ctx, f"mining ({customers:,} customers)", result, json_out=json_out)


@app.command("facts")
def bench_facts(
    ctx: typer.Context,
    customers: Annotated[
        int, typer.Option(help="Customers in the sandbox bank (12 months of history).")
    ] = 50_000,
    seed: Annotated[int, typer.Option(help="Sandbox seed.")] = 7,
    applications: Annotated[
        int, typer.Option(help="Applications recorded (seen and in the graph) before the timed ones.")
    ] = 5_000,
    samples: Annotated[int, typer.Option(help="Applications whose facts are gathered and timed.")] = 2_000,
    sandbox: Annotated[
        Path | None, typer.Option(help="Use this generated sandbox bank instead of generating one.")
    ] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="CREDITFACTORY_BENCH_POSTGRES_URL",
            help="PostgreSQL server to also run on (a scratch database, dropped after the run unless kept).",
        ),
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/facts).")
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(help="Keep the generated files, the databases' folders and the PostgreSQL database."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """Decision facts on a sandbox bank: the graph built in bulk, the planted rings against the
    graph, and the latency of gathering one application's facts, on SQLite and PostgreSQL."""
    st = state(ctx)
    module = _start(ctx, "facts")
    settings = st.settings
    assert settings is not None
    result = module.run(
        customers=customers,
        seed=seed,
        workdir=workdir or settings.data_dir / "bench" / "facts",
        postgres_url=postgres_url or None,
        applications=applications,
        samples=samples,
        sandbox=sandbox,
        keep=keep,
        console=st.err,
    )
    report(ctx, f"facts ({customers:,} customers)", result, json_out=json_out)


@app.command("decisions")
def bench_decisions(
    ctx: typer.Context,
    customers: Annotated[
        int, typer.Option(help="Customers in the sandbox bank (6 months of history).")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Sandbox and applicants seed.")] = 7,
    inproc: Annotated[int, typer.Option(help="Applications sent in process (ASGI), one at a time.")] = 500,
    requests: Annotated[
        int, typer.Option(help="At most this many applications over HTTP per database.")
    ] = 3_000,
    seconds: Annotated[float, typer.Option(help="At most this long over HTTP per database.")] = 20.0,
    clients: Annotated[int, typer.Option(help="Concurrent keep-alive clients of the load generator.")] = 8,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes on PostgreSQL, as creditfactory serve --workers (SQLite: always one).",
        ),
    ] = 2,
    rate: Annotated[
        list[float] | None,
        typer.Option(
            min=0,
            help="After the closed loop, an open loop at this many applications a second, latency "
            "counted from when each was due (repeat for several; default 100 and 200; 0 for none).",
        ),
    ] = None,
    rate_seconds: Annotated[
        float, typer.Option(min=0.1, help="How long each open loop sends, at most (applicants allowing).")
    ] = 8.0,
    polars_threads: Annotated[
        int | None, typer.Option(help="POLARS_MAX_THREADS of the server (default: Polars decides).")
    ] = None,
    sandbox: Annotated[
        Path | None, typer.Option(help="Use this generated sandbox bank instead of generating one.")
    ] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="CREDITFACTORY_BENCH_POSTGRES_URL",
            help="PostgreSQL server to also run on (a scratch database, dropped after the run unless kept).",
        ),
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    workdir: Annotated[
        Path | None, typer.Option(help="Scratch folder (default: DATA_DIR/bench/decisions).")
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(help="Keep the generated files, the databases' folders and the PostgreSQL database."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also end with one JSON line (always printed).")
    ] = False,
) -> None:
    """The application endpoint deciding the sandbox's applicants, in process and over HTTP
    (uvicorn on loopback, concurrent clients), on SQLite and PostgreSQL: p50/p95/p99 latency and
    decisions per second, beside GET /health and the strategy evaluated alone."""
    st = state(ctx)
    module = _start(ctx, "decisions")
    settings = st.settings
    assert settings is not None
    result = module.run(
        customers=customers,
        seed=seed,
        inproc=inproc,
        requests=requests,
        seconds=seconds,
        clients=clients,
        workers=workers,
        polars_threads=polars_threads,
        rates=tuple(r for r in (rate if rate is not None else [100.0, 200.0]) if r > 0),
        rate_seconds=rate_seconds,
        workdir=workdir or settings.data_dir / "bench" / "decisions",
        postgres_url=postgres_url or None,
        sandbox=sandbox,
        keep=keep,
        console=st.err,
    )
    report(ctx, f"decisions ({customers:,} customers)", result, json_out=json_out)
