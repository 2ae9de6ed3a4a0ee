"""Schedules, re-amortisation and payoff quotes: worked examples and invariants."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory.clock import DayCount, add_months
from creditfactory.money import RoundingMode, RoundingPolicy
from creditfactory.servicing.model import (
    Due,
    ReamortiseOption,
    RepaymentMethod,
    Schedule,
    ScheduleError,
    generate_schedule,
    payoff_amount,
    payoff_quote,
    reamortise,
)

HALF_UP = RoundingPolicy()
D = Decimal


def make(
    principal: str = "100000",
    rate: str = "0.0435",
    term: int = 12,
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT,
    start: date = date(2025, 1, 15),
    day_count: DayCount = DayCount.THIRTY_E_360,
    policy: RoundingPolicy = HALF_UP,
    **kwargs: object,
) -> Schedule:
    return generate_schedule(
        principal=D(principal),
        annual_rate=D(rate),
        term=term,
        method=method,
        start=start,
        day_count=day_count,
        policy=policy,
        **kwargs,  # type: ignore[arg-type]
    )


def check_invariants(s: Schedule) -> None:
    assert s.total_principal == s.principal
    balance = s.principal
    for inst in s.instalments:
        assert inst.principal >= 0 and inst.interest >= 0
        balance -= inst.principal
        assert inst.balance_after == balance >= 0
        assert inst.start_date < inst.due_date
    assert s.instalments[-1].balance_after == 0
    for a, b in zip(s.instalments, s.instalments[1:], strict=False):
        assert a.due_date == b.start_date and b.number == a.number + 1


class TestGenerateSchedule:
    def test_due_dates_keep_the_anchor_day_through_short_months(self) -> None:
        s = make(start=date(2025, 1, 31), term=4)
        assert [i.due_date for i in s.instalments] == [
            date(2025, 2, 28),
            date(2025, 3, 31),
            date(2025, 4, 30),
            date(2025, 5, 31),
        ]

    def test_30_360_full_month_is_rate_over_12_whatever_the_calendar(self) -> None:
        s = make(
            principal="120000",
            rate="0.06",
            term=3,
            method=RepaymentMethod.INTEREST_ONLY,
            start=date(2025, 1, 31),
        )
        # 120000 × 0.06 / 12 = 600.00 in February (28 days) and March (31 days) alike.
        assert [i.interest for i in s.instalments] == [D("600.00")] * 3
        assert [i.days for i in s.instalments] == [30, 30, 30]

    def test_actual_day_counts_use_the_days_of_the_period(self) -> None:
        s = make(
            principal="36500",
            rate="0.10",
            term=2,
            method=RepaymentMethod.INTEREST_ONLY,
            start=date(2025, 1, 15),
            day_count=DayCount.ACTUAL_365,
        )
        assert [i.days for i in s.instalments] == [31, 28]
        assert [i.interest for i in s.instalments] == [D("310.00"), D("280.00")]  # 10 yuan a day
        s360 = make(
            principal="36000",
            rate="0.10",
            term=1,
            method=RepaymentMethod.INTEREST_ONLY,
            start=date(2025, 1, 15),
            day_count=DayCount.ACTUAL_360,
        )
        assert s360.instalments[0].interest == D("310.00")

    def test_broken_first_period_counts_its_days(self) -> None:
        s = make(
            principal="36000",
            rate="0.10",
            term=3,
            method=RepaymentMethod.INTEREST_ONLY,
            start=date(2025, 1, 10),
            first_due=date(2025, 2, 20),
        )
        assert [i.due_date for i in s.instalments] == [
            date(2025, 2, 20),
            date(2025, 3, 20),
            date(2025, 4, 20),
        ]
        assert s.instalments[0].days == 40  # 30E/360 from 10 Jan to 20 Feb
        assert s.instalments[0].interest == D("400.00")  # 36000 × 0.10 × 40 / 360
        assert s.instalments[1].interest == D("300.00")

    def test_equal_instalment_last_clears_the_balance(self) -> None:
        s = make()
        assert s.level_instalment == D("8530.99")
        assert s.instalments[-1].total == D("8531.01")
        check_invariants(s)

    def test_equal_principal_last_absorbs_the_remainder(self) -> None:
        s = make(principal="100", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL, rate="0")
        assert [i.principal for i in s.instalments] == [D("33.33"), D("33.33"), D("33.34")]
        s = make(principal="200", term=3, method=RepaymentMethod.EQUAL_PRINCIPAL, rate="0")
        assert [i.principal for i in s.instalments] == [D("66.67"), D("66.67"), D("66.66")]

    def test_equal_principal_never_overruns_on_tiny_amounts(self) -> None:
        s = make(principal="0.10", term=12, method=RepaymentMethod.EQUAL_PRINCIPAL)
        check_invariants(s)  # 0.10 / 12 rounds to 0.01, but 11 × 0.01 would overrun

    def test_interest_only_repays_principal_at_maturity(self) -> None:
        s = make(method=RepaymentMethod.INTEREST_ONLY, term=6)
        assert [i.principal for i in s.instalments] == [D(0)] * 5 + [D("100000")]
        assert {i.interest for i in s.instalments} == {D("362.50")}

    def test_bullet_is_one_instalment_with_the_whole_term_interest(self) -> None:
        s = make(
            method=RepaymentMethod.BULLET,
            term=6,
            rate="0.0385",
            principal="50000",
            day_count=DayCount.ACTUAL_360,
            start=date(2025, 3, 1),
        )
        assert s.term == 1
        only = s.instalments[0]
        assert only.due_date == date(2025, 9, 1) and only.days == 184
        assert only.interest == D("983.89")  # 50000 × 0.0385 × 184 / 360 = 983.888…
        assert only.total == D("50983.89")
        s30 = make(method=RepaymentMethod.BULLET, term=12)
        assert s30.instalments[0].interest == D("4350.00")

    def test_instalment_multiple_rounds_the_instalment(self) -> None:
        s = make(instalment_multiple=D("1"))
        assert s.level_instalment == D("8531.00")
        check_invariants(s)
        down = make(instalment_multiple=D("10"), policy=RoundingPolicy(RoundingMode.DOWN))
        assert down.level_instalment == D("8530.00")
        check_invariants(down)

    def test_zero_rate_splits_the_principal(self) -> None:
        s = make(rate="0", principal="1000", term=3)
        assert [i.total for i in s.instalments] == [D("333.33"), D("333.33"), D("333.34")]

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"principal": "-1"}, "principal must be positive"),
            ({"principal": "0"}, "principal must be positive"),
            ({"principal": "10.005"}, "more places"),
            ({"term": 0}, "term must be 1..600"),
            ({"rate": "1.2"}, "annual fraction"),
            ({"method": "balloon"}, "unknown repayment method 'balloon'"),
            ({"first_due": date(2025, 1, 15)}, "must be after the start"),
            ({"principal": "1e32"}, r"principal 1E\+32 is too large"),
            ({"start": date(9999, 6, 15)}, "start 9999-06-15 .* after the year 9999"),
            ({"first_due": date(9999, 12, 20)}, "first_due 9999-12-20 .* after the year 9999"),
        ],
    )
    def test_bad_input_is_refused_with_a_reason(self, changes: dict[str, object], message: str) -> None:
        with pytest.raises(ScheduleError, match=message):
            make(**changes)  # type: ignore[arg-type]

    def test_the_largest_bookable_amount_is_accepted_and_one_fen_more_refused(self) -> None:
        """Amounts are kept as whole fen in a BIGINT: 2**63 - 1 fen = 92,233,720,368,547,758.07."""
        assert make(principal="92233720368547758.07", term=600).total_principal == D("92233720368547758.07")
        with pytest.raises(ScheduleError, match="at most 92233720368547758.07"):
            make(principal="92233720368547758.08")

    def test_floats_are_refused(self) -> None:
        with pytest.raises(TypeError, match="Decimal"):
            generate_schedule(
                principal=1000.0,
                annual_rate=D("0.04"),
                term=3,  # type: ignore[arg-type]
                method="bullet",
                start=date(2025, 1, 1),
                day_count=DayCount.ACTUAL_360,
                policy=HALF_UP,
            )

    @settings(max_examples=120, deadline=None)
    @given(
        principal=st.decimals(min_value=D("0.01"), max_value=D("5000000"), places=2),
        rate=st.decimals(min_value=D("0"), max_value=D("0.36"), places=6),
        term=st.integers(1, 72),
        method=st.sampled_from(RepaymentMethod),
        day_count=st.sampled_from(DayCount),
        mode=st.sampled_from(RoundingMode),
        start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
        broken=st.integers(0, 45),
        multiple=st.sampled_from([None, D("1"), D("10")]),
    )
    def test_principal_sums_to_the_amount_and_balances_never_go_negative(
        self,
        principal: Decimal,
        rate: Decimal,
        term: int,
        method: RepaymentMethod,
        day_count: DayCount,
        mode: RoundingMode,
        start: date,
        broken: int,
        multiple: Decimal | None,
    ) -> None:
        first_due = start + timedelta(days=broken) if broken else None
        try:
            s = make(
                principal=str(principal),
                rate=str(rate),
                term=term,
                method=method,
                start=start,
                day_count=day_count,
                policy=RoundingPolicy(mode),
                first_due=first_due,
                instalment_multiple=multiple,
            )
        except ScheduleError as exc:  # an instalment rounded down to nothing by a large multiple
            assert "instalment rounds to" in exc.message
            return
        check_invariants(s)
        assert s.term == (1 if method is RepaymentMethod.BULLET else term)
        # Every due date comes from one anchor: the start, or the first due date when given.
        expected = add_months(first_due, term - 1) if first_due else add_months(start, term)
        assert s.maturity_date == expected


class TestReamortise:
    def test_keep_term_lowers_the_instalment(self) -> None:
        s = make()
        r = reamortise(
            schedule=s, paid_instalments=3, prepayment=D("20000"), option="keep_term", policy=HALF_UP
        )
        assert r.balance_before == D("75405.59") and r.balance_after == D("55405.59")
        assert r.interest_due == 0
        new = r.schedule
        assert [i.number for i in new.instalments] == list(range(4, 13))
        assert [i.due_date for i in new.instalments] == [i.due_date for i in s.instalments[3:]]
        assert new.level_instalment == D("6268.30")  # annuity of 55405.59 over 9 months at 0.3625%
        check_invariants(new)

    def test_keep_instalment_shortens_the_term(self) -> None:
        s = make()
        r = reamortise(
            schedule=s, paid_instalments=3, prepayment=D("20000"), option="keep_instalment", policy=HALF_UP
        )
        new = r.schedule
        assert new.level_instalment == D("8530.99")
        assert [i.number for i in new.instalments] == list(range(4, 11))  # ends two months early
        assert all(i.total == D("8530.99") for i in new.instalments[:-1])
        assert new.instalments[-1].total < D("8530.99")
        check_invariants(new)

    def test_equal_principal_keep_instalment_keeps_the_principal_part(self) -> None:
        s = make(method=RepaymentMethod.EQUAL_PRINCIPAL)
        r = reamortise(
            schedule=s, paid_instalments=2, prepayment=D("10000"), option="keep_instalment", policy=HALF_UP
        )
        parts = [i.principal for i in r.schedule.instalments]
        assert parts[:-1] == [D("8333.33")] * (len(parts) - 1)
        assert len(parts) == 9  # ceil(73333.34 / 8333.33)
        check_invariants(r.schedule)

    def test_prepayment_between_due_dates_settles_the_interest_to_that_day(self) -> None:
        s = make()
        r = reamortise(
            schedule=s,
            paid_instalments=3,
            prepayment=D("20000"),
            option="keep_term",
            policy=HALF_UP,
            prepayment_date=date(2025, 4, 30),
        )
        assert r.interest_due == D("136.67")  # 75405.59 × 0.0435 × 15 / 360
        first = r.schedule.instalments[0]
        assert (first.start_date, first.days, first.interest) == (date(2025, 4, 30), 15, D("100.42"))

    @pytest.mark.parametrize(
        ("paid", "on", "elapsed", "interest_due"),
        [
            # 31 Jan → 10 Feb is 10 days (the 31st counts as the 30th): 100,000 × 0.0435 × 10 / 360
            (0, date(2025, 2, 10), 10, D("120.83")),
            # 28 Feb → 10 Mar is 12 days (30 − 28 + 10): 91,831.51 × 0.0435 × 12 / 360 = 133.156…
            (1, date(2025, 3, 10), 12, D("133.16")),
        ],
    )
    def test_30_360_split_keeps_the_periods_30_days_at_clamped_month_ends(
        self, paid: int, on: date, elapsed: int, interest_due: Decimal
    ) -> None:
        """A loan of 31 Jan on 30/360: its months (31 Jan → 28 Feb, 28 Feb → 31 Mar) are full
        months of 30 days, though 30E/360 counts 28 and 32 days between those dates. A
        prepayment splits the month into the days to it (10, and 12) on the old balance and the
        rest of the 30 (20, and 18) on the new: 99,000 × 0.0435 × 20 / 360 = 239.25 and
        90,831.51 × 0.0435 × 18 / 360 = 197.558… → 197.56."""
        s = make(start=date(2025, 1, 31))
        assert [i.days for i in s.instalments[:2]] == [30, 30]
        r = reamortise(
            schedule=s,
            paid_instalments=paid,
            prepayment=D("1000"),
            option="keep_term",
            policy=HALF_UP,
            prepayment_date=on,
        )
        first = r.schedule.instalments[0]
        assert r.interest_due == interest_due
        assert (first.start_date, first.days) == (on, 30 - elapsed)
        assert first.interest == (D("239.25") if paid == 0 else D("197.56"))

    def test_bullet_partial_prepayment_keeps_maturity(self) -> None:
        s = make(method=RepaymentMethod.BULLET, day_count=DayCount.ACTUAL_360, principal="50000", term=6)
        r = reamortise(
            schedule=s,
            paid_instalments=0,
            prepayment=D("20000"),
            option="keep_term",
            policy=HALF_UP,
            prepayment_date=date(2025, 3, 15),
        )
        assert r.interest_due == D("356.46")  # 50000 × 0.0435 × 59 / 360 = 356.458…
        only = r.schedule.instalments[0]
        assert only.due_date == s.maturity_date and only.principal == D("30000")

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"prepayment": D("75405.59")}, "quote a payoff instead"),
            ({"prepayment": D("0")}, "must be positive"),
            ({"paid_instalments": 12}, "paid_instalments must be 0..11"),
            ({"prepayment_date": date(2025, 5, 15)}, "before the next due date"),
        ],
    )
    def test_refuses_what_it_cannot_do(self, kwargs: dict[str, object], message: str) -> None:
        args = {"paid_instalments": 3, "prepayment": D("1000"), "option": "keep_term", **kwargs}
        with pytest.raises(ScheduleError, match=message):
            reamortise(schedule=make(), policy=HALF_UP, **args)  # type: ignore[arg-type]

    def test_interest_only_has_no_instalment_to_keep(self) -> None:
        with pytest.raises(ScheduleError, match="no instalment to keep"):
            reamortise(
                schedule=make(method=RepaymentMethod.INTEREST_ONLY),
                paid_instalments=1,
                prepayment=D("1000"),
                option=ReamortiseOption.KEEP_INSTALMENT,
                policy=HALF_UP,
            )

    @settings(max_examples=100, deadline=None)
    @given(
        term=st.integers(2, 60),
        method=st.sampled_from(
            [
                RepaymentMethod.EQUAL_INSTALLMENT,
                RepaymentMethod.EQUAL_PRINCIPAL,
                RepaymentMethod.INTEREST_ONLY,
            ]
        ),
        option=st.sampled_from(ReamortiseOption),
        day_count=st.sampled_from(DayCount),
        data=st.data(),
    )
    def test_new_schedule_repays_exactly_the_new_balance(
        self,
        term: int,
        method: RepaymentMethod,
        option: ReamortiseOption,
        day_count: DayCount,
        data: st.DataObject,
    ) -> None:
        if method is RepaymentMethod.INTEREST_ONLY:
            option = ReamortiseOption.KEEP_TERM
        s = make(principal="250000", rate="0.0485", term=term, method=method, day_count=day_count)
        paid = data.draw(st.integers(0, term - 1))
        balance = s.instalments[paid - 1].balance_after if paid else s.principal
        prepay = data.draw(st.decimals(min_value=D("0.01"), max_value=balance - D("0.01"), places=2))
        r = reamortise(schedule=s, paid_instalments=paid, prepayment=prepay, option=option, policy=HALF_UP)
        check_invariants(r.schedule)
        assert r.schedule.instalments[0].number == paid + 1
        assert r.schedule.maturity_date <= s.maturity_date
        if option is ReamortiseOption.KEEP_TERM:
            assert r.schedule.maturity_date == s.maturity_date


class TestPayoff:
    def test_payoff_is_balance_plus_overdue_plus_accrued_interest(self) -> None:
        overdue = [
            Due(3, date(2025, 4, 15), principal=D("8227.82"), interest=D("303.17"), penalty=D("12.40"))
        ]
        quote = payoff_quote(
            balance=D("67147.95"),
            annual_rate=D("0.0435"),
            day_count=DayCount.THIRTY_E_360,
            last_due_or_disbursement=date(2025, 4, 15),
            payoff_date=date(2025, 5, 5),
            overdue=overdue,
            policy=HALF_UP,
        )
        assert quote.interest == D("162.27")  # 67147.95 × 0.0435 × 20 / 360 = 162.274…
        assert quote.overdue == D("8543.39")
        assert quote.total == D("67147.95") + D("8543.39") + D("162.27")
        assert (
            payoff_amount(
                balance=D("67147.95"),
                annual_rate=D("0.0435"),
                day_count=DayCount.THIRTY_E_360,
                last_due_or_disbursement=date(2025, 4, 15),
                payoff_date=date(2025, 5, 5),
                overdue=overdue,
                policy=HALF_UP,
            )
            == quote.total
        )

    def test_payoff_before_the_last_due_date_is_refused(self) -> None:
        with pytest.raises(ScheduleError, match="before the last due date"):
            payoff_quote(
                balance=D("100"),
                annual_rate=D("0.04"),
                day_count=DayCount.ACTUAL_365,
                last_due_or_disbursement=date(2025, 4, 15),
                payoff_date=date(2025, 4, 14),
                overdue=[],
                policy=HALF_UP,
            )


class TestReamortiseTwice:
    def test_a_second_prepayment_continues_the_numbering(self) -> None:
        s = make()
        once = reamortise(
            schedule=s, paid_instalments=3, prepayment=D("20000"), option="keep_term", policy=HALF_UP
        )
        twice = reamortise(
            schedule=once.schedule,
            paid_instalments=2,
            prepayment=D("10000"),
            option="keep_instalment",
            policy=HALF_UP,
        )
        assert twice.balance_before == once.schedule.instalments[1].balance_after
        assert twice.schedule.instalments[0].number == 6
        assert twice.schedule.instalments[0].start_date == once.schedule.instalments[1].due_date
        check_invariants(twice.schedule)
