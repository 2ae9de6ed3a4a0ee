"""The stored decisions measured against a sandbox bank's ground truth.

Only edges (commands, the demo, benchmarks) read the truth; ``decisioning`` itself never sees it.
``creditfactory decision truth --sandbox DIR`` takes the decision that applied to each
application (the newest application of each customer), joins the customer's truth (a member of
a planted fraud ring; a realised 12-month default; the true PD) and prints the share of ring
members declined or referred, the false-decline rate on truly good applicants, and the realised
bad rate of approvals by grade (``sandbox.measure.decision_quality``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table as RichTable

from creditfactory import decisioning
from creditfactory.bootstrap import Container
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError, InvalidInput
from creditfactory.sandbox.measure import decision_quality


def customer_truth(sandbox: Path) -> pl.DataFrame:
    """The truth of every sandbox customer as an applicant: ``customer_id``, ``is_ring``,
    ``bad_12m``, ``truly_bad`` (ring member or realised default), ``pd_12m``."""
    folder = sandbox / "truth" / "customers"
    if not folder.is_dir():
        raise InvalidInput(f"{sandbox} holds no sandbox truth (truth/customers)")
    t = pl.read_parquet(folder / "*.parquet", columns=["customer_id", "is_fraudster", "bad_12m", "pd_12m"])
    return t.select(
        "customer_id",
        pl.col("is_fraudster").alias("is_ring"),
        "bad_12m",
        (pl.col("is_fraudster") | pl.col("bad_12m")).alias("truly_bad"),
        "pd_12m",
    )


def applied_decisions(
    container: Container, *, date_from: date | None = None, date_to: date | None = None
) -> pl.DataFrame:
    """``customer_id``, ``outcome``, ``grade`` of the decision that applied to each customer's
    newest decided application in the window."""
    rows: list[dict[str, Any]] = []
    after: int | None = None
    with container.uow() as uow:
        while True:
            page = decisioning.list_decisions(
                uow, date_from=date_from, date_to=date_to, after_id=after, limit=5_000
            )
            if not page:
                break
            rows += [r for r in page if r["applied"]]
            after = page[-1]["id"]
    schema = {"customer_id": pl.String, "application_id": pl.Int64, "outcome": pl.String, "grade": pl.String}
    frame = pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema, orient="row")
    return frame.sort("application_id").unique("customer_id", keep="last", maintain_order=True)


def measure_decisions(
    container: Container, *, sandbox: Path, date_from: date | None = None, date_to: date | None = None
) -> dict[str, Any]:
    return decision_quality(
        applied_decisions(container, date_from=date_from, date_to=date_to), customer_truth(sandbox)
    )


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def print_quality(console: Any, q: dict[str, Any]) -> None:
    """The decisions against the truth, as two tables."""
    o = q["outcomes"]
    console.print(
        f"{q['applications']:,} decided applicants of the sandbox: approved {o['approve']:,}, "
        f"declined {o['decline']:,}, referred {o['refer']:,}"
        + (f"; {q['unmatched']:,} decisions on people the sandbox does not know" if q["unmatched"] else "")
    )
    ring, good, bad = q["ring"], q["good"], q["bad"]
    summary = RichTable(title="Decisions against the truth", title_justify="left")
    for col in ("who", "applicants", "measure", "share"):
        summary.add_column(col, justify="left" if col in ("who", "measure") else "right")
    summary.add_row(
        "fraud-ring members", f"{ring['members']:,}", "declined or referred", _pct(ring["stopped_share"])
    )
    summary.add_row(
        "truly good", f"{good['applicants']:,}", "declined (false declines)", _pct(good["false_decline_rate"])
    )
    summary.add_row("truly good", f"{good['applicants']:,}", "referred", _pct(good["referred_share"]))
    summary.add_row("defaulters (no ring)", f"{bad['applicants']:,}", "approved", _pct(bad["approved_share"]))
    console.print(summary)
    grades = RichTable(title="Approvals by grade: realised bad rate", title_justify="left")
    for col in ("grade", "approved", "bad", "bad rate", "default rate", "mean true PD", "ring members"):
        grades.add_column(col, justify="left" if col == "grade" else "right")
    for r in q["by_grade"]:
        grades.add_row(
            r["grade"],
            f"{r['approved']:,}",
            f"{r['bad']:,}",
            _pct(r["bad_rate"]),
            _pct(r["default_rate"]),
            _pct(r["true_pd"]),
            f"{r['ring_members']:,}",
        )
    console.print(grades)
    console.print("bad: a realised 12-month default or a member of a planted fraud ring; truly good: neither")


def truth_command(
    ctx: typer.Context,
    sandbox: Annotated[Path, typer.Option(help="Folder the sandbox bank was generated into.")],
    date_from: Annotated[
        str | None, typer.Option("--from", help="First business date of the decisions (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last business date of the decisions (YYYY-MM-DD).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """The stored decisions against the sandbox's truth: ring members stopped, good applicants
    declined, the realised bad rate of approvals by grade."""
    st = state(ctx)
    try:
        d1 = None if date_from is None else date.fromisoformat(date_from)
        d2 = None if date_to is None else date.fromisoformat(date_to)
        q = measure_decisions(st.container, sandbox=sandbox, date_from=d1, date_to=d2)
    except ValueError as exc:
        raise fail(st.err, InvalidInput(f"dates are YYYY-MM-DD: {exc}")) from None
    except DomainError as exc:
        raise fail(st.err, exc) from None
    print_quality(st.console, q)
    if json_out:
        emit_json(q)
