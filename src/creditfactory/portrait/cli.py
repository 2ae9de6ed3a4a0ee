"""``creditfactory portrait ...``: build, list and read customer portraits; the feature catalogue."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError, InvalidInput
from creditfactory.portrait import docs, service
from creditfactory.portrait.features import COLUMNS, FEATURES

app = typer.Typer(
    help="The customer portrait: point-in-time features of every customer.", no_args_is_help=True
)


def _lake(ctx: typer.Context) -> Path:
    settings = state(ctx).settings
    assert settings is not None
    return settings.resolved_lake_dir


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--as-of must be a date YYYY-MM-DD, not {text!r}") from None


@app.command("build")
def build_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date YYYY-MM-DD: only data known then is used.")
    ],
    engine: Annotated[str, typer.Option(help="local (Polars on this machine) or spark.")] = "local",
    targets: Annotated[
        bool, typer.Option("--targets/--no-targets", help="Also build bad_12m and observability.")
    ] = True,
    horizon: Annotated[int, typer.Option(help="Months the targets look ahead.")] = 12,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line of figures.")] = False,
) -> None:
    """Compute the portrait at an as-of date into the lake (LAKE/portrait/as_of=DATE/)."""
    st = state(ctx)
    lake = _lake(ctx)
    try:
        day = _date(as_of)
        with Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=st.err,
            disable=json_out,
        ) as bar:
            task = bar.add_task("portrait", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage[:18], completed=done, total=total)

            result = service.build(lake, as_of=day, engine=engine, progress=progress)
            target_result = None
            if targets:
                tasks = bar.add_task("targets", total=None)

                def target_progress(stage: str, done: int, total: int) -> None:
                    bar.update(tasks, description=f"targets: {stage}"[:18], completed=done, total=total)

                target_result = service.build_targets(
                    lake, as_of=day, horizon_months=horizon, progress=target_progress
                )
    except DomainError as exc:
        raise fail(st.err, exc) from None
    table = RichTable(title=f"Portrait at {day} ({result.engine})", title_justify="left")
    table.add_column("segment")
    table.add_column("customers", justify="right")
    for segment, count in result.by_segment.items():
        table.add_row(segment, f"{count:,}")
    table.add_row("[bold]total", f"[bold]{result.rows:,}")
    st.console.print(table)
    st.console.print(
        f"{result.rows:,} customers x {result.features} features in {result.seconds:.1f} s -> {result.path}"
    )
    if result.missing_tables:
        st.console.print(
            f"[yellow]not in the lake (features left empty):[/] {', '.join(result.missing_tables)}"
        )
    payload: dict[str, Any] = result.to_json()
    if target_result is not None:
        rate = "n/a" if target_result.bad_rate is None else f"{target_result.bad_rate:.2%}"
        st.console.print(
            f"targets: {target_result.observable:,} of {target_result.rows:,} observable, "
            f"bad rate {rate}"
            + (
                f"; not observable: {', '.join(f'{k} {v:,}' for k, v in target_result.unobservable.items())}"
                if target_result.unobservable
                else ""
            )
        )
        payload["targets"] = target_result.to_json()
    if json_out:
        emit_json(payload)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """As-of dates with a built portrait."""
    st = state(ctx)
    lake = _lake(ctx)
    with_targets = set(service.targets_available(lake))
    entries: list[dict[str, Any]] = []
    table = RichTable(title=f"Portraits in {lake}", title_justify="left")
    for col in ("as of", "customers", "features", "engine", "seconds", "targets"):
        table.add_column(col, justify="left" if col in ("as of", "engine") else "right")
    for day in service.available(lake):
        manifest = service.manifest(lake, as_of=day)
        entry = {
            "as_of": day.isoformat(),
            "rows": manifest["rows"],
            "features": manifest["features"],
            "engine": manifest["engine"],
            "seconds": manifest["seconds"],
            "targets": day in with_targets,
        }
        entries.append(entry)
        table.add_row(
            entry["as_of"],
            f"{entry['rows']:,}",
            str(entry["features"]),
            entry["engine"],
            f"{entry['seconds']:.1f}",
            "yes" if entry["targets"] else "no",
        )
    if entries:
        st.console.print(table)
    else:
        st.console.print(
            f"no portrait built in {lake}; run `creditfactory portrait build --as-of YYYY-MM-DD`"
        )
    if json_out:
        emit_json({"portraits": entries})


@app.command("features")
def features_cmd(
    ctx: typer.Context,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/portrait.md.")] = False,
    group: Annotated[
        str | None, typer.Option(help="Only this group (deposits, credit, bureau, ...).")
    ] = None,
) -> None:
    """The feature catalogue: every feature with its type, window and meaning."""
    st = state(ctx)
    if markdown:
        typer.echo(docs.render_markdown(), nl=False)
        return
    chosen = [f for f in FEATURES if group is None or f.group == group]
    if not chosen:
        raise fail(st.err, InvalidInput(f"no feature in group {group!r}; groups: {', '.join(docs.GROUPS)}"))
    table = RichTable(title=f"{len(chosen)} features", title_justify="left")
    for col in ("feature", "type", "window", "table", "meaning", "中文"):
        table.add_column(col)
    for feat in chosen:
        window = "all" if feat.window_months is None else f"{feat.window_months}m"
        table.add_row(feat.name, feat.dtype.value, window, feat.table, feat.description, feat.label_zh)
    st.console.print(table)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="Customer number.")],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date of a built portrait.")],
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """One customer's portrait, feature by feature."""
    st = state(ctx)
    try:
        row = service.customer(_lake(ctx), as_of=_date(as_of), customer_id=customer_id)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    table = RichTable(title=f"{customer_id} at {as_of}", title_justify="left")
    for col in ("feature", "value", "meaning"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for col in COLUMNS:
        table.add_row(col.name, _shown(row[col.name]), col.description)
    group = None
    for feat in FEATURES:
        if feat.group != group:
            group = feat.group
            table.add_section()
        table.add_row(feat.name, _shown(row[feat.name]), f"{feat.description} ({feat.label_zh})")
    st.console.print(table)
    if json_out:
        emit_json({k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()})


def _shown(value: Any) -> str:
    if value is None:
        return "[dim]—[/]"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.2f}"
    return str(value)
