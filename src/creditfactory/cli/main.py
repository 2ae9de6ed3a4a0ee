"""The ``creditfactory`` command: the Typer root that assembles every domain's commands."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from creditfactory import __version__
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.config import Settings
from creditfactory.errors import DomainError

app = typer.Typer(
    name="creditfactory",
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
            "that the kernel spreads connections over them); more than one needs PostgreSQL "
            "(SQLite has one writer at a time).",
        ),
    ] = 1,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs). The decision path is warmed up first.

    Each process works on CREDITFACTORY_API__CONCURRENCY requests at once (default 2; the
    others wait in the order they came; 0: no limit)."""
    import os

    import uvicorn

    from creditfactory.api.asgi import serve_app, serve_processes

    st = state(ctx)
    container = st.container
    api = container.settings.api
    host, port = host or api.host, port or api.port
    st.console.print(
        f"creditfactory API on http://{host}:{port} "
        f"(docs at /docs, database {container.engine.dialect.name}, {workers} worker(s), "
        f"{_admitted(api.concurrency)} each)"
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


def _register() -> None:
    from creditfactory.cli import bench, decision_truth, demo, graph_truth
    from creditfactory.cli import strategy as strategy_cli
    from creditfactory.contract import cli as contract_cli
    from creditfactory.decisioning import cli as decisioning_cli
    from creditfactory.modeling import cli as modeling_cli
    from creditfactory.origination import cli as origination_cli
    from creditfactory.portrait import cli as portrait_cli
    from creditfactory.sandbox import cli as sandbox_cli
    from creditfactory.servicing import cli as servicing_cli
    from creditfactory.whitelist import cli as whitelist_cli

    app.add_typer(sandbox_cli.app, name="sandbox")
    app.add_typer(contract_cli.app, name="contract")
    app.command("ingest")(contract_cli.ingest)
    app.command("demo")(demo.demo)
    app.command("schedule")(servicing_cli.schedule)
    app.add_typer(servicing_cli.eod_app, name="eod")
    app.add_typer(servicing_cli.products_app, name="products")
    app.add_typer(servicing_cli.lines_app, name="lines")
    app.add_typer(servicing_cli.loans_app, name="loans")
    app.add_typer(portrait_cli.app, name="portrait")
    app.add_typer(modeling_cli.app, name="model")
    app.add_typer(whitelist_cli.app, name="whitelist")
    app.add_typer(origination_cli.app, name="applications")
    app.add_typer(decisioning_cli.app, name="decision")
    decisioning_cli.graph_app.command("truth")(graph_truth.truth_command)
    decisioning_cli.app.command("truth")(decision_truth.truth_command)
    app.add_typer(bench.app, name="bench")
    app.add_typer(strategy_cli.app, name="strategy")


_register()


def main() -> None:
    from rich.console import Console

    try:
        app()
    except DomainError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc.message}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
