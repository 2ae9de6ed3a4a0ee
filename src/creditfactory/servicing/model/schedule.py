"""Repayment schedules: instalment dates and amounts, re-amortisation and payoff quotes.

Conventions (see ``docs/servicing.md`` for worked examples):

- **Dates.** Due dates are monthly on the anchor day, each computed from the same anchor with
  :func:`creditfactory.clock.add_months` (so a 31st-day loan falls due on 28 Feb and again on
  31 Mar): ``add_months(start, k)`` for instalment ``k``, or ``add_months(first_due, k - 1)``
  when a first due date is given. Periods are ``[start_date, due_date)``.
- **Interest of a period** is ``balance × annual_rate × days / days_in_year``, rounded once to
  the fen at the period with the passed :class:`~creditfactory.money.RoundingPolicy`. ``days``
  is the period's day count (:attr:`Instalment.days`): under 30/360 a full month is 30 days, so
  its interest is exactly ``rate / 12``, and a broken first period counts 30E/360 days; under
  actual/365 and actual/360 it is the actual number of days.
- **Equal instalment (等额本息).** The instalment is the annuity ``P·r(1+r)^n / ((1+r)^n − 1)``
  with ``r = annual_rate / 12`` whatever the day count, rounded once (to the fen, or to
  ``instalment_multiple``). Each period's principal is the instalment less that period's
  interest; the last instalment clears the balance exactly, so it may differ from the others.
  An instalment never carries negative principal.
- **Equal principal (等额本金).** Each instalment repays ``P / n`` rounded to the fen and the last
  repays what is left (the bank convention: 100,000 over 12 months is 8,333.33 eleven times and
  8,333.37 once); interest is on the declining balance.
- **Interest only (先息后本)**: interest every month, all principal with the last instalment.
- **Bullet (到期一次还本付息)**: one instalment at maturity (the date the other methods would
  give their last instalment) with the principal and the interest of the whole term, rounded
  once.

The scheduled principal always sums exactly to the amount, and no balance is ever negative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from creditfactory.clock import DayCount, add_months
from creditfactory.errors import InvalidInput
from creditfactory.money import RoundingPolicy, calc_context
from creditfactory.servicing.model.allocation import Due
from creditfactory.servicing.model.product import RepaymentMethod

__all__ = [
    "Dues",
    "Instalment",
    "Payoff",
    "ReamortiseOption",
    "Reamortisation",
    "Schedule",
    "ScheduleError",
    "annuity_payment",
    "generate_schedule",
    "payoff_amount",
    "payoff_quote",
    "period_interest",
    "reamortise",
]

#: Amounts overdue on a loan, oldest first (see :class:`~creditfactory.servicing.model.allocation.Due`).
Dues = Sequence[Due]

_ZERO = Decimal(0)

#: The largest amount a schedule takes: amounts are kept as whole fen in a 64-bit integer column,
#: so nothing above ``(2**63 - 1)`` fen can be booked (and it keeps every intermediate well
#: inside the 34-digit calculation precision).
_MAX_AMOUNT = Decimal(2**63 - 1).scaleb(-2)


class ScheduleError(InvalidInput):
    """The inputs of a schedule, a re-amortisation or a payoff quote are invalid."""

    code = "invalid_schedule"
    title = "Invalid schedule request"


@dataclass(frozen=True, slots=True)
class Instalment:
    """One instalment of a schedule: the period ``[start_date, due_date)`` and what falls due."""

    number: int
    start_date: date
    due_date: date
    #: The period's day count used for its interest (30 for a full month under 30/360).
    days: int
    principal: Decimal
    interest: Decimal
    #: Principal still owed after this instalment is paid.
    balance_after: Decimal

    @property
    def total(self) -> Decimal:
        """Principal plus interest due on ``due_date``."""
        return self.principal + self.interest

    def as_dict(self) -> dict[str, Any]:
        """Plain values (dates ISO, amounts as strings) for JSON."""
        return {
            "number": self.number,
            "start_date": self.start_date.isoformat(),
            "due_date": self.due_date.isoformat(),
            "days": self.days,
            "principal": str(self.principal),
            "interest": str(self.interest),
            "total": str(self.total),
            "balance_after": str(self.balance_after),
        }


@dataclass(frozen=True, slots=True)
class Schedule:
    """A repayment schedule: the instalments of ``principal`` from ``start``, with totals.

    ``level_instalment`` is the rounded equal instalment (等额本息) and ``level_principal`` the
    regular principal part (等额本金); both are ``None`` for the other methods.
    """

    principal: Decimal
    annual_rate: Decimal
    method: RepaymentMethod
    day_count: DayCount
    start: date
    instalments: tuple[Instalment, ...]
    level_instalment: Decimal | None = None
    level_principal: Decimal | None = None

    @property
    def term(self) -> int:
        """Number of instalments."""
        return len(self.instalments)

    @property
    def maturity_date(self) -> date:
        return self.instalments[-1].due_date

    @property
    def total_principal(self) -> Decimal:
        return sum((i.principal for i in self.instalments), _ZERO)

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest for i in self.instalments), _ZERO)

    @property
    def total_payment(self) -> Decimal:
        return self.total_principal + self.total_interest

    def instalment(self, number: int) -> Instalment:
        """The instalment with that number (raises :class:`KeyError` if there is none)."""
        for inst in self.instalments:
            if inst.number == number:
                return inst
        raise KeyError(number)

    def balance_before(self, number: int) -> Decimal:
        """Principal owed at the start of instalment ``number``'s period."""
        inst = self.instalment(number)
        return inst.balance_after + inst.principal

    def as_dict(self) -> dict[str, Any]:
        return {
            "principal": str(self.principal),
            "annual_rate": str(self.annual_rate),
            "method": self.method.value,
            "day_count": self.day_count.value,
            "start": self.start.isoformat(),
            "level_instalment": None if self.level_instalment is None else str(self.level_instalment),
            "instalments": [i.as_dict() for i in self.instalments],
            "totals": {
                "principal": str(self.total_principal),
                "interest": str(self.total_interest),
                "total": str(self.total_payment),
            },
        }


