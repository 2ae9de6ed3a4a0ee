"""Commands of the whitelist: ``creditfactory whitelist list | show | diff | export | import | offer | retire``.

Mining (``whitelist mine``) and back-testing (``whitelist backtest``) are added to this group by
the mining module.
"""

from __future__ import annotations

import getpass
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError
from creditfactory.money import from_minor
from creditfactory.security.roles import Principal
from creditfactory.whitelist import handover, service
from creditfactory.whitelist.model import ImportBounds

app = typer.Typer(
    help="Whitelists: pre-approved customers with limit, price and reasons.", no_args_is_help=True
)

By = Annotated[str, typer.Option("--by", help="Staff id recorded as the actor (default: the OS user).")]


def _by(value: str | None) -> str:
    return value or getpass.getuser()


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{from_minor(int(fen)):,.2f}"


def _rate(e8: int | None) -> str:
    return "" if e8 is None else f"{Decimal(int(e8)) / Decimal(10**6):.2f}%"


def print_summary(console: Any, version: Any) -> None:
    """A banker's summary of one version: by segment, grade, branch; exclusions by reason."""
    summary = json.loads(version.summary or "{}")
    console.print(
        f"[bold]whitelist v{version.id}[/] {version.name} ({version.kind}, {version.status.value}), as of "
        f"{version.as_of.isoformat()}: {version.scored:,} scored, [bold]{version.eligible:,}[/] pre-approved, "
        f"{version.excluded:,} excluded; total limit {version.total_limit:,.2f} yuan"
    )
    for key, title in (("by_segment", "segment"), ("by_grade", "grade")):
        rows = summary.get(key) or []
        if not rows:
            continue
        table = RichTable(title=f"Pre-approved by {title}", title_justify="left")
        for col in (title, "customers", "total limit", "mean limit", "mean rate"):
            table.add_column(col, justify="left" if col == title else "right")
        for r in rows:
            table.add_row(
                str(r[key.removeprefix("by_").replace("branch", "branch_id")]),
                f"{r['customers']:,}",
                f"{Decimal(r['limit']):,.2f}",
                f"{r['mean_limit']:,.2f}",
                f"{r['mean_rate'] * 100:.2f}%",
            )
        console.print(table)
    branches = summary.get("by_branch") or []
    if branches:
        table = RichTable(title="Pre-approved by branch (top 10 by limit)", title_justify="left")
        for col in ("branch", "customers", "total limit"):
            table.add_column(col, justify="left" if col == "branch" else "right")
        for r in sorted(branches, key=lambda r: -Decimal(r["limit"]))[:10]:
            table.add_row(str(r["branch_id"]), f"{r['customers']:,}", f"{Decimal(r['limit']):,.2f}")
        console.print(table)
    exclusions = summary.get("exclusions") or {}
    if exclusions:
        table = RichTable(title="Excluded, by the first rule that excluded them", title_justify="left")
        table.add_column("reason")
        table.add_column("customers", justify="right")
        for reason, n in sorted(exclusions.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(str(reason), f"{n:,}")
        console.print(table)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Whitelist versions, newest first."""
    st = state(ctx)
    with st.container.uow() as uow:
        versions = service.list_versions(uow, limit=limit)
        table = RichTable(title="Whitelist versions", title_justify="left")
        for col in (
            "id",
            "name",
            "kind",
            "status",
            "as of",
            "scored",
            "pre-approved",
            "total limit",
            "published",
        ):
            table.add_column(
                col, justify="right" if col in ("id", "scored", "pre-approved", "total limit") else "left"
            )
        rows = []
        for v in versions:
            table.add_row(
                str(v.id),
                v.name,
                v.kind,
                v.status.value,
                v.as_of.isoformat(),
                f"{v.scored:,}",
                f"{v.eligible:,}",
                f"{v.total_limit:,.2f}",
                v.published_at.isoformat(timespec="seconds") if v.published_at else "",
            )
            rows.append({"id": v.id, "name": v.name, "status": v.status.value, "eligible": v.eligible})
    st.console.print(table)
    if json_out:
        emit_json({"versions": rows})


@app.command("show")
def show(
    ctx: typer.Context,
    version_id: Annotated[int, typer.Argument(help="Version id.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One version's summary: counts and limits by segment, grade and branch; exclusions by reason."""
    st = state(ctx)
    try:
        with st.container.uow() as uow:
            v = service.get_version(uow, version_id=version_id)
            print_summary(st.console, v)
            counts = service.status_counts(uow, version_id=version_id)
            st.console.print(
                "offers by status: " + ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items()))
            )
            payload = {
                "version_id": v.id,
                "status": v.status.value,
                "scored": v.scored,
                "eligible": v.eligible,
                "excluded": v.excluded,
                "total_limit": str(v.total_limit),
                "entry_status": counts,
            }
    except DomainError as exc:
        raise fail(st.err, exc) from None
    if json_out:
        emit_json(payload)


