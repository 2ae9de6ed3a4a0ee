"""Time: the clock, business dates, day-count conventions, months and holiday calendars.

This is the only module that reads the system clock. Services receive a :class:`Clock`
(:class:`SystemClock` in production, :class:`FixedClock` in tests) and pure functions take
``as_of=`` / ``business_date=`` arguments. The current business date itself is data, kept in
the database and advanced only by the end-of-day close; :class:`BusinessDate` is its value type.

Day counts (:class:`DayCount`) give the days and the exact year fraction between two dates for
interest accrual; :func:`add_months` builds schedule dates from an anchor without drift;
:class:`HolidayCalendar` knows weekends, public holidays and the weekend days China swaps into
working days.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, Self, runtime_checkable

from creditfactory.money import calc_context

__all__ = [
    "BusinessDate",
    "Clock",
    "DayCount",
    "FixedClock",
    "HolidayCalendar",
    "SystemClock",
    "add_months",
    "month_end",
    "month_start",
    "months_between",
]


def _require_aware(at: object) -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"expected a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} refused; give it a time zone (UTC)")
    return at.astimezone(UTC)


def _require_date(d: object, what: str = "date") -> date:
    # datetime is a subclass of date; mixing the two silently drops or keeps the time.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"{what} must be a datetime.date, got {type(d).__name__}")
    return d


# --------------------------------------------------------------------------------------------
# Clocks


@runtime_checkable
class Clock(Protocol):
    """Source of the current instant. ``now()`` returns an aware datetime in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock of the machine, in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until told to move; for tests, replays and scenarios.

    >>> clock = FixedClock(datetime(2025, 1, 31, 9, 0, tzinfo=UTC))
    >>> clock.advance(days=1, hours=2).isoformat()
    '2025-02-01T11:00:00+00:00'
    """

    __slots__ = ("_at",)

    def __init__(self, at: datetime) -> None:
        self._at = _require_aware(at)

    def now(self) -> datetime:
        return self._at

    def advance(self, **timedelta_kwargs: float) -> datetime:
        """Move forward by ``timedelta(**timedelta_kwargs)`` and return the new instant."""
        self._at = self._at + timedelta(**timedelta_kwargs)
        return self._at

    def set(self, at: datetime) -> None:
        """Jump to ``at`` (an aware datetime; stored in UTC)."""
        self._at = _require_aware(at)

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"


# --------------------------------------------------------------------------------------------
# Business dates

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


@dataclass(frozen=True, order=True, slots=True)
class BusinessDate:
    """A business date of the bank: the day the end-of-day batch closes and opens.

    Ordered and hashable; ``str()`` and :meth:`isoformat` give ``YYYY-MM-DD``.
    """

    value: date

    def __post_init__(self) -> None:
        _require_date(self.value, "business date")

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``YYYY-MM-DD``; raise :class:`ValueError` naming the text otherwise."""
        if not isinstance(text, str) or not _ISO_DATE.match(text.strip()):
            raise ValueError(f"business date must be YYYY-MM-DD, got {text!r}")
        try:
            return cls(date.fromisoformat(text.strip()))
        except ValueError:
            raise ValueError(f"business date {text!r} is not a calendar date") from None

    def next(self) -> BusinessDate:
        """The following calendar day."""
        return BusinessDate(self.value + timedelta(days=1))

    def previous(self) -> BusinessDate:
        """The preceding calendar day."""
        return BusinessDate(self.value - timedelta(days=1))

    def plus_days(self, n: int) -> BusinessDate:
        """``n`` calendar days later (earlier when ``n`` is negative)."""
        return BusinessDate(self.value + timedelta(days=n))

    def isoformat(self) -> str:
        return self.value.isoformat()

    def __str__(self) -> str:
        return self.value.isoformat()


# --------------------------------------------------------------------------------------------
# Day-count conventions


