"""The demo's loan book: lines for customers who take up an offer, then a year of drawdowns,
repayments and ends of day, with every customer behaving as the sandbox's truth says.

Offers come from a plain pre-screen over the ingested extracts (complete KYC, marketing consent,
no bureau delinquency, limit three months of average inflow): a stand-in for the whitelist
strategy until mining lands. Everything the bank does goes through the servicing services and
the end of day; the sandbox only answers how each customer responds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from creditfactory import ledger
from creditfactory.bootstrap import Container, register_eod_steps
from creditfactory.contract import scan
from creditfactory.errors import DomainError
from creditfactory.jobs import current_business_date, open_business_date, run_eod
from creditfactory.money import from_minor, to_minor
from creditfactory.sandbox import World
from creditfactory.servicing import service
from creditfactory.servicing.model import load_products, sample_products_dir
from creditfactory.servicing.store import CreditLine, Instalment, Loan

PRODUCT = "farmer_revolving_line"
TERM = 12


@dataclass
class BookResult:
    offers: int
    responded: int
    lines: int
    loans: int
    disbursed: Decimal
    days: int
    repayments: int
    portfolio: dict[str, Any]
    defaulters_true: int
    defaulters_overdue: int


def _offers(lake: Path, as_of: date, limit: int) -> pl.DataFrame:
    """A plain pre-screen: who may be offered a line, and for how much (yuan)."""
    customers = (
        scan(lake, "customers")
        .filter((pl.col("kyc_status") == "complete") & pl.col("marketing_consent"))
        .select("customer_id", "segment")
    )
    bureau = (
        scan(lake, "bureau_reports")
        .sort("report_date")
        .group_by("customer_id")
        .agg(pl.col("worst_dpd_24m").last(), pl.col("inquiries_3m").last())
    )
    since = date(as_of.year - 1, as_of.month, 1)
    accounts = scan(lake, "deposit_accounts").select("account_id", "customer_id")
    inflow = (
        scan(lake, "account_flows")
        .filter(pl.col("month") > since)
        .join(accounts, on="account_id")
        .group_by("customer_id")
        .agg((pl.col("inflow").sum() / 12).alias("monthly_inflow_fen"))
    )
    frame = (
        customers.join(bureau, on="customer_id", how="left")
        .join(inflow, on="customer_id", how="inner")
        .filter(pl.col("worst_dpd_24m").fill_null(0) == 0)
        .filter(pl.col("inquiries_3m").fill_null(0) <= 3)
        .with_columns(
            (pl.col("monthly_inflow_fen") * 3 / 100 / 1000)
            .floor()
            .clip(5, 100)
            .cast(pl.Int64)
            .alias("limit_k")
        )
        .sort("customer_id")
        .collect()
    )
    # The campaign's reach: everyone eligible, or the first ``limit`` by customer number.
    return frame if limit <= 0 else frame.head(limit)


def run_book(
    c: Container,
    sandbox_dir: Path,
    *,
    as_of: date,
    offers: int,
    days: int,
    console: Console,
    whitelist_offers: pl.DataFrame | None = None,
    from_applications: bool = False,
) -> BookResult | None:
    """Lend for ``days``. With ``from_applications`` the borrowers are the customers whose credit
    lines were opened from signed applications; otherwise the campaign reaches ``offers``
    customers (all when 0) of the whitelist's offers (``customer_id``, ``limit_fen``), or of a
    plain pre-screen when no whitelist is given, and responders get a line at their limit."""
    register_eod_steps()
    start = as_of + timedelta(days=1)
    with c.uow() as uow:
        if uow.session.scalar(select(func.count()).select_from(Loan)):
            return None  # the book was simulated before: the caller prints the portfolio only
    prepare_book(c, start)
    world = World.load(sandbox_dir)
    if from_applications:
        return _lend(c, world, start=start, days=days, console=console, lines=_application_lines(c))
    if whitelist_offers is not None:
        frame = whitelist_offers if offers <= 0 else whitelist_offers.head(offers)
        ids = frame["customer_id"].to_list()
        limits_fen = frame["limit_fen"].to_numpy().astype(np.int64)
    else:
        frame = _offers(c.lake_dir, as_of, offers)
        ids = frame["customer_id"].to_list()
        limits_fen = (frame["limit_k"].to_numpy() * 100_000).astype(np.int64)
    # A short campaign: an SMS, an app pop-up and an outbound call; a response to any counts.
    responded = (
        world.responds(ids, "sms", start)
        | world.responds(ids, "app", start + timedelta(days=1))
        | world.responds(ids, "call", start + timedelta(days=2))
    )
    applied = responded & world.applies(ids, limits_fen, start)
    opened: list[dict[str, Any]] = []
    with c.uow() as uow:
        for i in np.flatnonzero(applied):
            line = service.open_line(
                uow.session,
                customer_id=ids[i],
                product_code=PRODUCT,
                limit=from_minor(int(limits_fen[i])),
                business_date=start,
                clock=c.clock,
            )
            opened.append(
                {
                    "customer_id": ids[i],
                    "line_id": line.id,
                    "limit_fen": int(limits_fen[i]),
                    "term_months": TERM,
                    "repayment_method": "equal_installment",
                }
            )
        uow.commit()
    result = _lend(c, world, start=start, days=days, console=console, lines=opened)
    result.offers, result.responded = len(ids), int(responded.sum())
    return result


def prepare_book(c: Container, start: date) -> None:
    """The sample products, the chart of accounts and the first business date (``start``)."""
    with c.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=c.clock)
        ledger.ensure_chart(uow.session)
        try:
            open_business_date(uow.session, on=start, clock=c.clock)
        except DomainError:
            pass  # opened by an earlier stage
        uow.commit()


def _application_lines(c: Container) -> list[dict[str, Any]]:
    """The active credit lines servicing opened from signed applications."""
    with c.uow() as uow:
        rows = uow.session.execute(
            select(
                CreditLine.customer_id,
                CreditLine.id,
                CreditLine.limit_amount,
                CreditLine.term_months,
                CreditLine.repayment_method,
            )
            .where(CreditLine.application_id.is_not(None), CreditLine.status == "active")
            .order_by(CreditLine.id)
        ).all()
    return [
        {
            "customer_id": cid,
            "line_id": line_id,
            "limit_fen": to_minor(limit),
            "term_months": term or TERM,
            "repayment_method": method or "equal_installment",
        }
        for cid, line_id, limit, term, method in rows
    ]


def _lend(
    c: Container, world: World, *, start: date, days: int, console: Console, lines: list[dict[str, Any]]
) -> BookResult:
    """Drawdowns on ``lines`` as the sandbox's customers want them, then ``days`` of repayments
    (as each customer behaves) and ends of day."""
    ids = [x["customer_id"] for x in lines]
    limits_fen = np.array([x["limit_fen"] for x in lines], dtype=np.int64)
    drawn_fen = world.draws(ids, limits_fen, start) if lines else np.zeros(0, dtype=np.int64)
    loans: list[int] = []
    disbursed = Decimal(0)
    with c.uow() as uow:
        for i, x in enumerate(lines):
            amount = min(int(drawn_fen[i]), int(limits_fen[i]))
            if amount < 100_000:  # below the smallest drawdown any product allows (1,000 yuan)
                continue
            try:
                with uow.session.begin_nested():
                    d = service.draw_down(
                        uow.session,
                        line_id=x["line_id"],
                        amount=from_minor(amount),
                        term=x["term_months"],
                        business_date=start,
                        clock=c.clock,
                        method=x["repayment_method"],
                        key=f"demo:{x['customer_id']}",
                    )
            except DomainError:
                continue  # e.g. below this product's minimum drawdown
            loans.append(d.loan.id)
            disbursed += d.loan.principal
        uow.commit()
        rows = uow.session.execute(
            select(
                Instalment.loan_id,
                Loan.customer_id,
                Instalment.due_date,
                Instalment.principal,
                Instalment.interest,
            ).join(Loan, Loan.id == Instalment.loan_id)
        ).all()
    # When each instalment gets paid, as the sandbox's customers decide.
    by_due: dict[date, list[tuple[int, str, int]]] = defaultdict(list)
    for loan_id, customer_id, due, principal, interest in rows:
        by_due[due].append((loan_id, customer_id, to_minor(principal + interest)))
    payments: dict[date, list[tuple[int, int]]] = defaultdict(list)
    for due, items in by_due.items():
        paid, late = world.repays([x[1] for x in items], due, np.array([x[2] for x in items], dtype=np.int64))
        for (loan_id, _cid, _amt), p, lateness in zip(items, paid.tolist(), late.tolist(), strict=True):
            if lateness >= 0 and p > 0:
                payments[due + timedelta(days=int(lateness))].append((loan_id, p))
    repayments = 0
    with Progress(
        TextColumn("[bold]{task.description:<30}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("a year of ends of day", total=days)
        for _ in range(days):
            with c.uow() as uow:
                today = current_business_date(uow.session)
                for n, (loan_id, amount) in enumerate(payments.get(today, [])):
                    try:
                        service.repay(
                            uow.session,
                            loan_id=loan_id,
                            amount=from_minor(amount),
                            business_date=today,
                            clock=c.clock,
                            key=f"demo:{today.isoformat()}:{n}",
                        )
                        repayments += 1
                    except DomainError:
                        pass  # e.g. a loan already settled by an earlier, larger payment
                uow.commit()
            run_eod(sessions=c.sessions, clock=c.clock)
            bar.update(task, advance=1, description=f"end of day {today.isoformat()}")
    with c.uow() as uow:
        book = service.portfolio(uow.session)
        overdue_customers = set(
            uow.session.scalars(
                select(Loan.customer_id).where(Loan.dpd > 0, Loan.status.in_(("active", "overdue")))
            )
        )
        borrowers = list(uow.session.scalars(select(Loan.customer_id).distinct()))
    horizon = np.datetime64(start + timedelta(days=days), "D")
    defaults = world.default_date(borrowers)
    true_defaulters = {b for b, d in zip(borrowers, defaults, strict=True) if not np.isnat(d) and d < horizon}
    return BookResult(
        offers=len(ids),
        responded=len(ids),
        lines=len(lines),
        loans=len(loans),
        disbursed=disbursed,
        days=days,
        repayments=repayments,
        portfolio=book,
        defaulters_true=len(true_defaulters),
        defaulters_overdue=len(true_defaulters & overdue_customers),
    )
