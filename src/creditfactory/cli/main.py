"""The ``creditfactory`` command: the Typer root that assembles every domain's commands."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from creditfactory import __version__
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.cli.lazy import Lazy, LazyGroup
from creditfactory.config import Settings
from creditfactory.errors import DomainError


def _decision() -> typer.Typer:
    from creditfactory.cli import decision_truth, graph_truth
    from creditfactory.decisioning import cli as decisioning_cli

    if "truth" not in {c.name for c in decisioning_cli.app.registered_commands}:
        decisioning_cli.graph_app.command("truth")(graph_truth.truth_command)
        decisioning_cli.app.command("truth")(decision_truth.truth_command)
    return decisioning_cli.app


def _attr(module: str, name: str) -> Callable[[], Any]:
    def load() -> Any:
        return getattr(importlib.import_module(module), name)

    return load


#: every domain's commands, imported when they run (``cli.lazy``); each line is the command's
#: own first line of help, which a test checks
LAZY = (
    Lazy(
        "ingest",
        "Validate and load a bank's extracts; rejected rows go to a reject file with their reasons.",
        _attr("creditfactory.contract.cli", "ingest"),
        group=False,
    ),
    Lazy(
        "demo",
        "Run the platform end to end on a synthetic county bank and print a banker's summary.",
        _attr("creditfactory.cli.demo", "demo"),
        group=False,
    ),
    Lazy(
        "schedule",
        "Print the repayment schedule of a loan (no database needed).",
        _attr("creditfactory.servicing.cli", "schedule"),
        group=False,
    ),
    Lazy(
        "sandbox",
        "The sandbox bank: a synthetic county bank with ground truth.",
        _attr("creditfactory.sandbox.cli", "app"),
    ),
    Lazy(
        "contract",
        "The bank-extract contract: tables, docs, ingestion runs.",
        _attr("creditfactory.contract.cli", "app"),
    ),
    Lazy(
        "eod",
        "End of day: close the business date and open the next.",
        _attr("creditfactory.servicing.cli", "eod_app"),
    ),
    Lazy(
        "products", "Loan products (YAML definitions).", _attr("creditfactory.servicing.cli", "products_app")
    ),
    Lazy(
        "lines",
        "Credit lines: open, freeze, unfreeze, close.",
        _attr("creditfactory.servicing.cli", "lines_app"),
    ),
    Lazy(
        "loans",
        "Loans: draw down, repay, show, write off; the portfolio.",
        _attr("creditfactory.servicing.cli", "loans_app"),
    ),
    Lazy(
        "portrait",
        "The customer portrait: point-in-time features of every customer.",
        _attr("creditfactory.portrait.cli", "app"),
    ),
    Lazy(
        "model",
        "Model studio: train, validate, register and approve risk models.",
        _attr("creditfactory.modeling.cli", "app"),
    ),
    Lazy(
        "whitelist",
        "Whitelists: pre-approved customers with limit, price and reasons.",
        _attr("creditfactory.whitelist.cli", "app"),
    ),
    Lazy(
        "applications",
        "Loan applications: list them, show one with its timeline.",
        _attr("creditfactory.origination.cli", "app"),
    ),
    Lazy(
        "decision",
        "Decisions: records, replay, back-test, strategies, facts and the relationship graph.",
        _decision,
    ),
    Lazy(
        "bench",
        "Benchmarks: figures and ratios against a baseline run in the same process.",
        _attr("creditfactory.cli.bench", "app"),
    ),
    Lazy(
        "strategy",
        "Strategies: check a strategy file, show its compiled plan.",
        _attr("creditfactory.cli.strategy", "app"),
    ),
)


class _Root(LazyGroup):
    lazy = LAZY


app = typer.Typer(
    name="creditfactory",
    cls=_Root,
    help="Digital lending for every bank: sandbox bank, extracts, API and the lending lifecycle.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", envvar="CREDITFACTORY_DATA_DIR", help="Home of the database, lake and outputs."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="CREDITFACTORY_DATABASE_URL",
            help="SQLAlchemy URL (default: SQLite in the data dir).",
        ),
    ] = None,
) -> None:
    st = state(ctx)
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    st.settings = Settings(**overrides)  # type: ignore[arg-type]
    ctx.call_on_close(st.close)
    logging.basicConfig(level=st.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Schema migrations report every connection at INFO; a command's output is about its work.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Migrate the database to the newest schema."""
    from creditfactory.db import migrate
    from creditfactory.db.engine import create_engine

    st = state(ctx)
    assert st.settings is not None
    engine = create_engine(st.settings.resolved_database_url)
    migrate.upgrade(engine)
    revision = migrate.current(engine)
    engine.dispose()
    st.console.print(
        f"database at revision [bold]{revision}[/] ({engine.url.render_as_string(hide_password=True)})"
    )
    if json_out:
        emit_json({"revision": revision})


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the database's schema revision and whether it is the newest."""
    from creditfactory.db import migrate
    from creditfactory.db.engine import create_engine

    st = state(ctx)
    assert st.settings is not None
    engine = create_engine(st.settings.resolved_database_url)
    st.console.print(f"revision {migrate.current(engine)} (newest: {migrate.head()})")
    engine.dispose()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes (one interpreter each, each on its own SO_REUSEPORT socket, so "
            "that the kernel spreads connections over them; a process holding more than its share "
            "of the keep-alive connections closes one after its answer, so they stay even); more "
            "than one needs PostgreSQL (SQLite has one writer at a time).",
        ),
    ] = 1,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs). The decision path is warmed up first.

    Each process works on CREDITFACTORY_API__CONCURRENCY requests at once (default 2 for one
    process on PostgreSQL, 1 on SQLite and in each of several; the others wait in the order they
    came; 0: no limit)."""
    import os

    import uvicorn

    from creditfactory.api.asgi import serve_app, serve_processes

    st = state(ctx)
    container = st.container
    api = container.settings.api
    host, port = host or api.host, port or api.port
    each = (api if workers == 1 else api.model_copy(update={"processes": workers})).admitted_on(
        container.engine.dialect.name
    )
    st.console.print(
        f"creditfactory API on http://{host}:{port} "
        f"(docs at /docs, database {container.engine.dialect.name}, {workers} worker(s), "
        f"{_admitted(each)} each)"
    )
    if workers == 1:
        uvicorn.run(serve_app(container), host=host, port=port, log_level="info")
        return
    # each worker process builds its own container from the environment: pass on the options
    os.environ["CREDITFACTORY_DATA_DIR"] = str(container.settings.data_dir)
    os.environ["CREDITFACTORY_DATABASE_URL"] = container.settings.resolved_database_url
    raise typer.Exit(serve_processes(host=host, port=port, workers=workers))


def _admitted(limit: int) -> str:
    return "requests without limit" if not limit else f"{limit} request{'s' if limit > 1 else ''} at once"


auth_app = typer.Typer(help="Tokens for staff and customers.", no_args_is_help=True)
app.add_typer(auth_app, name="auth")


@auth_app.command("token")
def auth_token(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option("--id", help="Staff number, customer id or partner id.")],
    role: Annotated[
        list[str], typer.Option("--role", help="Role (repeatable), e.g. risk_analyst, account_manager.")
    ],
    kind: Annotated[str, typer.Option(help="staff, customer or partner.")] = "staff",
    branch: Annotated[str | None, typer.Option(help="Branch the staff member serves.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer id (for a customer token).")] = None,
    hours: Annotated[float, typer.Option(help="Validity in hours.")] = 8.0,
) -> None:
    """Issue a signed bearer token (for operators, tests and the demo)."""
    from datetime import timedelta

    from creditfactory.security.roles import Principal

    st = state(ctx)
    try:
        principal = Principal(
            id=subject, roles=frozenset(role), kind=kind, branch_id=branch, customer_id=customer
        )  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(st.err, exc) from None
    typer.echo(st.container.tokens.issue(principal, ttl=timedelta(hours=hours)))


events_app = typer.Typer(help="The outbox of events and outgoing messages.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("dispatch")
def events_dispatch(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Deliver pending outbox messages once (retries with back-off, dead letter after 5 tries)."""
    st = state(ctx)
    report = st.container.dispatcher.run_once()
    st.console.print(f"delivered {report.delivered}, retrying {report.retried}, dead {report.dead}")
    if json_out:
        emit_json({"delivered": report.delivered, "retried": report.retried, "dead": report.dead})


def main() -> None:
    from rich.console import Console

    try:
        app()
    except DomainError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc.message}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