# --------------------------------------------------------------------------------------------
# Validation helpers


def _amount(value: object, what: str, policy: RoundingPolicy, *, positive: bool = True) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ScheduleError(f"{what} must be a finite number, got {number}", field=what)
    if number < 0 or (positive and number == 0):
        raise ScheduleError(
            f"{what} must be {'positive' if positive else 'zero or more'}, got {number}", field=what
        )
    if number > _MAX_AMOUNT:
        raise ScheduleError(f"{what} {number} is too large: at most {_MAX_AMOUNT}", field=what)
    rounded = policy.round(number)
    if number != rounded:
        raise ScheduleError(f"{what} {number} has more places than the rounding policy allows", field=what)
    return rounded  # the same amount, written with the policy's places (100000 → 100000.00)


def _rate(value: object, what: str = "annual_rate") -> Decimal:
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    rate = Decimal(value)
    if not rate.is_finite() or not 0 <= rate < 1:
        raise ScheduleError(
            f"{what} must be an annual fraction in [0, 1) such as 0.0435, got {rate}", field=what
        )
    return rate


def _date(value: object, what: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{what} must be a datetime.date, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------------
# Building blocks


@dataclass(frozen=True, slots=True)
class _Period:
    start: date
    due: date
    days: int


def period_interest(
    balance: Decimal, annual_rate: Decimal, days: int, day_count: DayCount, policy: RoundingPolicy
) -> Decimal:
    """``balance × annual_rate × days / days_in_year``, rounded once with ``policy``."""
    with calc_context():
        exact = balance * annual_rate * Decimal(days) / Decimal(day_count.days_in_year)
    return policy.round(exact)


def annuity_payment(principal: Decimal, annual_rate: Decimal, periods: int) -> Decimal:
    """The unrounded equal instalment ``P·r(1+r)^n / ((1+r)^n − 1)``, ``r = annual_rate / 12``.

    ``P / n`` when the rate is zero.
    """
    if periods < 1:
        raise ScheduleError(f"an annuity needs at least one period, got {periods}", field="term")
    with calc_context():
        if annual_rate == 0:
            return principal / Decimal(periods)
        r = annual_rate / Decimal(12)
        growth = (Decimal(1) + r) ** periods
        return principal * r * growth / (growth - Decimal(1))


def _periods(*, start: date, term: int, day_count: DayCount, first_due: date | None) -> list[_Period]:
    anchor_first = first_due is not None
    try:
        dues = [add_months(first_due, k) if anchor_first else add_months(start, k + 1) for k in range(term)]  # type: ignore[arg-type]
    except ValueError:
        what, anchor = ("first_due", first_due) if anchor_first else ("start", start)
        raise ScheduleError(
            f"{what} {anchor.isoformat()} with a term of {term} months puts due dates after "  # type: ignore[union-attr]
            "the year 9999",
            field=what,
        ) from None
    periods: list[_Period] = []
    previous = start
    for k, due in enumerate(dues):
        full = k > 0 or not anchor_first or due == add_months(start, 1)
        if day_count is DayCount.THIRTY_E_360 and full:
            days = 30
        else:
            days = day_count.days(previous, due)
        periods.append(_Period(previous, due, days))
        previous = due
    return periods


def _round_level(amount: Decimal, policy: RoundingPolicy, multiple: Decimal | None) -> Decimal:
    if multiple is None:
        return policy.round(amount)
    return policy.round_to_multiple(amount, multiple)


def _level_principal(balance: Decimal, count: int, policy: RoundingPolicy) -> Decimal:
    """``balance / count`` rounded; rounded down instead if the rounded part would overrun."""
    with calc_context():
        share = balance / Decimal(count)
    part = policy.round(share)
    if part * (count - 1) > balance:
        part = policy.with_mode("down").round(share)
    return part


def _amortise(
    *,
    method: RepaymentMethod,
    principal: Decimal,
    annual_rate: Decimal,
    periods: Sequence[_Period],
    day_count: DayCount,
    policy: RoundingPolicy,
    first_number: int,
    level_instalment: Decimal | None = None,
    level_principal: Decimal | None = None,
    stop_when_repaid: bool = False,
) -> tuple[list[Instalment], Decimal | None, Decimal | None]:
    rows: list[Instalment] = []
    balance = principal
    last_index = len(periods) - 1

    def add(index: int, period: _Period, principal_part: Decimal, interest: Decimal) -> None:
        nonlocal balance
        balance -= principal_part
        rows.append(
            Instalment(
                number=first_number + index,
                start_date=period.start,
                due_date=period.due,
                days=period.days,
                principal=principal_part,
                interest=interest,
                balance_after=balance,
            )
        )

    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        assert level_instalment is not None
        for index, period in enumerate(periods):
            interest = period_interest(balance, annual_rate, period.days, day_count, policy)
            final = index == last_index or (stop_when_repaid and balance + interest <= level_instalment)
            part = balance if final else min(max(level_instalment - interest, _ZERO), balance)
            add(index, period, part, interest)
            if final:
                break
        return rows, level_instalment, None

    if method is RepaymentMethod.EQUAL_PRINCIPAL:
        if level_principal is None:
            level_principal = _level_principal(principal, len(periods), policy)
        for index, period in enumerate(periods):
            interest = period_interest(balance, annual_rate, period.days, day_count, policy)
            final = index == last_index or (stop_when_repaid and balance <= level_principal)
            part = balance if final else min(level_principal, balance)
            add(index, period, part, interest)
            if final:
                break
        return rows, None, level_principal

    # Interest only and bullet: principal with the last period.
    for index, period in enumerate(periods):
        interest = period_interest(balance, annual_rate, period.days, day_count, policy)
        add(index, period, balance if index == last_index else _ZERO, interest)
    return rows, None, None


def _bullet_period(periods: Sequence[_Period]) -> list[_Period]:
    return [_Period(periods[0].start, periods[-1].due, sum(p.days for p in periods))]


# --------------------------------------------------------------------------------------------
# Public API


def generate_schedule(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    term: int,
    method: RepaymentMethod | str,
    start: date,
    day_count: DayCount,
    policy: RoundingPolicy,
    instalment_multiple: Decimal | None = None,
    first_due: date | None = None,
) -> Schedule:
    """The repayment schedule of ``principal`` lent on ``start`` for ``term`` months.

    ``first_due`` moves the first due date (a broken first period); later due dates follow it
    monthly on its day. ``instalment_multiple`` (equal instalment only) rounds the instalment
    to a multiple such as ``Decimal("1")`` with the policy's mode. Raises
    :class:`ScheduleError` for a non-positive amount or term, an amount above the largest that
    can be booked (``2**63 - 1`` fen), a rate outside ``[0, 1)``, an unknown method, a first due
    date not after ``start``, or due dates that would fall after the year 9999.
    """
    amount = _amount(principal, "principal", policy)
    rate = _rate(annual_rate)
    if isinstance(term, bool) or not isinstance(term, int):
        raise TypeError(f"term must be an int, got {type(term).__name__}")
    if not 1 <= term <= 600:
        raise ScheduleError(f"term must be 1..600 months, got {term}", field="term")
    try:
        chosen = RepaymentMethod(method)
    except ValueError:
        allowed = ", ".join(m.value for m in RepaymentMethod)
        raise ScheduleError(
            f"unknown repayment method {method!r}; use one of {allowed}", field="method"
        ) from None
    day_count = DayCount(day_count)
    _date(start, "start")
    if first_due is not None and _date(first_due, "first_due") <= start:
        raise ScheduleError(
            f"first due date {first_due.isoformat()} must be after the start {start.isoformat()}",
            field="first_due",
        )
    if instalment_multiple is not None:
        _amount(instalment_multiple, "instalment_multiple", policy)

    periods = _periods(start=start, term=term, day_count=day_count, first_due=first_due)
    level: Decimal | None = None
    if chosen is RepaymentMethod.EQUAL_INSTALLMENT:
        level = _round_level(annuity_payment(amount, rate, term), policy, instalment_multiple)
        if level <= 0:
            raise ScheduleError(
                f"the instalment rounds to {level}; use a finer instalment multiple",
                field="instalment_multiple",
            )
    elif chosen is RepaymentMethod.BULLET:
        periods = _bullet_period(periods)
    rows, level, level_principal = _amortise(
        method=chosen,
        principal=amount,
        annual_rate=rate,
        periods=periods,
        day_count=day_count,
        policy=policy,
        first_number=1,
        level_instalment=level,
    )
    return Schedule(
        principal=amount,
        annual_rate=rate,
        method=chosen,
        day_count=day_count,
        start=start,
        instalments=tuple(rows),
        level_instalment=level,
        level_principal=level_principal,
    )


class ReamortiseOption(StrEnum):
    """What an early partial repayment changes."""

    #: Keep the remaining number of instalments; the instalment falls (减少月供).
    KEEP_TERM = "keep_term"
    #: Keep the instalment (or the principal part for 等额本金); the term shortens (缩短期限).
    KEEP_INSTALMENT = "keep_instalment"


@dataclass(frozen=True, slots=True)
class Reamortisation:
    """The result of an early partial repayment.

    ``interest_due`` is the interest accrued on ``balance_before`` from the start of the current
    period (the last due date) to the prepayment date, payable together with the prepayment (zero
    on a due date); the new first period counts the period's remaining days, so the two add up to
    the period's :attr:`Instalment.days`. ``schedule`` holds the remaining instalments on the new
    balance, numbered on from the paid ones; its ``principal`` is the new balance and its
    ``start`` the prepayment date.
    """

    balance_before: Decimal
    prepayment: Decimal
    interest_due: Decimal
    schedule: Schedule

    @property
    def balance_after(self) -> Decimal:
        return self.schedule.principal


def reamortise(
    *,
    schedule: Schedule,
    paid_instalments: int,
    prepayment: Decimal,
    option: ReamortiseOption | str,
    policy: RoundingPolicy,
    prepayment_date: date | None = None,
    instalment_multiple: Decimal | None = None,
) -> Reamortisation:
    """Re-amortise ``schedule`` after an early partial repayment of principal.

    The borrower has paid the first ``paid_instalments`` instalments of ``schedule`` (which may
    itself be the result of an earlier re-amortisation) and repays ``prepayment`` of
    principal on ``prepayment_date`` (default: the due date of the last paid instalment, or the
    start). The remaining due dates stay where they were. With ``keep_term`` the same number of
    instalments remains and the instalment is recomputed on the new balance; with
    ``keep_instalment`` the instalment (等额本息) or its principal part (等额本金) stays and the
    term shortens. A prepayment between due dates also returns the interest accrued to that day
    (``interest_due``), and the next period's interest runs on the new balance from then.

    Raises :class:`ScheduleError` when the prepayment is not positive or would repay the whole
    balance (quote a payoff instead), the date is outside the current period, or
    ``keep_instalment`` is asked of interest-only or bullet loans (they have no instalment to keep).
    """
    try:
        chosen = ReamortiseOption(option)
    except ValueError:
        allowed = ", ".join(o.value for o in ReamortiseOption)
        raise ScheduleError(
            f"unknown re-amortisation option {option!r}; use {allowed}", field="option"
        ) from None
    paid = paid_instalments
    if isinstance(paid, bool) or not isinstance(paid, int) or not 0 <= paid < schedule.term:
        raise ScheduleError(
            f"paid_instalments must be 0..{schedule.term - 1}, got {paid_instalments}",
            field="paid_instalments",
        )
    amount = _amount(prepayment, "prepayment", policy)
    last_due = schedule.instalments[paid - 1].due_date if paid else schedule.start
    balance = schedule.instalments[paid - 1].balance_after if paid else schedule.principal
    on = last_due if prepayment_date is None else _date(prepayment_date, "prepayment_date")
    remaining = schedule.instalments[paid:]
    if not last_due <= on < remaining[0].due_date:
        raise ScheduleError(
            f"prepayment date {on.isoformat()} must be on or after {last_due.isoformat()} and before "
            f"the next due date {remaining[0].due_date.isoformat()}",
            field="prepayment_date",
        )
    if amount >= balance:
        raise ScheduleError(
            f"prepayment {amount} repays the whole balance {balance}; quote a payoff instead",
            field="prepayment",
        )
    method = schedule.method
    if chosen is ReamortiseOption.KEEP_INSTALMENT and method in (
        RepaymentMethod.INTEREST_ONLY,
        RepaymentMethod.BULLET,
    ):
        raise ScheduleError(f"{method.value} loans have no instalment to keep; use keep_term", field="option")

    day_count = schedule.day_count
    interest_due = _ZERO
    first = remaining[0]
    # The current period splits at the prepayment: its days to that day (by the day count, capped
    # at the period's days, as the daily accrual counts them) on the old balance, the rest on the
    # new, so the two parts always add up to the period's days (30 for a full 30/360 month, even
    # from 31 Jan to 28 Feb). The period starts at its own start date: the last due date, or an
    # earlier prepayment in the same period.
    elapsed = min(max(day_count.days(first.start_date, on), 0), first.days)
    if elapsed:
        interest_due = period_interest(balance, schedule.annual_rate, elapsed, day_count, policy)
    first_days = first.days - elapsed
    periods = [_Period(on, first.due_date, first_days)]
    periods += [_Period(i.start_date, i.due_date, i.days) for i in remaining[1:]]

    new_balance = balance - amount
    level: Decimal | None = None
    level_principal: Decimal | None = None
    stop = False
    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        if chosen is ReamortiseOption.KEEP_TERM:
            level = _round_level(
                annuity_payment(new_balance, schedule.annual_rate, len(periods)), policy, instalment_multiple
            )
        else:
            assert schedule.level_instalment is not None
            level, stop = schedule.level_instalment, True
    elif method is RepaymentMethod.EQUAL_PRINCIPAL and chosen is ReamortiseOption.KEEP_INSTALMENT:
        assert schedule.level_principal is not None
        level_principal = schedule.level_principal
        periods = periods[: max(1, math.ceil(new_balance / level_principal))]
        stop = True

    rows, level, level_principal = _amortise(
        method=method,
        principal=new_balance,
        annual_rate=schedule.annual_rate,
        periods=periods,
        day_count=day_count,
        policy=policy,
        first_number=first.number,
        level_instalment=level,
        level_principal=level_principal,
        stop_when_repaid=stop,
    )
    return Reamortisation(
        balance_before=balance,
        prepayment=amount,
        interest_due=interest_due,
        schedule=Schedule(
            principal=new_balance,
            annual_rate=schedule.annual_rate,
            method=method,
            day_count=day_count,
            start=on,
            instalments=tuple(rows),
            level_instalment=level,
            level_principal=level_principal,
        ),
    )


@dataclass(frozen=True, slots=True)
class Payoff:
    """What settles a loan today: principal not yet due, everything overdue, accrued interest."""

    principal: Decimal
    overdue: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.overdue + self.interest


def payoff_quote(
    *,
    balance: Decimal,
    annual_rate: Decimal,
    day_count: DayCount,
    last_due_or_disbursement: date,
    payoff_date: date,
    overdue: Dues,
    policy: RoundingPolicy,
) -> Payoff:
    """The amount that settles a loan on ``payoff_date``, part by part.

    ``balance`` is the principal not yet fallen due (the balance after the last due date);
    ``overdue`` are the unpaid amounts of instalments already due (their principal, interest,
    fees and the penalty interest accrued so far). Interest on ``balance`` accrues from
    ``last_due_or_disbursement`` to ``payoff_date`` by the day count (30E/360 days under 30/360)
    and is rounded once.
    """
    principal = _amount(balance, "balance", policy, positive=False)
    rate = _rate(annual_rate)
    start = _date(last_due_or_disbursement, "last_due_or_disbursement")
    end = _date(payoff_date, "payoff_date")
    if end < start:
        raise ScheduleError(
            f"payoff date {end.isoformat()} is before the last due date {start.isoformat()}",
            field="payoff_date",
        )
    days = DayCount(day_count).days(start, end)
    interest = period_interest(principal, rate, days, DayCount(day_count), policy)
    return Payoff(principal=principal, overdue=sum((d.total for d in overdue), _ZERO), interest=interest)


def payoff_amount(
    *,
    balance: Decimal,
    annual_rate: Decimal,
    day_count: DayCount,
    last_due_or_disbursement: date,
    payoff_date: date,
    overdue: Dues,
    policy: RoundingPolicy,
) -> Decimal:
    """Outstanding principal + overdue amounts + interest accrued to ``payoff_date``.

    The total of :func:`payoff_quote`, which gives the parts.
    """
    return payoff_quote(
        balance=balance,
        annual_rate=annual_rate,
        day_count=day_count,
        last_due_or_disbursement=last_due_or_disbursement,
        payoff_date=payoff_date,
        overdue=overdue,
        policy=policy,
    ).total
