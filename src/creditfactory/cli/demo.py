"""``creditfactory demo``: the whole platform on a synthetic bank, end to end, on the embedded default.

A thin script over the domain services: generate a sandbox bank, ingest its extracts, and print a
summary a banker can read. Each lifecycle stage adds its step here as it lands.
"""

from __future__ import annotations

import json
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any

import polars as pl
import typer
from rich.panel import Panel
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, state
from creditfactory.cli.demo_book import run_book
from creditfactory.contract import cli as contract_cli
from creditfactory.contract import service as contract_service
from creditfactory.sandbox.cli import run_generate
from creditfactory.servicing import service as loan_service


def _generate(ctx: typer.Context, *, customers: int, seed: int, out: Path) -> dict[str, Any]:
    from creditfactory.sandbox import SandboxConfig

    st = state(ctx)
    config = SandboxConfig(customers=customers, seed=seed)
    manifest = out / "manifest.json"
    if manifest.exists():
        existing = json.loads(manifest.read_text())
        if existing.get("config") == config.to_dict():
            st.err.print(f"sandbox bank already generated in {out} (same seed and size): reusing it")
            return existing
    run_generate(config, out, overwrite=True, console=st.err)
    return json.loads(manifest.read_text())


def _truth_summary(out: Path) -> pl.DataFrame:
    truth = pl.scan_parquet(sorted((out / "truth" / "customers").glob("*.parquet")))
    return (
        truth.group_by("segment")
        .agg(
            pl.len().alias("customers"),
            pl.col("pd_12m").mean().alias("true_pd"),
            pl.col("bad_12m").cast(pl.Float64).mean().alias("bad_rate"),
            pl.col("ring_id").is_not_null().sum().alias("ring_members"),
        )
        .sort("segment")
        .collect()
    )


def _print_portfolio(console: Any, book: dict[str, Any]) -> None:
    from creditfactory.servicing.model import Tier

    table = RichTable(title="Loan portfolio: five-tier classification (五级分类)", title_justify="left")
    for col in ("class", "loans", "outstanding principal", "share"):
        table.add_column(col, justify="left" if col == "class" else "right")
    total = book["principal"] or 1
    for tier in Tier:
        row = book["by_tier"].get(tier.value, {"loans": 0, "principal": 0})
        table.add_row(
            f"{tier.label} {tier.value}",
            f"{row['loans']:,}",
            f"{row['principal']:,.2f}",
            f"{row['principal'] / total:.2%}",
        )
    console.print(table)
    dpd = RichTable(title="Days past due", title_justify="left")
    for col in ("bucket", "loans", "outstanding principal"):
        dpd.add_column(col, justify="left" if col == "bucket" else "right")
    for bucket in ("current", "1-30", "31-60", "61-90", "91-180", "181+"):
        row = book["by_bucket"].get(bucket, {"loans": 0, "principal": 0})
        dpd.add_row(bucket, f"{row['loans']:,}", f"{row['principal']:,.2f}")
    console.print(dpd)
    console.print(f"NPL ratio (次级 + 可疑 + 损失): [bold]{book['npl_ratio']:.2%}[/]")


def _applications_line(applied: Any) -> str:
    if applied is None:
        return ""
    q = applied.quality
    every = next((g for g in q["by_grade"] if g["grade"] == "all"), None)
    bad_rate = None if every is None else every["bad_rate"]
    total = sum(sum(o.values()) for o in applied.outcomes.values())
    approved = sum(o.get("approved", 0) for o in applied.outcomes.values())
    return (
        f"{total:,} online applications, {approved:,} approved in the same request and {applied.lines:,} "
        f"lines opened; fraud-ring applicants declined or referred: {_share(q['ring']['stopped_share'])}, "
        f"truly good applicants declined: {_share(q['good']['false_decline_rate'])}, realised bad rate of "
        f"approvals {_share(bad_rate)}.\n"
    )


