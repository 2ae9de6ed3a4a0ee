"""``creditfactory sandbox generate``: write a synthetic bank's extracts and its ground truth."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError

app = typer.Typer(help="The sandbox bank: a synthetic county bank with ground truth.", no_args_is_help=True)


def run_generate(config: Any, out: Path, *, overwrite: bool, console: Console, quiet: bool = False) -> Any:
    """Generate with a progress bar on ``console``; returns the sandbox's ``GenerateResult``."""
    from creditfactory.sandbox import generate

    with Progress(
        TextColumn("[bold]{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task("generating", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=what[:32], completed=done, total=total)

        return generate(config, out, progress=progress, overwrite=overwrite)


@app.command("generate")
def generate_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder to write extracts/, truth/ and manifest.json into.")],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 200_000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed and size give the same bytes.")] = 7,
    as_of: Annotated[str, typer.Option(help="Last day of the history (a month end).")] = "2025-06-30",
    months: Annotated[int, typer.Option(help="Months of history.")] = 24,
    bad_rate: Annotated[float, typer.Option(help="Mean true 12-month default probability.")] = 0.04,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    overwrite: Annotated[bool, typer.Option(help="Replace a sandbox already in the folder.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of rows per table.")
    ] = False,
) -> None:
    """Generate a sandbox bank in the data contract's format, with its truth kept apart."""
    from creditfactory.sandbox import SandboxConfig

    st = state(ctx)
    try:
        config = SandboxConfig(
            customers=customers,
            seed=seed,
            as_of=date.fromisoformat(as_of),
            months=months,
            bad_rate=bad_rate,
            format=file_format,  # type: ignore[arg-type]
        )
        result = run_generate(config, out, overwrite=overwrite, console=st.err, quiet=json_out)
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None
    table = RichTable(title=f"Sandbox bank in {out}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.rows.items():
        table.add_row(name, f"{rows:,}")
    st.console.print(table)
    st.console.print(
        f"extracts in {out / 'extracts'}, ground truth in {out / 'truth'}; "
        f"realised 12-month bad rate {result.bad_rate:.2%}; {result.seconds:.1f} s"
    )
    if json_out:
        emit_json(
            {
                "out": str(out),
                "customers": customers,
                "seed": seed,
                "rows": dict(result.rows),
                "bad_rate": round(float(result.bad_rate), 5),
                "seconds": round(result.seconds, 2),
            }
        )
