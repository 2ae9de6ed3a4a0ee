"""Commands of the servicing domain: ``creditfactory schedule``.

``schedule`` prints a repayment schedule from the command line, touching no database::

    creditfactory schedule --amount 100000 --rate 0.0435 --term 12 \\
        --method equal_installment --day-count 30/360 --start 2025-01-15
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, TypeVar

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