def _applications_json(applied: Any) -> dict[str, Any]:
    q = applied.quality
    every = next((g for g in q["by_grade"] if g["grade"] == "all"), None)
    return {
        "strategy": applied.strategy,
        "by_kind": applied.outcomes,
        "refused": applied.refused,
        "signed": applied.signed,
        "lines": applied.lines,
        "ring_stopped_share": q["ring"]["stopped_share"],
        "false_decline_rate": q["good"]["false_decline_rate"],
        "approved_bad_rate": None if every is None else every["bad_rate"],
        "seconds": round(applied.seconds, 1),
    }


def _share(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(help="Size of the sandbox bank.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same bank, byte for byte.")] = 7,
    offers: Annotated[
        int, typer.Option(help="Whitelisted customers the campaign reaches (0: all of them).")
    ] = 4_000,
    days: Annotated[int, typer.Option(help="Days of lending to run, each closed by an end of day.")] = 365,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line of the figures.")] = False,
) -> None:
    """Run the platform end to end on a synthetic county bank and print a banker's summary."""
    st = state(ctx)
    c = st.container
    started = perf_counter()
    out = c.data_dir / "demo" / f"sandbox-s{seed}-n{customers}"
    st.console.rule("[bold]creditfactory demo")
    st.console.print(
        f"Data in {c.data_dir.resolve()} (database: {c.engine.dialect.name}, lake: {c.lake_dir})"
    )

    st.console.print(f"\n[bold]1. A synthetic county bank[/] ({customers:,} customers, seed {seed})")
    _generate(ctx, customers=customers, seed=seed, out=out)

    st.console.print(
        "\n[bold]2. Ingest the bank's extracts[/] (validate every row, load the good, keep the bad)"
    )
    result = contract_cli.run_ingest(ctx, out, quiet=json_out)
    contract_cli.print_result(ctx, result)

    counts = contract_service.table_counts(lake=c.lake_dir)
    truth = _truth_summary(out)
    total = int(truth["customers"].sum())
    bad = float((truth["bad_rate"] * truth["customers"]).sum() / total) if total else 0.0

    seg = RichTable(title="Customers by segment, with the truth the bank cannot see", title_justify="left")
    for col in ("segment", "customers", "share", "true 12-month PD", "realised bad rate", "in fraud rings"):
        seg.add_column(col, justify="left" if col == "segment" else "right")
    for row in truth.iter_rows(named=True):
        seg.add_row(
            row["segment"],
            f"{row['customers']:,}",
            f"{row['customers'] / total:.1%}",
            f"{row['true_pd']:.2%}",
            f"{row['bad_rate']:.2%}",
            f"{row['ring_members']:,}",
        )
    seg.add_row(
        "[bold]all",
        f"[bold]{total:,}",
        "100%",
        "",
        f"[bold]{bad:.2%}",
        f"{int(truth['ring_members'].sum()):,}",
    )
    st.console.print(seg)

    lake = RichTable(title="What the bank now holds (rows per table)", title_justify="left")
    lake.add_column("table")
    lake.add_column("rows", justify="right")
    for name, n in counts.items():
        lake.add_row(name, f"{n:,}")
    st.console.print(lake)

    st.console.print(
        "\n[bold]3. Risk models and the whitelist[/]: the customer portrait, a scorecard per segment "
        "(trained, validated, approved by a second person), then the mining strategy over every customer"
    )
    from creditfactory.cli.demo_risk import offers_frame, print_quality, run_risk
    from creditfactory.whitelist.cli import print_summary

    risk = run_risk(c, out, st.console)
    with c.uow() as uow:
        from creditfactory.whitelist import service as whitelist_service

        print_summary(st.console, whitelist_service.get_version(uow, version_id=risk.version_id))
    print_quality(st.console, risk.quality)

    from datetime import date, timedelta

    from creditfactory.cli.demo_apply import print_applications, run_applications
    from creditfactory.cli.demo_book import prepare_book

    as_of = date(2025, 6, 30)
    st.console.print(
        "\n[bold]4. Online applications[/]: whitelisted customers reached by the campaign, customers "
        "without an offer and the planted fraud rings apply on their phones; the decision engine "
        "decides each in the same request, approved customers sign the e-contract and servicing "
        "opens their lines"
    )
    prepare_book(c, as_of + timedelta(days=1))
    reach = offers_frame(c, risk.version_id)
    applied = run_applications(
        c,
        out,
        on=as_of + timedelta(days=1),
        models=risk.models,
        offers=reach if offers <= 0 else reach.head(offers),
        version_id=risk.version_id,
        seed=seed,
        console=st.err,
    )
    if applied is None:
        st.console.print("The applications were decided by an earlier run.")
    else:
        print_applications(st.console, applied)

    st.console.print(f"\n[bold]5. Lending[/]: drawdowns on the new lines, then {days} ends of day")
    book = run_book(c, out, as_of=as_of, offers=offers, days=days, console=st.err, from_applications=True)
    if book is None:
        st.console.print("The loan book was simulated by an earlier run; its portfolio as it stands:")
    with c.uow() as uow:
        portfolio = loan_service.portfolio(uow.session)
    _print_portfolio(st.console, portfolio)
    if book is not None:
        st.console.print(
            f"{book.lines:,} lines → {book.loans:,} loans, {book.disbursed:,.2f} yuan disbursed; "
            f"{book.repayments:,} repayments.\n"
            f"Truth check: {book.defaulters_true:,} borrowers truly defaulted within the year; "
            f"{book.defaulters_overdue:,} of them are overdue in the book now."
        )

    seconds = perf_counter() - started
    q_all = risk.quality.filter(pl.col("segment") == "all").row(0, named=True)
    st.console.print(
        Panel.fit(
            f"{total:,} customers of a county bank, {sum(counts.values()):,} rows of history loaded, "
            f"{result.rejected:,} rows rejected.\n"
            f"In truth {bad:.2%} of the customers will default within 12 months.\n"
            f"Four scorecards approved; on the next 12 months they rank defaulters with an AUC of "
            + ", ".join(f"{m.segment} {m.future_auc:.2f}" for m in risk.models)
            + " (the truth itself: "
            + ", ".join(f"{m.truth_auc:.2f}" for m in risk.models)
            + ").\n"
            f"Whitelist v{risk.version_id}: {risk.mined.eligible:,} of {risk.mined.scored:,} customers pre-approved; "
            f"their realised bad rate {q_all['whitelisted_bad_rate']:.2%} against {q_all['population_bad_rate']:.2%} "
            f"for all customers, reaching {q_all['good_reach']:.0%} of the truly good.\n"
            + _applications_line(applied)
            + f"Loan book: {portfolio['principal']:,.2f} yuan outstanding, NPL ratio {portfolio['npl_ratio']:.2%}; "
            f"the ledger's trial balance was zero after every end of day.\n"
            f"Finished in {seconds:.0f} s.",
            title="Summary",
        )
    )
    if json_out:
        emit_json(
            {
                "customers": total,
                "ingest_run_id": result.run_id,
                "loaded": result.loaded,
                "rejected": result.rejected,
                "tables": counts,
                "segments": {r["segment"]: r["customers"] for r in truth.iter_rows(named=True)},
                "true_bad_rate": round(bad, 5),
                "models": {
                    m.segment: {
                        "name": m.name,
                        "version": m.version,
                        "oot_auc": None if m.oot_auc is None else round(m.oot_auc, 4),
                        "future_auc": round(m.future_auc, 4),
                        "truth_auc": round(m.truth_auc, 4),
                    }
                    for m in risk.models
                },
                "whitelist_version": risk.version_id,
                "whitelisted": risk.mined.eligible,
                "whitelisted_bad_rate": round(float(q_all["whitelisted_bad_rate"] or 0), 5),
                "good_reach": round(float(q_all["good_reach"]), 4),
                "applications": None if applied is None else _applications_json(applied),
                "loans": sum(v["loans"] for v in portfolio["by_tier"].values()),
                "outstanding": str(portfolio["principal"]),
                "npl_ratio": round(float(portfolio["npl_ratio"]), 5),
                "by_tier": {k: v["loans"] for k, v in portfolio["by_tier"].items()},
                "seconds": round(seconds, 1),
            }
        )