@app.command("diff")
def diff(
    ctx: typer.Context,
    old: Annotated[int, typer.Argument(help="Earlier version id.")],
    new: Annotated[int, typer.Argument(help="Later version id.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write every added, removed and changed customer to this .xlsx or .csv folder."
        ),
    ] = None,
    show: Annotated[int, typer.Option(help="Customers to print per group.")] = 10,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who was added, removed, or had the limit or price changed between two versions, and why."""
    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            result = service.diff_versions(uow, lake=c.lake_dir, old_id=old, new_id=new)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    st.console.print(
        f"v{old} → v{new}: [green]{result.added.height:,} added[/], [red]{result.removed.height:,} removed[/], "
        f"[yellow]{result.changed.height:,} changed[/] (limit, price or grade), {result.unchanged:,} unchanged"
    )
    for title, frame, cols in (
        ("added", result.added, ("customer_id", "grade", "limit_fen", "annual_rate_e8", "why")),
        ("removed", result.removed, ("customer_id", "grade", "limit_fen", "annual_rate_e8", "why")),
        (
            "changed",
            result.changed,
            (
                "customer_id",
                "limit_fen_old",
                "limit_fen_new",
                "annual_rate_e8_old",
                "annual_rate_e8_new",
                "why",
            ),
        ),
    ):
        if frame.height == 0:
            continue
        table = RichTable(
            title=f"{title} (first {min(show, frame.height)} of {frame.height:,})", title_justify="left"
        )
        for col in cols:
            label = (
                col.replace("_fen", "")
                .replace("_e8", "")
                .replace("annual_rate", "rate")
                .replace("limit", "limit")
            )
            table.add_column(label, justify="left" if col in ("customer_id", "grade", "why") else "right")
        for row in frame.head(show).iter_rows(named=True):
            table.add_row(
                *[
                    _yuan(row[c2])
                    if c2.endswith("_fen") or "_fen_" in c2
                    else _rate(row[c2])
                    if "_e8" in c2
                    else str(row[c2] if row[c2] is not None else "")
                    for c2 in cols
                ]
            )
        st.console.print(table)
    if out is not None:
        if out.suffix.lower() == ".xlsx":
            import xlsxwriter

            book = xlsxwriter.Workbook(str(out))
            try:
                for title, frame in (
                    ("added", result.added),
                    ("removed", result.removed),
                    ("changed", result.changed),
                ):
                    frame.write_excel(book, worksheet=title, autofit=True)
            finally:
                book.close()
        else:
            out.mkdir(parents=True, exist_ok=True)
            for title, frame in (
                ("added", result.added),
                ("removed", result.removed),
                ("changed", result.changed),
            ):
                frame.write_csv(out / f"{title}.csv")
        st.console.print(f"details written to {out}")
    if json_out:
        emit_json({"old": old, "new": new, **result.to_json()})


@app.command("export")
def export(
    ctx: typer.Context,
    version_id: Annotated[int, typer.Option("--version", help="Version id to export.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output file (default: DATA_DIR/exports/whitelist-v<id>.xlsx)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="xlsx (the hand-over template).")] = "xlsx",
    by: By = "",
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="Role of the actor; personal data appear in full only for a role allowed to see them.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Export a version in the fixed Excel template (the same one ``whitelist import`` reads)."""
    st = state(ctx)
    c = st.container
    if fmt != "xlsx":
        raise fail(st.err, ValueError(f"--format {fmt!r}: only xlsx (the hand-over template) is supported"))
    path = out or c.data_dir / "exports" / f"whitelist-v{version_id}.xlsx"
    principal = Principal(id=_by(by), roles=frozenset(role or ["risk_analyst"]))  # type: ignore[arg-type]
    try:
        with c.uow() as uow:
            n = handover.export_version(
                uow, version_id=version_id, path=path, vault=c.vault, principal=principal, now=c.clock.now()
            )
            uow.commit()
    except DomainError as exc:
        raise fail(st.err, exc) from None
    st.console.print(f"{n:,} customers written to {path}")
    if json_out:
        emit_json({"version_id": version_id, "rows": n, "file": str(path)})


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Workbook in the hand-over template (.xlsx).", exists=True, dir_okay=False)
    ],
    name: Annotated[
        str, typer.Option(help="Name of the list (a newer import of the same name supersedes the older).")
    ] = "manual",
    min_limit: Annotated[str, typer.Option(help="Product's smallest limit (yuan).")] = "1000",
    max_limit: Annotated[str, typer.Option(help="Product's largest limit (yuan).")] = "300000",
    min_rate: Annotated[str, typer.Option(help="Product's lowest annual rate.")] = "0.03",
    max_rate: Annotated[str, typer.Option(help="Product's highest annual rate.")] = "0.24",
    expiry_days: Annotated[
        int, typer.Option(help="Days an offer stays valid when the row gives no date.")
    ] = 90,
    on: Annotated[
        str | None,
        typer.Option("--date", help="Business date (default: the open one, else today in Beijing)."),
    ] = None,
    by: By = "",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a hand-approved list: every row checked, good rows published, rejects to a workbook."""
    st = state(ctx)
    c = st.container
    try:
        bounds = ImportBounds(
            min_limit=Decimal(min_limit),
            max_limit=Decimal(max_limit),
            min_rate=Decimal(min_rate),
            max_rate=Decimal(max_rate),
        )
        with c.uow() as uow:
            business_date = date.fromisoformat(on) if on else service.offer_date(uow.session, clock=c.clock)
        result = handover.import_list(
            c.uow,
            path=file,
            name=name,
            lake=c.lake_dir,
            reject_dir=c.reject_dir,
            vault=c.vault,
            bounds=bounds,
            business_date=business_date,
            expiry_days=expiry_days,
            imported_by=_by(by),
            now=c.clock.now(),
        )
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None
    if result.unchanged:
        st.console.print(f"{file.name} was imported before as version {result.version_id}: nothing changed")
    else:
        st.console.print(
            f"{file.name}: {result.rows:,} rows, [green]{result.accepted:,} accepted[/], "
            f"[red]{result.rejected:,} rejected[/]"
            + (
                f"; published as whitelist version {result.version_id}"
                if result.version_id
                else "; nothing published"
            )
        )
        for reason, n in sorted(result.reasons.items(), key=lambda kv: -kv[1]):
            st.console.print(f"  rejected for {reason}: {n:,}")
        if result.reject_file:
            st.console.print(f"rejected rows with their reasons: {result.reject_file}")
    if json_out:
        emit_json(result.to_json())


@app.command("offer")
def offer(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="Customer id.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A customer's current pre-approved offer."""
    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            on = service.offer_date(uow.session, clock=c.clock)
            o = service.current_offer(uow, customer_id=customer_id, on=on)
    except DomainError as exc:
        raise fail(st.err, exc, code=1) from None
    st.console.print(
        f"{o.customer_id}: limit {o.limit:,.2f} yuan at {o.annual_rate * 100:.2f}% a year, grade {o.grade or '-'}, "
        f"until {o.expiry_date.isoformat()} ({o.status.value}; whitelist v{o.version_id} {o.list_name})"
    )
    if json_out:
        emit_json(
            {
                "customer_id": o.customer_id,
                "limit": str(o.limit),
                "annual_rate": str(o.annual_rate),
                "expiry_date": o.expiry_date.isoformat(),
                "grade": o.grade,
                "status": o.status.value,
                "version_id": o.version_id,
            }
        )


