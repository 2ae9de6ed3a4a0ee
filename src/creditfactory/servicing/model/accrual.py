"""Daily interest accrual, posted to the fen without losing the fractions.

**The exact daily amount** is ``balance × annual_rate / days_in_year``
(:func:`daily_interest`): 30/360 and actual/360 divide by 360, actual/365 by 365.

**The accrual quantum.** Posting works on the daily amount rounded *down* to 1e-10 yuan
(1e-8 fen, :data:`ACCRUAL_QUANTUM`). That is what an integer batch computes exactly
(``balance_fen × rate_1e8 // days_in_year``, :func:`daily_interest_fen_scaled`), so the Decimal
path here and the vectorised path agree to the last unit. The part dropped is below 1e-8 fen a
day (under 4e-6 fen a year on any loan).

**The carry rule** (:meth:`Accrual.step`). Each day, ``x = daily × days + carry``; the posted
amount is ``x`` rounded to the fen with the product's policy (never below zero), and the new
carry is ``x − posted``, kept at full precision for the next day. The carry therefore stays
within half a fen (within one fen for the directed modes ``up``/``down``/``ceiling``/``floor``),
and after any number of days the posted total equals the accrued total *rounded once*:
``Σ posted = round(Σ daily)`` exactly for half-up, down, up, ceiling and floor, and within one fen
for half-even, whose ties depend on the running total's parity.

**Periods.** Start each instalment period with a carry of zero and accrue each day of
``[start_date, due_date)`` with the weight :func:`accrual_days` gives: 1 for actual/365 and
actual/360; under 30/360 a month of 30 days (a 31st weighs 0, the last day of February 3, or 2
in a leap year), capped so that the weights of a period add up to the schedule's day count of
that period (30 for a full month, whatever the calendar). The posted interest of a period then equals the schedule's rounded interest of that
period, except when the exact period interest lies within ``days × 1e-10`` yuan of a rounding
boundary, where it can be one fen lower; it is never more than one fen apart.

**Penalty interest** (罚息) accrues the same way on overdue principal at the penalty rate, one
day's weight per calendar day overdue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from creditfactory.clock import DayCount
from creditfactory.errors import InvalidInput
from creditfactory.money import FEN_HALF_UP, RoundingMode, RoundingPolicy, calc_context

__all__ = [
    "ACCRUAL_QUANTUM",
    "FEN_SCALE",
    "RATE_SCALE",
    "Accrual",
    "AccrualError",
    "AccrualStep",
    "PeriodAccrual",
    "accrual_days",
    "accrue_fen_scaled",
    "accrual_weights",
    "daily_interest",
    "daily_interest_fen_scaled",
    "split_posted_fen",
]

#: Daily accrual amounts are rounded down to this step (1e-10 yuan = 1e-8 fen).
ACCRUAL_QUANTUM = Decimal("1E-10")
#: Units of 1e-8 fen in one fen, the scale of the vectorised accrual.
FEN_SCALE = 10**8
#: Rates are stored as integers at this scale (8 decimal places: 0.0435 → 4_350_000).
RATE_SCALE = 8

_ZERO = Decimal(0)
_INT64_MAX = int(np.iinfo(np.int64).max)


class AccrualError(InvalidInput):
    code = "invalid_accrual"
    title = "Invalid accrual input"


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise AccrualError(f"{what} must be finite, got {number}", field=what)
    return number


def daily_interest(balance: Decimal, annual_rate: Decimal, day_count: DayCount) -> Decimal:
    """The exact (unrounded) interest of one day: ``balance × annual_rate / days_in_year``."""
    b = _decimal(balance, "balance")
    r = _decimal(annual_rate, "annual_rate")
    if b < 0 or r < 0:
        raise AccrualError(f"balance and rate must be zero or more, got {b} and {r}")
    with calc_context():
        return b * r / Decimal(DayCount(day_count).days_in_year)


def _quantised_daily(balance: Decimal, annual_rate: Decimal, day_count: DayCount) -> Decimal:
    with calc_context() as ctx:
        return daily_interest(balance, annual_rate, day_count).quantize(
            ACCRUAL_QUANTUM, rounding=ROUND_FLOOR, context=ctx
        )


def _thirty_360_ordinal(d: date) -> int:
    """Days to ``d`` on a calendar of 30-day months, as 30E/360 counts them: a 31st is the 30th, so
    ``ordinal(b) - ordinal(a) == DayCount.THIRTY_E_360.days(a, b)`` for any two dates."""
    return 360 * d.year + 30 * (d.month - 1) + min(d.day, 30) - 1


def accrual_days(
    *, day_count: DayCount, day: date, period_start: date, period_end: date, period_days: int
) -> int:
    """The weight of accruing ``day`` (the interest of that one day) within a schedule period.

    1 under actual/365 and actual/360. Under 30/360 every month has 30 days and the weights up to
    a day are the 30E/360 days to it (:meth:`DayCount.days`, a 31st counting as the 30th): the
    30th of a 31-day month weighs 0 (interest to the 31st is interest to the 30th), the 31st 1,
    and the last day of February 3 (2 in a leap year), capped so that the weights of the period
    add up to ``period_days`` (the schedule's
    :attr:`~creditfactory.servicing.model.schedule.Instalment.days`, 30 for a full month).
    """
    if not period_start <= day < period_end:
        raise AccrualError(
            f"{day.isoformat()} is outside the period {period_start.isoformat()}..{period_end.isoformat()}"
        )
    if DayCount(day_count) is not DayCount.THIRTY_E_360:
        return 1
    origin = _thirty_360_ordinal(period_start)

    def reached(d: date) -> int:
        if d >= period_end:
            return period_days
        return min(_thirty_360_ordinal(d) - origin, period_days)

    return reached(day + timedelta(days=1)) - reached(day)


def accrual_weights(
    *, day_count: DayCount, period_start: date, period_end: date, period_days: int
) -> list[int]:
    """:func:`accrual_days` for every day of ``[period_start, period_end)``."""
    n = (period_end - period_start).days
    return [
        accrual_days(
            day_count=day_count,
            day=period_start + timedelta(days=k),
            period_start=period_start,
            period_end=period_end,
            period_days=period_days,
        )
        for k in range(n)
    ]


class AccrualStep(NamedTuple):
    """What one day posts (rounded to the fen) and the fraction carried to the next day."""

    posted: Decimal
    carry: Decimal


@dataclass(frozen=True, slots=True)
class PeriodAccrual:
    """The daily postings of one period, in date order, and the carry left at its end."""

    posted: tuple[Decimal, ...]
    carry: Decimal

    @property
    def total(self) -> Decimal:
        return sum(self.posted, _ZERO)


@dataclass(frozen=True, slots=True)
class Accrual:
    """Daily accrual under one rounding policy (the product's; half-up to the fen by default)."""

    policy: RoundingPolicy = field(default=FEN_HALF_UP)

    def step(
        self, balance: Decimal, annual_rate: Decimal, day_count: DayCount, carry: Decimal, *, days: int = 1
    ) -> AccrualStep:
        """Post one day: ``x = daily × days + carry``; posted ``max(0, round(x))``; carry ``x − posted``.

        ``days`` is the day's weight (:func:`accrual_days`); 0 posts only what the carry makes up.
        Use the same call with the penalty rate on overdue principal for penalty interest.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise AccrualError(f"days must be a whole number of days, zero or more, got {days!r}")
        c = _decimal(carry, "carry")
        with calc_context():
            x = _quantised_daily(balance, annual_rate, day_count) * days + c
        posted = self.policy.round(x if x > 0 else _ZERO)
        with calc_context():
            return AccrualStep(posted, x - posted)

    def over_period(
        self,
        balance: Decimal,
        annual_rate: Decimal,
        day_count: DayCount,
        *,
        period_start: date,
        period_end: date,
        period_days: int,
        carry: Decimal = _ZERO,
    ) -> PeriodAccrual:
        """Accrue every day of ``[period_start, period_end)`` on a constant balance."""
        posted: list[Decimal] = []
        for weight in accrual_weights(
            day_count=day_count, period_start=period_start, period_end=period_end, period_days=period_days
        ):
            amount, carry = self.step(balance, annual_rate, day_count, carry, days=weight)
            posted.append(amount)
        return PeriodAccrual(tuple(posted), carry)


# --------------------------------------------------------------------------------------------
# Vectorised (integer) accrual for the end-of-day batch


def daily_interest_fen_scaled(
    balance_fen: npt.ArrayLike, rate_scaled_1e8: npt.ArrayLike, days_in_year: int
) -> npt.NDArray[np.int64]:
    """Daily interest in units of 1e-8 fen: ``balance_fen × rate_1e8 // days_in_year``.

    ``balance_fen`` is the balance in fen and ``rate_scaled_1e8`` the annual rate × 10^8 (use
    :func:`creditfactory.money.to_scaled` with :data:`RATE_SCALE`), both int64. The product
    ``balance_fen × rate_1e8`` is in 1e-8 fen per year and is exact in int64; the floor division
    by the year's days is the exact daily amount rounded down to 1e-8 fen, the same number
    :meth:`Accrual.step` uses. Refuses negative inputs and any balance and rate whose product
    could overflow int64 (a balance above 2.5 billion yuan at a 36% rate).
    """
    balance = np.asarray(balance_fen)
    rate = np.asarray(rate_scaled_1e8)
    for name, arr in (("balance_fen", balance), ("rate_scaled_1e8", rate)):
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if days_in_year not in (360, 365):
        raise AccrualError(f"days_in_year must be 360 or 365, got {days_in_year}")
    balance = balance.astype(np.int64, copy=False)
    rate = rate.astype(np.int64, copy=False)
    if balance.size and (balance.min() < 0 or rate.min() < 0):
        raise AccrualError("balances and rates must be zero or more")
    if balance.size and int(balance.max()) * int(rate.max()) > _INT64_MAX:
        raise AccrualError("balance × rate would overflow int64; split the loan or use the Decimal path")
    return (balance * rate) // np.int64(days_in_year)


def split_posted_fen(
    interest_scaled: npt.ArrayLike,
    carry_scaled: npt.ArrayLike,
    *,
    mode: RoundingMode | str = RoundingMode.HALF_UP,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split ``interest + carry`` (1e-8 fen) into posted whole fen and the new carry (1e-8 fen).

    The integer twin of :meth:`Accrual.step` with a fen policy: ``t = interest + carry``;
    posted = ``t`` rounded to a multiple of 10^8 by ``mode`` (0 when ``t`` is negative); carry =
    ``t − posted × 10^8``. Multiply ``interest_scaled`` by the day's weight first when it is not 1.
    """
    total = np.asarray(interest_scaled, dtype=np.int64) + np.asarray(carry_scaled, dtype=np.int64)
    unit = np.int64(FEN_SCALE)
    positive = np.maximum(total, 0)
    q, r = np.divmod(positive, unit)
    chosen = RoundingMode(mode)
    if chosen is RoundingMode.HALF_UP:
        q = q + (2 * r >= unit)
    elif chosen is RoundingMode.HALF_EVEN:
        q = q + ((2 * r > unit) | ((2 * r == unit) & (q % 2 == 1)))
    elif chosen in (RoundingMode.UP, RoundingMode.CEILING):
        q = q + (r > 0)
    posted = np.where(total > 0, q, 0).astype(np.int64)
    return posted, (total - posted * unit).astype(np.int64)


def accrue_fen_scaled(
    balance_fen: npt.ArrayLike,
    rate_scaled_1e8: npt.ArrayLike,
    carry_scaled: npt.ArrayLike,
    *,
    days_in_year: int,
    weights: npt.ArrayLike | int = 1,
    mode: RoundingMode | str = RoundingMode.HALF_UP,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One day of accrual for many loans: posted fen and new carry (1e-8 fen) per loan."""
    daily = daily_interest_fen_scaled(balance_fen, rate_scaled_1e8, days_in_year)
    return split_posted_fen(daily * np.asarray(weights, dtype=np.int64), carry_scaled, mode=mode)
