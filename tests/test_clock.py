"""Clocks, business dates, day counts, months and holiday calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditfactory.clock import (
    BusinessDate,
    Clock,
    DayCount,
    FixedClock,
    HolidayCalendar,
    SystemClock,
    add_months,
    month_end,
    month_start,
    months_between,
)

D = Decimal
d = date.fromisoformat

dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2150, 12, 31))

# 2025 National Day and Mid-Autumn: 1-8 October off; Sunday 28 September and
# Saturday 11 October are working days.
NATIONAL_DAY_2025 = HolidayCalendar(
    holidays=frozenset(d(f"2025-10-0{i}") for i in range(1, 9)),
    extra_workdays=frozenset({d("2025-09-28"), d("2025-10-11")}),
)


class TestSystemClock:
    def test_now_is_aware_utc(self) -> None:
        now = SystemClock().now()
        assert now.tzinfo is UTC
        assert now.year >= 2024

    def test_does_not_stand_still_backwards(self) -> None:
        clock = SystemClock()
        first = clock.now()
        assert clock.now() >= first

    def test_satisfies_the_protocol(self) -> None:
        assert isinstance(SystemClock(), Clock)
        assert isinstance(FixedClock(datetime(2025, 1, 1, tzinfo=UTC)), Clock)


class TestFixedClock:
    def test_stands_still(self) -> None:
        at = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
        clock = FixedClock(at)
        assert clock.now() == at
        assert clock.now() == at

    def test_advance_moves_by_timedelta_arguments(self) -> None:
        clock = FixedClock(datetime(2025, 1, 31, 23, 0, tzinfo=UTC))
        assert clock.advance(hours=2) == datetime(2025, 2, 1, 1, 0, tzinfo=UTC)
        clock.advance(days=1, minutes=30)
        assert clock.now() == datetime(2025, 2, 2, 1, 30, tzinfo=UTC)

    def test_set_jumps(self) -> None:
        clock = FixedClock(datetime(2025, 1, 1, tzinfo=UTC))
        clock.set(datetime(2030, 6, 1, 12, tzinfo=UTC))
        assert clock.now() == datetime(2030, 6, 1, 12, tzinfo=UTC)

    def test_other_time_zones_are_stored_as_utc(self) -> None:
        beijing = timezone(timedelta(hours=8))
        clock = FixedClock(datetime(2025, 1, 1, 8, 0, tzinfo=beijing))
        assert clock.now() == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
        assert clock.now().utcoffset() == timedelta(0)

    def test_refuses_naive_datetimes(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            FixedClock(datetime(2025, 1, 1))
        clock = FixedClock(datetime(2025, 1, 1, tzinfo=UTC))
        with pytest.raises(ValueError, match="naive"):
            clock.set(datetime(2025, 1, 2))
        assert clock.now() == datetime(2025, 1, 1, tzinfo=UTC)

    def test_refuses_dates(self) -> None:
        with pytest.raises(TypeError):
            FixedClock(date(2025, 1, 1))  # type: ignore[arg-type]


class TestBusinessDate:
    def test_wraps_a_date(self) -> None:
        bd = BusinessDate(date(2025, 1, 31))
        assert bd.value == date(2025, 1, 31)
        assert str(bd) == "2025-01-31"
        assert bd.isoformat() == "2025-01-31"

    def test_next_and_previous_cross_month_and_year(self) -> None:
        assert BusinessDate(d("2025-01-31")).next() == BusinessDate(d("2025-02-01"))
        assert BusinessDate(d("2025-01-01")).previous() == BusinessDate(d("2024-12-31"))
        assert BusinessDate(d("2024-02-28")).next() == BusinessDate(d("2024-02-29"))

    def test_plus_days(self) -> None:
        bd = BusinessDate(d("2025-03-01"))
        assert bd.plus_days(30) == BusinessDate(d("2025-03-31"))
        assert bd.plus_days(-1) == BusinessDate(d("2025-02-28"))
        assert bd.plus_days(0) == bd

    def test_is_ordered_and_hashable(self) -> None:
        a, b = BusinessDate(d("2025-01-01")), BusinessDate(d("2025-01-02"))
        assert a < b <= b
        assert max(b, a) == b
        assert len({a, b, BusinessDate(d("2025-01-01"))}) == 2

    def test_is_frozen(self) -> None:
        bd = BusinessDate(d("2025-01-01"))
        with pytest.raises(AttributeError):
            bd.value = d("2025-01-02")  # type: ignore[misc]

    def test_parse(self) -> None:
        assert BusinessDate.parse("2025-02-28") == BusinessDate(d("2025-02-28"))
        assert BusinessDate.parse(" 2025-02-28\n") == BusinessDate(d("2025-02-28"))

    @pytest.mark.parametrize("text", ["20250228", "2025-2-28", "2025-02-28T00:00", "", "yesterday"])
    def test_parse_refuses_other_formats(self, text: str) -> None:
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            BusinessDate.parse(text)

    def test_parse_refuses_impossible_dates(self) -> None:
        with pytest.raises(ValueError, match="not a calendar date"):
            BusinessDate.parse("2025-02-29")

    def test_refuses_datetimes(self) -> None:
        with pytest.raises(TypeError):
            BusinessDate(datetime(2025, 1, 1, tzinfo=UTC))

    @given(dates)
    def test_parse_round_trips_str(self, value: date) -> None:
        bd = BusinessDate(value)
        assert BusinessDate.parse(str(bd)) == bd
        assert bd.next().previous() == bd


class TestDayCount:
    @pytest.mark.parametrize(
        ("start", "end", "days"),
        [
            ("2025-01-31", "2025-02-28", 28),
            ("2025-01-15", "2025-02-15", 30),
            ("2025-01-30", "2025-01-31", 0),
            ("2025-01-31", "2025-03-31", 60),
            ("2007-02-28", "2007-03-31", 32),
            ("2024-02-29", "2024-03-31", 31),
            ("2024-12-31", "2025-12-31", 360),
            ("2025-01-01", "2026-01-01", 360),
            ("2025-03-15", "2025-03-15", 0),
        ],
    )
    def test_thirty_e_360_days(self, start: str, end: str, days: int) -> None:
        assert DayCount.THIRTY_E_360.days(d(start), d(end)) == days

    @pytest.mark.parametrize(
        ("start", "end", "days"),
        [
            ("2025-01-31", "2025-02-28", 28),
            ("2025-01-15", "2025-02-15", 31),
            ("2024-01-01", "2025-01-01", 366),
            ("2025-01-01", "2026-01-01", 365),
        ],
    )
    def test_actual_days(self, start: str, end: str, days: int) -> None:
        assert DayCount.ACTUAL_365.days(d(start), d(end)) == days
        assert DayCount.ACTUAL_360.days(d(start), d(end)) == days

    def test_values_are_the_setting_names(self) -> None:
        assert DayCount("30/360") is DayCount.THIRTY_E_360
        assert DayCount("actual/365") is DayCount.ACTUAL_365
        assert DayCount("actual/360") is DayCount.ACTUAL_360

    def test_days_in_year(self) -> None:
        assert DayCount.THIRTY_E_360.days_in_year == 360
        assert DayCount.ACTUAL_365.days_in_year == 365
        assert DayCount.ACTUAL_360.days_in_year == 360

    def test_year_fractions(self) -> None:
        q1 = (d("2025-01-01"), d("2025-04-01"))  # 90 actual days, 90 days 30E/360
        assert DayCount.ACTUAL_360.year_fraction(*q1) == D("0.25")
        assert DayCount.THIRTY_E_360.year_fraction(*q1) == D("0.25")
        assert DayCount.ACTUAL_365.year_fraction(*q1) == D("0.2465753424657534246575342465753425")
        assert DayCount.ACTUAL_365.year_fraction(d("2025-01-01"), d("2025-03-15")) == D("0.2")
        leap_year = DayCount.ACTUAL_365.year_fraction(d("2024-01-01"), d("2025-01-01"))
        assert leap_year > 1

    def test_year_fraction_keeps_34_digits(self) -> None:
        one_day = DayCount.ACTUAL_365.year_fraction(d("2025-01-01"), d("2025-01-02"))
        assert isinstance(one_day, Decimal)
        assert str(one_day) == "0.002739726027397260273972602739726027"

    def test_refuses_datetimes(self) -> None:
        with pytest.raises(TypeError):
            DayCount.ACTUAL_365.days(datetime(2025, 1, 1, tzinfo=UTC), d("2025-01-02"))

    @given(a=dates, b=dates)
    def test_reversed_dates_count_negative(self, a: date, b: date) -> None:
        for convention in DayCount:
            assert convention.days(a, b) == -convention.days(b, a)

    @given(a=dates, b=dates)
    def test_thirty_e_360_stays_close_to_actual(self, a: date, b: date) -> None:
        # each month differs from 30 days by at most 2 (February), and a 31st counts as the 30th
        months = abs(months_between(a, b)) + 1
        assert abs(DayCount.THIRTY_E_360.days(a, b) - (b - a).days) <= 3 * months


class TestAddMonths:
    @pytest.mark.parametrize(
        ("anchor", "months", "expected"),
        [
            ("2025-01-31", 1, "2025-02-28"),
            ("2024-01-31", 1, "2024-02-29"),
            ("2025-01-31", 2, "2025-03-31"),
            ("2025-01-31", 3, "2025-04-30"),
            ("2025-03-31", -1, "2025-02-28"),
            ("2025-12-15", 1, "2026-01-15"),
            ("2025-01-15", -13, "2023-12-15"),
            ("2024-02-29", 12, "2025-02-28"),
            ("2024-02-29", 48, "2028-02-29"),
            ("2025-05-10", 0, "2025-05-10"),
        ],
    )
    def test_examples(self, anchor: str, months: int, expected: str) -> None:
        assert add_months(d(anchor), months) == d(expected)

    def test_schedule_from_the_anchor_does_not_drift(self) -> None:
        anchor = d("2025-01-31")
        from_anchor = [add_months(anchor, k) for k in range(1, 4)]
        assert from_anchor == [d("2025-02-28"), d("2025-03-31"), d("2025-04-30")]

    def test_outside_the_calendar_is_refused(self) -> None:
        with pytest.raises(ValueError, match="outside"):
            add_months(d("9999-12-01"), 1)

    def test_refuses_non_int_months(self) -> None:
        with pytest.raises(TypeError):
            add_months(d("2025-01-01"), 1.0)  # type: ignore[arg-type]

    @given(anchor=dates, months=st.integers(min_value=-600, max_value=600))
    def test_lands_in_the_right_month_clamped_to_its_end(self, anchor: date, months: int) -> None:
        result = add_months(anchor, months)
        assert months_between(anchor, result) == months
        assert result.day <= anchor.day
        if result.day < anchor.day:
            assert result == month_end(result)


class TestMonths:
    @pytest.mark.parametrize(
        ("day", "start", "end"),
        [
            ("2025-02-14", "2025-02-01", "2025-02-28"),
            ("2024-02-14", "2024-02-01", "2024-02-29"),
            ("2025-12-31", "2025-12-01", "2025-12-31"),
            ("2025-04-01", "2025-04-01", "2025-04-30"),
        ],
    )
    def test_month_start_and_end(self, day: str, start: str, end: str) -> None:
        assert month_start(d(day)) == d(start)
        assert month_end(d(day)) == d(end)

    @pytest.mark.parametrize(
        ("a", "b", "months"),
        [
            ("2025-01-31", "2025-02-01", 1),
            ("2025-01-01", "2025-01-31", 0),
            ("2024-11-15", "2025-02-15", 3),
            ("2025-02-15", "2024-11-15", -3),
        ],
    )
    def test_months_between_counts_calendar_months(self, a: str, b: str, months: int) -> None:
        assert months_between(d(a), d(b)) == months


class TestHolidayCalendar:
    def test_plain_weekends(self) -> None:
        cal = HolidayCalendar(holidays=frozenset())
        assert cal.is_business_day(d("2025-01-03"))  # Friday
        assert not cal.is_business_day(d("2025-01-04"))  # Saturday
        assert not cal.is_business_day(d("2025-01-05"))  # Sunday

    def test_holidays_and_swapped_workdays(self) -> None:
        cal = NATIONAL_DAY_2025
        assert cal.is_business_day(d("2025-09-28"))  # Sunday, swapped in
        assert cal.is_business_day(d("2025-10-11"))  # Saturday, swapped in
        assert not cal.is_business_day(d("2025-10-01"))  # Wednesday, holiday
        assert not cal.is_business_day(d("2025-10-12"))  # ordinary Sunday
        assert cal.is_business_day(d("2025-10-09"))

    def test_next_business_day(self) -> None:
        cal = NATIONAL_DAY_2025
        assert cal.next_business_day(d("2025-09-30")) == d("2025-09-30")
        assert cal.next_business_day(d("2025-10-01")) == d("2025-10-09")
        assert cal.next_business_day(d("2025-09-27")) == d("2025-09-28")
        assert cal.previous_business_day(d("2025-10-08")) == d("2025-09-30")

    @pytest.mark.parametrize(
        ("start", "n", "expected"),
        [
            ("2025-09-26", 1, "2025-09-28"),  # Friday → the swapped Sunday
            ("2025-09-30", 1, "2025-10-09"),  # over the whole holiday
            ("2025-10-09", 2, "2025-10-11"),  # Thursday → the swapped Saturday
            ("2025-10-09", -1, "2025-09-30"),
            ("2025-10-03", 0, "2025-10-09"),
            ("2025-10-10", 0, "2025-10-10"),
            ("2025-10-13", 4, "2025-10-17"),  # Monday → Friday
            ("2025-10-17", 1, "2025-10-20"),  # Friday → Monday
        ],
    )
    def test_add_business_days(self, start: str, n: int, expected: str) -> None:
        assert NATIONAL_DAY_2025.add_business_days(d(start), n) == d(expected)

    def test_other_weekends(self) -> None:
        cal = HolidayCalendar(holidays=frozenset(), weekend=frozenset({4, 5}))
        assert cal.is_business_day(d("2025-01-05"))  # Sunday
        assert not cal.is_business_day(d("2025-01-03"))  # Friday

    def test_accepts_plain_sets(self) -> None:
        cal = HolidayCalendar(holidays={d("2025-01-01")})  # type: ignore[arg-type]
        assert isinstance(cal.holidays, frozenset)
        assert not cal.is_business_day(d("2025-01-01"))

    def test_a_day_cannot_be_both_holiday_and_workday(self) -> None:
        with pytest.raises(ValueError, match="2025-10-01"):
            HolidayCalendar(
                holidays=frozenset({d("2025-10-01")}), extra_workdays=frozenset({d("2025-10-01")})
            )

    def test_needs_a_working_weekday(self) -> None:
        with pytest.raises(ValueError, match="working weekday"):
            HolidayCalendar(holidays=frozenset(), weekend=frozenset(range(7)))

    def test_weekend_days_are_weekday_numbers(self) -> None:
        with pytest.raises(ValueError, match="0..6"):
            HolidayCalendar(holidays=frozenset(), weekend=frozenset({7}))

    @given(start=st.dates(min_value=date(2025, 9, 1), max_value=date(2025, 11, 1)), n=st.integers(-40, 40))
    def test_add_business_days_counts_business_days(self, start: date, n: int) -> None:
        cal = NATIONAL_DAY_2025
        result = cal.add_business_days(start, n)
        assert cal.is_business_day(result)
        if n > 0:
            between = [start + timedelta(days=i) for i in range(1, (result - start).days + 1)]
            assert sum(cal.is_business_day(x) for x in between) == n
        elif n < 0:
            between = [result + timedelta(days=i) for i in range(0, (start - result).days)]
            assert sum(cal.is_business_day(x) for x in between) == -n