@app.command("retire")
def retire(
    ctx: typer.Context,
    version_id: Annotated[int, typer.Argument(help="Version id.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Withdraw a published version: its open offers are no longer shown."""
    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            on = service.offer_date(uow.session, clock=c.clock)
            n = service.retire_version(uow, version_id=version_id, business_date=on, now=c.clock.now())
            uow.commit()
    except DomainError as exc:
        raise fail(st.err, exc) from None
    st.console.print(f"whitelist v{version_id} retired; {n:,} open offers withdrawn")
    if json_out:
        emit_json({"version_id": version_id, "withdrawn": n})


# ------------------------------------------------------------------ mining


def _progress_bar(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@app.command("mine")
def mine_cmd(
    ctx: typer.Context,
    strategy_file: Annotated[
        Path, typer.Option("--strategy", help="Mining strategy (YAML).", exists=True, dir_okay=False)
    ],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date of the portrait to mine.")],
    engine: Annotated[str, typer.Option(help="local (Polars) or spark.")] = "local",
    on: Annotated[
        str | None,
        typer.Option("--date", help="Business date (default: the open one, else today in Beijing)."),
    ] = None,
    by: By = "",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score every customer, apply the strategy and publish a whitelist version."""
    from creditfactory.whitelist import mining

    st = state(ctx)
    c = st.container
    try:
        at = date.fromisoformat(as_of)
        with c.uow() as uow:
            business_date = date.fromisoformat(on) if on else service.offer_date(uow.session, clock=c.clock)
        with _progress_bar(st.err) as bar:
            task = bar.add_task(f"mining {strategy_file.name} ({engine})", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            result = mining.mine(
                c.uow,
                lake=c.lake_dir,
                models_dir=c.models_dir,
                strategy_path=strategy_file,
                as_of=at,
                business_date=business_date,
                created_by=_by(by),
                now=c.clock.now(),
                engine=engine,
                progress=progress,
            )
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None
    with c.uow() as uow:
        version = service.get_version(uow, version_id=result.version_id)
        if result.unchanged:
            st.console.print(
                f"the same strategy, models and data were mined before: whitelist v{version.id}, nothing changed"
            )
        print_summary(st.console, version)
    if not result.unchanged:
        st.console.print(
            f"mined {result.scored:,} customers in {result.seconds:.1f} s "
            f"({result.rows_per_second:,.0f} customers/s through the {engine} engine)"
        )
    if json_out:
        emit_json(result.to_json())


@app.command("backtest")
def backtest_cmd(
    ctx: typer.Context,
    strategy_file: Annotated[
        Path,
        typer.Option("--strategy", help="Candidate mining strategy (YAML).", exists=True, dir_okay=False),
    ],
    as_of: Annotated[str, typer.Option("--as-of", help="A past as-of date whose outcomes are known.")],
    champion: Annotated[
        Path | None,
        typer.Option(help="Champion strategy (default: the one of the newest published mined version)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approval volume, limits and realised bad rate by grade on history, beside the champion."""
    from creditfactory.whitelist import mining

    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            champ = champion or mining.champion_strategy(uow, lake=c.lake_dir)
            result = mining.backtest(
                uow,
                lake=c.lake_dir,
                models_dir=c.models_dir,
                strategy_path=strategy_file,
                as_of=date.fromisoformat(as_of),
                champion_path=champ,
            )
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None
    pop = result.population_bad_rate
    st.console.print(
        f"as of {result.as_of}: {result.population:,} customers, {result.observed:,} with a known 12-month "
        f"outcome, population bad rate {'-' if pop is None else f'{pop:.2%}'}"
    )
    table = RichTable(title="Back-test by strategy", title_justify="left")
    for col in ("", "strategy", "pre-approved", "approval rate", "total limit", "with outcome", "bad rate"):
        table.add_column(col, justify="left" if col in ("", "strategy") else "right")
    for role, t in result.totals.items():
        table.add_row(
            role,
            t["strategy"],
            f"{t['eligible']:,}",
            f"{t['approval_rate']:.1%}",
            f"{t['total_limit']:,.0f}",
            f"{t['observed']:,}",
            "-" if t["bad_rate"] is None else f"{t['bad_rate']:.2%}",
        )
    st.console.print(table)
    grades = RichTable(title="By grade", title_justify="left")
    for col in ("strategy", "grade", "pre-approved", "with outcome", "bad rate", "total limit"):
        grades.add_column(col, justify="left" if col in ("strategy", "grade") else "right")
    for r in result.rows:
        grades.add_row(
            r.strategy,
            r.grade,
            f"{r.eligible:,}",
            f"{r.observed:,}",
            "-" if r.bad_rate is None else f"{r.bad_rate:.2%}",
            f"{r.total_limit_fen / 100:,.0f}",
        )
    st.console.print(grades)
    if json_out:
        emit_json(result.to_json())
