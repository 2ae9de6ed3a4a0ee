"""Commands of the contract domain: ``creditfactory ingest`` and ``creditfactory contract ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.contract import docs, service
from creditfactory.contract.ingest import IngestResult, IngestSettings
from creditfactory.contract.tables import TABLES
from creditfactory.errors import DomainError

app = typer.Typer(help="The bank-extract contract: tables, docs, ingestion runs.", no_args_is_help=True)


def run_ingest(
    ctx: typer.Context, directory: Path, *, batch_rows: int | None = None, quiet: bool = False
) -> IngestResult:
    st = state(ctx)
    c = st.container
    settings = IngestSettings(
        lake=c.lake_dir,
        reject_root=c.reject_dir,
        batch_rows=batch_rows or c.settings.ingest.batch_rows,
        timezone=c.settings.timezone,
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeElapsedColumn(),
        console=st.err,
        transient=False,
        disable=quiet,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, table: str, rows: int, total: int | None) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=None, rows=0)
            if stage == "done":
                bar.update(tasks[table], total=max(rows, 1), completed=max(rows, 1), rows=rows)
            else:
                bar.update(tasks[table], rows=rows)

        return service.ingest_directory(
            directory=directory,
            uow_factory=c.sessions,
            clock=c.clock,
            vault=c.vault,
            settings=settings,
            progress=progress,
        )


def print_result(ctx: typer.Context, result: IngestResult) -> None:
    st = state(ctx)
    table = RichTable(title=f"Ingestion run {result.run_id}", title_justify="left")
    for col in ("table", "files", "loaded", "rejected", "rows/s"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, t in result.tables.items():
        files = f"{t.files}" + (f" ({t.unchanged_files} unchanged)" if t.unchanged_files else "")
        table.add_row(
            name,
            files,
            f"{t.loaded:,}",
            f"[red]{t.rejected:,}[/]" if t.rejected else "0",
            f"{t.rows_per_second:,.0f}",
        )
    table.add_row("[bold]total", "", f"[bold]{result.loaded:,}", f"[bold]{result.rejected:,}", "")
    st.console.print(table)
    if result.rejected:
        st.console.print(f"Rejected rows with their reasons: [bold]{result.reject_dir}[/]")
    if result.ignored:
        st.console.print("Not loaded (not part of the contract): " + "; ".join(result.ignored))
    unchanged = sum(t.unchanged_files for t in result.tables.values())
    if unchanged and unchanged == sum(t.files for t in result.tables.values()):
        st.console.print("Every file was loaded before: nothing changed.")
    st.console.print(f"{result.seconds:.1f} s")


def ingest(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder of extract files (CSV, Parquet or Excel).")],
    json_out: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of counts per table.")
    ] = False,
    batch_rows: Annotated[int | None, typer.Option(help="Rows per batch when streaming large files.")] = None,
) -> None:
    """Validate and load a bank's extracts; rejected rows go to a reject file with their reasons."""
    st = state(ctx)
    try:
        result = run_ingest(ctx, directory, batch_rows=batch_rows, quiet=json_out)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    print_result(ctx, result)
    if json_out:
        emit_json(result.to_json())


@app.command("docs")
def contract_docs(
    out: Annotated[Path | None, typer.Option(help="Write the Markdown here instead of printing it.")] = None,
) -> None:
    """Generate the contract's documentation from its declarations."""
    text = docs.render_markdown()
    if out is None:
        typer.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@app.command("tables")
def contract_tables(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the contract's tables and how many rows the lake holds of each."""
    st = state(ctx)
    counts = service.table_counts(lake=st.container.lake_dir)
    table = RichTable(title="Contract tables")
    for col in ("table", "key", "stored", "rows in lake"):
        table.add_column(col)
    for t in TABLES:
        table.add_row(
            t.name, ", ".join(t.key), "lake + db" if t.operational else "lake", f"{counts[t.name]:,}"
        )
    st.console.print(table)
    if json_out:
        emit_json({"tables": counts})


@app.command("runs")
def contract_runs(ctx: typer.Context, limit: int = 10) -> None:
    """Recent ingestion runs."""
    st = state(ctx)
    with st.container.uow() as uow:
        runs = service.list_runs(uow, limit=limit)
        table = RichTable(title="Ingestion runs")
        for col in ("run", "status", "started", "loaded", "rejected", "source"):
            table.add_column(col)
        for r in runs:
            table.add_row(
                str(r.id),
                r.status,
                f"{r.started_at:%Y-%m-%d %H:%M}",
                f"{r.rows_loaded:,}",
                f"{r.rows_rejected:,}",
                r.source_dir,
            )
    st.console.print(table)
