"""Commands of the servicing domain: ``creditfactory schedule``.

``schedule`` prints a repayment schedule from the command line, touching no database::

    creditfactory schedule --amount 100000 --rate 0.0435 --term 12 \\
        --method equal_installment --day-count 30/360 --start 2025-01-15
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.clock import DayCount
from creditfactory.errors import InvalidInput
from creditfactory.money import RoundingMode, RoundingPolicy, to_decimal
from creditfactory.servicing.model.product import RepaymentMethod
from creditfactory.servicing.model.schedule import Schedule, generate_schedule

__all__ = ["app", "schedule"]

_E = TypeVar("_E", bound=StrEnum)

app = typer.Typer(help="Loan servicing: schedules.", no_args_is_help=True)


def _choice(enum: type[_E], text: str, option: str) -> _E:
    try:
        return enum(text.strip())
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidInput(f"{option}: unknown value {text!r}; use one of {allowed}", option=option) from None


def _number(text: str, option: str) -> Decimal:
    try:
        return to_decimal(text)
    except ValueError:
        raise InvalidInput(f"{option}: {text!r} is not a number", option=option) from None


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{option}: {text!r} is not a date (YYYY-MM-DD)", option=option) from None


def _yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _table(result: Schedule, title: str) -> RichTable:
    table = RichTable(title=title, title_justify="left")
    table.add_column("period", justify="right")
    table.add_column("due date")
    for name in ("principal", "interest", "total", "remaining balance"):
        table.add_column(name, justify="right")
    for inst in result.instalments:
        table.add_row(
            str(inst.number),
            inst.due_date.isoformat(),
            _yuan(inst.principal),
            _yuan(inst.interest),
            _yuan(inst.total),
            _yuan(inst.balance_after),
        )
    table.add_section()
    table.add_row(
        "[bold]total",
        "",
        f"[bold]{_yuan(result.total_principal)}",
        f"[bold]{_yuan(result.total_interest)}",
        f"[bold]{_yuan(result.total_payment)}",
        "",
    )
    return table


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    amount: Annotated[str, typer.Option("--amount", help="Principal in yuan, e.g. 100000.")],
    rate: Annotated[str, typer.Option("--rate", help="Annual interest rate as a fraction, e.g. 0.0435.")],
    term: Annotated[int, typer.Option("--term", help="Number of monthly instalments.")],
    start: Annotated[str, typer.Option("--start", help="Disbursement date, YYYY-MM-DD.")],
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="equal_installment (等额本息), equal_principal (等额本金), interest_only, bullet.",
        ),
    ] = RepaymentMethod.EQUAL_INSTALLMENT.value,
    day_count: Annotated[
        str, typer.Option("--day-count", help="30/360, actual/365 or actual/360.")
    ] = DayCount.THIRTY_E_360.value,
    rounding: Annotated[
        str, typer.Option("--rounding", help="half_up, half_even, down, up, ceiling or floor.")
    ] = RoundingMode.HALF_UP.value,
    multiple: Annotated[
        str | None, typer.Option("--multiple", help="Round the equal instalment to this multiple, e.g. 1.")
    ] = None,
    first_due: Annotated[
        str | None, typer.Option("--first-due", help="First due date if not one month after the start.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line of the schedule.")] = False,
) -> None:
    """Print the repayment schedule of a loan (no database needed)."""
    st = state(ctx)
    try:
        result = generate_schedule(
            principal=_number(amount, "--amount"),
            annual_rate=_number(rate, "--rate"),
            term=term,
            method=_choice(RepaymentMethod, method, "--method"),
            start=_day(start, "--start"),
            day_count=_choice(DayCount, day_count, "--day-count"),
            policy=RoundingPolicy(_choice(RoundingMode, rounding, "--rounding")),
            instalment_multiple=None if multiple is None else _number(multiple, "--multiple"),
            first_due=None if first_due is None else _day(first_due, "--first-due"),
        )
    except InvalidInput as exc:
        raise fail(st.err, exc) from None
    title = (
        f"{result.method.value} ({result.method.label}) {_yuan(result.principal)} at {result.annual_rate} "
        f"for {term} months, {result.day_count.value}"
    )
    st.console.print(_table(result, title))
    if json_out:
        emit_json(result.as_dict())


# ---------------------------------------------------------------------------- books and batch

eod_app = typer.Typer(help="End of day: close the business date and open the next.", no_args_is_help=True)
products_app = typer.Typer(help="Loan products (YAML definitions).", no_args_is_help=True)
lines_app = typer.Typer(help="Credit lines: open, freeze, unfreeze, close.", no_args_is_help=True)
loans_app = typer.Typer(help="Loans: draw down, repay, show, write off; the portfolio.", no_args_is_help=True)


def _container(ctx: typer.Context):  # type: ignore[no-untyped-def]
    # The container's bootstrap has registered every domain's end-of-day steps.
    return state(ctx).container


@eod_app.command("open")
def eod_open(
    ctx: typer.Context, on: Annotated[str, typer.Option("--date", help="First business date.")]
) -> None:
    """Open the first business date (once)."""
    from creditfactory import ledger
    from creditfactory.jobs import open_business_date

    c = _container(ctx)
    st = state(ctx)
    try:
        with c.uow() as uow:
            opened = open_business_date(uow.session, on=_day(on, "--date"), clock=c.clock)
            ledger.ensure_chart(uow.session)
            uow.commit()
    except Exception as exc:  # DomainError or a bad date
        raise fail(st.err, exc) from None
    st.console.print(f"business date open: {opened.isoformat()}")


@eod_app.command("run")
def eod_run(
    ctx: typer.Context,
    on: Annotated[
        str | None, typer.Option("--date", help="The open business date to close (default: it).")
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="Loans per chunk (one transaction each).")] = 50_000,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Chunks run at once, each on its own connection (default: 2 on PostgreSQL, 1 on SQLite)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Close the business date: accrual, due and overdue, penalty, classification, expiry, trial balance."""
    from creditfactory.errors import DomainError
    from creditfactory.jobs import run_eod

    c = _container(ctx)
    st = state(ctx)
    try:
        report = run_eod(
            sessions=c.sessions,
            clock=c.clock,
            business_date=_day(on, "--date") if on else None,
            chunk_size=chunk_size,
            workers=workers,
            progress=lambda name, stage: st.err.print(f"  {name} {stage}") if not json_out else None,
        )
    except DomainError as exc:
        raise fail(st.err, exc) from None
    if report.already_closed:
        st.console.print(f"{report.business_date.isoformat()} is already closed: nothing to do")
    else:
        table = RichTable(title=f"End of day {report.business_date.isoformat()}", title_justify="left")
        for col in ("step", "status", "items", "seconds", "details"):
            table.add_column(col)
        for s in report.steps:
            table.add_row(
                s.name,
                s.status,
                f"{s.items:,}",
                f"{s.seconds:.2f}",
                ", ".join(f"{k}={v}" for k, v in s.details.items()),
            )
        st.console.print(table)
        st.console.print(f"next business date: {report.next_date.isoformat() if report.next_date else '-'}")
    if json_out:
        emit_json(report.to_json())