class DayCount(StrEnum):
    """Day-count conventions for accrual, named as in product settings.

    - ``"30/360"``: 30E/360 (Eurobond basis, ISDA 2006 4.16(g)): a day 31 counts as 30 at both
      ends; February is not adjusted, so 31 Jan → 28 Feb is 28 days.
    - ``"actual/365"``: actual days over a fixed 365-day year (ACT/365 Fixed).
    - ``"actual/360"``: actual days over a 360-day year.
    """

    THIRTY_E_360 = "30/360"
    ACTUAL_365 = "actual/365"
    ACTUAL_360 = "actual/360"

    @property
    def days_in_year(self) -> int:
        """The denominator of the year fraction: 360 or 365."""
        return 365 if self is DayCount.ACTUAL_365 else 360

    def days(self, start: date, end: date) -> int:
        """Days from ``start`` to ``end`` under this convention (negative if ``end`` is earlier)."""
        _require_date(start, "start")
        _require_date(end, "end")
        if self is DayCount.THIRTY_E_360:
            d1 = min(start.day, 30)
            d2 = min(end.day, 30)
            return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)
        return (end - start).days

    def year_fraction(self, start: date, end: date) -> Decimal:
        """``days(start, end) / days_in_year`` as a Decimal (34 significant digits)."""
        with calc_context():
            return Decimal(self.days(start, end)) / Decimal(self.days_in_year)


# --------------------------------------------------------------------------------------------
# Months


def add_months(anchor: date, months: int) -> date:
    """The date ``months`` calendar months from ``anchor``, clamped to the month's last day.

    31 Jan + 1 month = 28 Feb (29 in a leap year). Always compute each schedule date from the
    same anchor (``add_months(first, k)``), not from the previous date, or 31st-day schedules
    drift to the 28th.
    """
    _require_date(anchor, "anchor")
    if isinstance(months, bool) or not isinstance(months, int):
        raise TypeError(f"months must be an int, got {type(months).__name__}")
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"{anchor.isoformat()} + {months} months is outside years 1..9999")
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(anchor.day, last))


def month_start(d: date) -> date:
    """The first day of ``d``'s month."""
    _require_date(d)
    return date(d.year, d.month, 1)


def month_end(d: date) -> date:
    """The last day of ``d``'s month."""
    _require_date(d)
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def months_between(a: date, b: date) -> int:
    """Calendar months from ``a``'s month to ``b``'s month, ignoring the days.

    ``months_between(date(2025, 1, 31), date(2025, 2, 1)) == 1``; negative when ``b`` is earlier.
    """
    _require_date(a)
    _require_date(b)
    return (b.year - a.year) * 12 + (b.month - a.month)


# --------------------------------------------------------------------------------------------
# Holiday calendars


def _frozen_dates(values: Iterable[date], what: str) -> frozenset[date]:
    result = frozenset(values)
    for d in result:
        _require_date(d, f"{what} entry")
    return result


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Which days are business days.

    A day is a business day when it is listed in ``extra_workdays`` (the weekend days China
    swaps into working days around public holidays), or else when it is neither a holiday nor
    a weekend day. ``weekend`` holds ``date.weekday()`` numbers (Monday 0 … Sunday 6).
    """

    holidays: frozenset[date] = frozenset()
    weekend: frozenset[int] = field(default=frozenset({5, 6}))
    extra_workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", _frozen_dates(self.holidays, "holidays"))
        object.__setattr__(self, "extra_workdays", _frozen_dates(self.extra_workdays, "extra_workdays"))
        weekend = frozenset(self.weekend)
        for day in weekend:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"weekend days are weekday numbers 0..6, got {day!r}")
        if len(weekend) == 7:
            raise ValueError("a calendar needs at least one working weekday")
        object.__setattr__(self, "weekend", weekend)
        both = self.holidays & self.extra_workdays
        if both:
            listed = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"dates both holidays and extra workdays: {listed}")

    def is_business_day(self, d: date) -> bool:
        _require_date(d)
        if d in self.extra_workdays:
            return True
        return d not in self.holidays and d.weekday() not in self.weekend

    def next_business_day(self, d: date) -> date:
        """``d`` itself if it is a business day, else the first business day after it."""
        while not self.is_business_day(d):
            d += timedelta(days=1)
        return d

    def previous_business_day(self, d: date) -> date:
        """``d`` itself if it is a business day, else the last business day before it."""
        while not self.is_business_day(d):
            d -= timedelta(days=1)
        return d

    def add_business_days(self, d: date, n: int) -> date:
        """Move ``n`` business days from ``d`` (backwards when ``n`` is negative).

        Each step goes to the next (previous) business day, so Friday + 1 is Monday and
        Saturday + 1 is Monday too. ``n == 0`` gives :meth:`next_business_day`.
        """
        _require_date(d)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n == 0:
            return self.next_business_day(d)
        step = timedelta(days=1 if n > 0 else -1)
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_business_day(d):
                remaining -= 1
        return d