@eod_app.command("status")
def eod_status(
    ctx: typer.Context,
    on: Annotated[
        str | None, typer.Option("--date", help="Business date (default: the last closed one).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Steps of an end of day with their status and timings."""
    from creditfactory.jobs import status
    from creditfactory.jobs.store import BusinessDateRow

    c = _container(ctx)
    st = state(ctx)
    with c.uow() as uow:
        row = uow.session.get(BusinessDateRow, "default")
        if row is None:
            raise fail(st.err, InvalidInput("no business date is open yet"))
        day = _day(on, "--date") if on else (row.last_closed_date or row.business_date)
        runs = status(uow.session, business_date=day)
        table = RichTable(
            title=f"End of day {day.isoformat()} (open business date {row.business_date.isoformat()})"
        )
        for col in ("step", "status", "attempts", "items", "seconds", "error"):
            table.add_column(col)
        out = []
        for r in runs:
            table.add_row(
                r.job, r.status, str(r.attempts), f"{r.items:,}", f"{r.seconds:.2f}", (r.error or "")[:80]
            )
            out.append(
                {
                    "step": r.job,
                    "status": str(r.status),
                    "attempts": r.attempts,
                    "items": r.items,
                    "seconds": round(r.seconds, 3),
                }
            )
    st.console.print(table)
    if json_out:
        emit_json({"business_date": day.isoformat(), "steps": out})


@contextmanager
def _work(ctx: typer.Context) -> Iterator[tuple[Any, Any, Any]]:
    """One command's unit of work: (container, session, console); committed when the block ends
    normally, and an anticipated error becomes one clear message with exit code 2."""
    from creditfactory.errors import DomainError

    c = _container(ctx)
    st = state(ctx)
    try:
        with c.uow() as uow:
            yield c, uow.session, st.console
            uow.commit()
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None


def _today(session: Any) -> date:
    from creditfactory.jobs import current_business_date

    return current_business_date(session)


@products_app.command("load")
def products_load(
    ctx: typer.Context,
    path: Annotated[
        str | None, typer.Argument(help="A YAML file or folder (default: the sample products).")
    ] = None,
) -> None:
    """Define or update loan products from YAML."""
    from pathlib import Path

    from creditfactory.servicing import service
    from creditfactory.servicing.model import load_products, sample_products_dir

    with _work(ctx) as (c, session, out):
        for product in load_products(Path(path) if path else sample_products_dir()).values():
            row = service.define_product(session, product, clock=c.clock)
            out.print(f"{product.code}: {product.name} (version {row.version})")


@lines_app.command("open")
def line_open(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="Customer id.")],
    product: Annotated[str, typer.Option(help="Product code.")],
    limit: Annotated[str, typer.Option(help="Credit limit in yuan.")],
    term: Annotated[
        int | None, typer.Option(help="The contract's term in months (drawdowns that name none use it).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="The contract's repayment method: equal_installment, equal_principal, interest_only, …"
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open a credit line on the open business date."""
    from creditfactory.servicing import service

    with _work(ctx) as (c, session, out):
        line = service.open_line(
            session,
            customer_id=customer,
            product_code=product,
            limit=_number(limit, "--limit"),
            business_date=_today(session),
            clock=c.clock,
            term_months=term,
            repayment_method=method,
        )
        out.print(f"line {line.id}: {line.limit_amount} for {customer}, expires {line.expiry_date}")
        if json_out:
            emit_json(
                {
                    "line_id": line.id,
                    "limit": str(line.limit_amount),
                    "expiry_date": line.expiry_date.isoformat(),
                    "term_months": line.term_months,
                    "repayment_method": line.repayment_method,
                }
            )


@lines_app.command("change")
def line_change(
    ctx: typer.Context,
    line_id: Annotated[int, typer.Argument(help="Line id.")],
    event: Annotated[str, typer.Argument(help="freeze, unfreeze or close.")],
) -> None:
    """Freeze, unfreeze or close a line."""
    from creditfactory.servicing import service

    with _work(ctx) as (c, session, out):
        line = service.change_line(
            session, line_id=line_id, event=event, business_date=_today(session), clock=c.clock
        )
        out.print(f"line {line_id} is {line.status}")


@loans_app.command("draw")
def loan_draw(
    ctx: typer.Context,
    line_id: Annotated[int, typer.Option("--line", help="Credit line id.")],
    amount: Annotated[str, typer.Option(help="Amount in yuan.")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key never draws twice.")],
    term: Annotated[
        int | None, typer.Option(help="Term in months (default: the line's contract term).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="Repayment method (default: the line's contract method, else the product's first)."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Draw down on a line and disburse."""
    from creditfactory.servicing import service

    with _work(ctx) as (c, session, out):
        drawn = service.draw_down(
            session,
            line_id=line_id,
            amount=_number(amount, "--amount"),
            term=term,
            business_date=_today(session),
            clock=c.clock,
            method=method,
            key=key,
        )
        loan = drawn.loan
        out.print(f"loan {loan.id}: {loan.principal} disbursed, matures {loan.maturity_date}")
        if json_out:
            emit_json(
                {"loan_id": loan.id, "principal": str(loan.principal), "instalments": len(drawn.instalments)}
            )


@loans_app.command("repay")
def loan_repay(
    ctx: typer.Context,
    loan_id: Annotated[int, typer.Argument(help="Loan id.")],
    amount: Annotated[str, typer.Option(help="Amount in yuan.")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key never applies twice.")],
    prepayment: Annotated[
        str | None,
        typer.Option(
            help="An early partial repayment keeps the instalment (keep_instalment: the term shortens) "
            "or the term (keep_term: the instalment falls); default: the product's choice."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply a repayment through the waterfall (dues first, then prepayment with re-amortisation;
    payoff settles)."""
    from creditfactory.servicing import service

    with _work(ctx) as (c, session, out):
        result = service.repay(
            session,
            loan_id=loan_id,
            amount=_number(amount, "--amount"),
            business_date=_today(session),
            clock=c.clock,
            key=key,
            prepayment=prepayment,
        )
        t = result.transaction
        out.print(
            f"loan {loan_id}: principal {t.principal}, interest {t.interest}, penalty {t.penalty}, excess {t.excess}"
            + (" — settled" if result.settled else "")
        )
        if json_out:
            emit_json(
                {
                    "loan_id": loan_id,
                    "principal": str(t.principal),
                    "interest": str(t.interest),
                    "penalty": str(t.penalty),
                    "excess": str(t.excess),
                    "settled": result.settled,
                }
            )


@loans_app.command("show")
def loan_show(ctx: typer.Context, loan_id: Annotated[int, typer.Argument(help="Loan id.")]) -> None:
    """A loan with its schedule and what is paid."""
    from creditfactory.errors import DomainError
    from creditfactory.servicing import service

    c = _container(ctx)
    st = state(ctx)
    try:
        with c.uow() as uow:
            loan, inst = service.get_loan(uow.session, loan_id)
            uow.session.expunge_all()  # keep the loaded values once the unit of work ends
    except DomainError as exc:
        raise fail(st.err, exc) from None
    st.console.print(
        f"loan {loan.id} ({loan.product_code}, {loan.method}) {loan.status}: principal outstanding "
        f"{loan.outstanding_principal}, interest receivable {loan.interest_receivable}, penalty "
        f"{loan.penalty_receivable}, DPD {loan.dpd}, tier {loan.tier}"
    )
    table = RichTable()
    for col in ("no", "due", "principal", "interest", "paid principal", "paid interest", "status"):
        table.add_column(col)
    for i in inst:
        table.add_row(
            str(i.number),
            i.due_date.isoformat(),
            _yuan(i.principal),
            _yuan(i.interest),
            _yuan(i.paid_principal),
            _yuan(i.paid_interest),
            i.status,
        )
    st.console.print(table)


@loans_app.command("write-off")
def loan_write_off(
    ctx: typer.Context,
    loan_id: Annotated[int, typer.Argument(help="Loan id.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the entry).")],
) -> None:
    """Write a loan off: principal and receivables to loss."""
    from creditfactory.servicing import service

    with _work(ctx) as (c, session, out):
        service.write_off(
            session, loan_id=loan_id, business_date=_today(session), clock=c.clock, reason=reason
        )
        out.print(f"loan {loan_id} written off")


@loans_app.command("portfolio")
def loan_portfolio(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Outstanding principal by five-tier class and the NPL ratio."""
    from creditfactory.servicing import service
    from creditfactory.servicing.model import Tier

    c = _container(ctx)
    st = state(ctx)
    with c.uow() as uow:
        book = service.portfolio(uow.session)
    table = RichTable(title="Portfolio by class (五级分类)")
    for col in ("class", "loans", "principal"):
        table.add_column(col)
    for tier in Tier:
        row = book["by_tier"].get(tier.value, {"loans": 0, "principal": Decimal("0")})
        table.add_row(f"{tier.label} {tier.value}", f"{row['loans']:,}", _yuan(row["principal"]))
    st.console.print(table)
    st.console.print(f"NPL ratio (次级+可疑+损失): {book['npl_ratio']:.2%}")
    if json_out:
        emit_json(
            {
                "principal": str(book["principal"]),
                "npl_ratio": float(book["npl_ratio"]),
                "by_tier": {
                    k: {"loans": v["loans"], "principal": str(v["principal"])}
                    for k, v in book["by_tier"].items()
                },
            }
        )
