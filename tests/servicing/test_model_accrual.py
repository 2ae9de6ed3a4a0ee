"""Daily accrual: exact daily amounts, the carry rule, period totals and the integer batch twin."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory.clock import DayCount
from creditfactory.money import RoundingMode, RoundingPolicy, from_scaled, to_minor, to_scaled
from creditfactory.servicing.model import (
    ACCRUAL_QUANTUM,
    FEN_SCALE,
    RATE_SCALE,
    Accrual,
    AccrualError,
    RepaymentMethod,
    accrual_days,
    accrual_weights,
    accrue_fen_scaled,
    daily_interest,
    daily_interest_fen_scaled,
    generate_schedule,
    split_posted_fen,
)

D = Decimal
HALF_UP = RoundingPolicy()


class TestDailyInterest:
    @pytest.mark.parametrize(
        ("day_count", "expected"),
        [
            (DayCount.THIRTY_E_360, D("12.08333333333333333333333333333333")),
            (DayCount.ACTUAL_360, D("12.08333333333333333333333333333333")),
            (DayCount.ACTUAL_365, D("11.91780821917808219178082191780822")),
        ],
    )
    def test_is_balance_times_rate_over_the_year(self, day_count: DayCount, expected: Decimal) -> None:
        assert daily_interest(D("100000"), D("0.0435"), day_count) == expected

    def test_refuses_floats_and_negatives(self) -> None:
        with pytest.raises(TypeError):
            daily_interest(100000.0, D("0.04"), DayCount.ACTUAL_360)  # type: ignore[arg-type]
        with pytest.raises(AccrualError):
            daily_interest(D("-1"), D("0.04"), DayCount.ACTUAL_360)


class TestAccrualStep:
    def test_posts_the_fen_and_carries_the_fraction(self) -> None:
        accrual = Accrual(HALF_UP)
        first = accrual.step(D("100000"), D("0.0435"), DayCount.ACTUAL_360, D(0))
        assert first.posted == D("12.08") and first.carry == D("0.0033333333")
        second = accrual.step(D("100000"), D("0.0435"), DayCount.ACTUAL_360, first.carry)
        assert second.posted == D("12.09") and second.carry == D("-0.0033333334")

    def test_a_month_of_daily_postings_adds_up_to_the_period_interest(self) -> None:
        # 100000 at 4.35% on actual/360 for 30 days: 12.0833… a day, 362.50 for the period.
        result = Accrual(HALF_UP).over_period(
            D("100000"),
            D("0.0435"),
            DayCount.ACTUAL_360,
            period_start=date(2025, 1, 15),
            period_end=date(2025, 2, 14),
            period_days=30,
        )
        assert result.posted[:3] == (D("12.08"), D("12.09"), D("12.08"))
        assert result.total == D("362.50")
        assert abs(result.carry) < D("0.005")

    def test_zero_weight_posts_only_what_the_carry_makes_up(self) -> None:
        posted, carry = Accrual(HALF_UP).step(D("1000"), D("0.05"), DayCount.THIRTY_E_360, D("0.004"), days=0)
        assert (posted, carry) == (D("0.00"), D("0.004"))
        posted, carry = Accrual(HALF_UP).step(D("1000"), D("0.05"), DayCount.THIRTY_E_360, D("0.006"), days=0)
        assert (posted, carry) == (D("0.01"), D("-0.004"))

    def test_never_posts_a_negative_amount(self) -> None:
        posted, carry = Accrual(RoundingPolicy(RoundingMode.UP)).step(
            D("0"), D("0.05"), DayCount.ACTUAL_365, D("-0.009")
        )
        assert posted == D("0.00") and carry == D("-0.009")


class TestAccrualDays:
    def test_actual_conventions_weigh_every_day_one(self) -> None:
        weights = accrual_weights(
            day_count=DayCount.ACTUAL_365,
            period_start=date(2025, 1, 15),
            period_end=date(2025, 2, 15),
            period_days=31,
        )
        assert weights == [1] * 31

    def test_30_360_counts_the_31st_as_the_30th_and_adds_february_days(self) -> None:
        """30E/360 counts 15 Jan → 31 Jan as 15 days, the same as 15 Jan → 30 Jan (a 31st is the
        30th), and 15 Jan → 1 Feb as 16: so the 30th of January weighs 0 and the 31st 1, and the
        weights to any day add up to ``DayCount.days`` from the period's start."""
        jan = accrual_weights(
            day_count=DayCount.THIRTY_E_360,
            period_start=date(2025, 1, 15),
            period_end=date(2025, 2, 15),
            period_days=30,
        )
        assert jan[date(2025, 1, 30).day - 15] == 0 and jan[date(2025, 1, 31).day - 15] == 1
        assert sum(jan[:16]) == DayCount.THIRTY_E_360.days(date(2025, 1, 15), date(2025, 1, 31)) == 15
        assert sum(jan) == 30
        feb = accrual_weights(
            day_count=DayCount.THIRTY_E_360,
            period_start=date(2025, 2, 15),
            period_end=date(2025, 3, 15),
            period_days=30,
        )
        assert feb[13] == 3 and sum(feb) == 30  # 28 Feb → 1 Mar counts 3 days under 30E/360

    @given(start=st.dates(date(2024, 1, 1), date(2026, 12, 1)), length=st.integers(1, 40))
    def test_30_360_weights_to_a_day_are_the_30e_360_days_to_it(self, start: date, length: int) -> None:
        """Within a period, the weights of the days before ``d`` add up to
        ``DayCount.THIRTY_E_360.days(start, d)`` (capped at the period's days), so interest
        accrued to a day is what a payoff quote on that day counts."""
        end = start + timedelta(days=length)
        period_days = DayCount.THIRTY_E_360.days(start, end)
        if period_days <= 0:
            return
        weights = accrual_weights(
            day_count=DayCount.THIRTY_E_360, period_start=start, period_end=end, period_days=period_days
        )
        for k in range(length):
            d = start + timedelta(days=k)
            assert sum(weights[:k]) == min(DayCount.THIRTY_E_360.days(start, d), period_days)

    def test_30_360_end_of_month_anchor_still_sums_to_the_period(self) -> None:
        for start, end in [(date(2025, 1, 31), date(2025, 2, 28)), (date(2025, 2, 28), date(2025, 3, 31))]:
            weights = accrual_weights(
                day_count=DayCount.THIRTY_E_360, period_start=start, period_end=end, period_days=30
            )
            assert sum(weights) == 30 and min(weights) >= 0

    def test_day_outside_the_period_is_refused(self) -> None:
        with pytest.raises(AccrualError, match="outside the period"):
            accrual_days(
                day_count=DayCount.ACTUAL_360,
                day=date(2025, 2, 15),
                period_start=date(2025, 1, 15),
                period_end=date(2025, 2, 15),
                period_days=31,
            )


class TestPeriodRule:
    """Daily postings of a period add up to the schedule's interest for that period."""

    @settings(max_examples=60, deadline=None)
    @given(
        principal=st.decimals(min_value=D("100"), max_value=D("2000000"), places=2),
        rate=st.decimals(min_value=D("0.001"), max_value=D("0.24"), places=6),
        term=st.integers(1, 24),
        method=st.sampled_from(RepaymentMethod),
        day_count=st.sampled_from(DayCount),
        mode=st.sampled_from(RoundingMode),
        start=st.dates(date(2023, 1, 1), date(2027, 12, 31)),
    )
    def test_posted_over_each_period_equals_period_interest_within_a_fen(
        self,
        principal: Decimal,
        rate: Decimal,
        term: int,
        method: RepaymentMethod,
        day_count: DayCount,
        mode: RoundingMode,
        start: date,
    ) -> None:
        policy = RoundingPolicy(mode)
        schedule = generate_schedule(
            principal=principal,
            annual_rate=rate,
            term=term,
            method=method,
            start=start,
            day_count=day_count,
            policy=policy,
        )
        accrual = Accrual(policy)
        for inst in schedule.instalments:
            balance = inst.balance_after + inst.principal
            result = accrual.over_period(
                balance,
                rate,
                day_count,
                period_start=inst.start_date,
                period_end=inst.due_date,
                period_days=inst.days,
            )
            assert abs(result.total - inst.interest) <= D("0.01")
            # Exactly: the postings are the quantised accrued total rounded once.
            quantised = daily_interest(balance, rate, day_count).quantize(
                ACCRUAL_QUANTUM, rounding=ROUND_FLOOR
            )
            if mode is not RoundingMode.HALF_EVEN:
                assert result.total == policy.round(quantised * inst.days)


class TestVectorisedAccrual:
    @settings(max_examples=200, deadline=None)
    @given(
        balances=st.lists(st.integers(0, 10**11), min_size=1, max_size=20),
        rates=st.lists(st.integers(0, 36_000_000), min_size=20, max_size=20),
        day_count=st.sampled_from(DayCount),
    )
    def test_integer_daily_interest_is_the_decimal_one_rounded_down_to_1e_8_fen(
        self, balances: list[int], rates: list[int], day_count: DayCount
    ) -> None:
        rates = rates[: len(balances)]
        got = daily_interest_fen_scaled(
            np.array(balances, dtype=np.int64), np.array(rates, dtype=np.int64), day_count.days_in_year
        )
        for b, r, g in zip(balances, rates, got.tolist(), strict=True):
            exact = daily_interest(from_scaled(b, 2), from_scaled(r, RATE_SCALE), day_count)
            assert g == int((exact * 10**10).to_integral_value(rounding=ROUND_FLOOR))

    @settings(max_examples=40, deadline=None)
    @given(
        loans=st.lists(
            st.tuples(st.integers(1, 5 * 10**9), st.integers(1, 36_000_000)), min_size=1, max_size=8
        ),
        day_count=st.sampled_from(DayCount),
        mode=st.sampled_from(RoundingMode),
        weights=st.lists(st.integers(0, 3), min_size=40, max_size=40),
    )
    def test_batch_and_decimal_accrual_post_the_same_fen_and_carry(
        self, loans: list[tuple[int, int]], day_count: DayCount, mode: RoundingMode, weights: list[int]
    ) -> None:
        balance_fen = np.array([b for b, _ in loans], dtype=np.int64)
        rate_1e8 = np.array([r for _, r in loans], dtype=np.int64)
        carry_scaled = np.zeros(len(loans), dtype=np.int64)
        carries = [D(0)] * len(loans)
        accrual = Accrual(RoundingPolicy(mode))
        for weight in weights:
            posted_fen, carry_scaled = accrue_fen_scaled(
                balance_fen,
                rate_1e8,
                carry_scaled,
                days_in_year=day_count.days_in_year,
                weights=weight,
                mode=mode,
            )
            for i, (b, r) in enumerate(loans):
                posted, carries[i] = accrual.step(
                    from_scaled(b, 2), from_scaled(r, RATE_SCALE), day_count, carries[i], days=weight
                )
                assert to_minor(posted) == int(posted_fen[i])
                assert carries[i] * 10**10 == int(carry_scaled[i])

    def test_split_rounds_half_up_and_keeps_the_rest(self) -> None:
        half = FEN_SCALE // 2
        posted, carry = split_posted_fen(np.array([half, half - 1, 3 * FEN_SCALE + half, -5]), np.zeros(4))
        assert posted.tolist() == [1, 0, 4, 0]
        assert carry.tolist() == [-half, half - 1, -half, -5]

    def test_half_even_ties_go_to_the_even_fen(self) -> None:
        half = FEN_SCALE // 2
        posted, _ = split_posted_fen(np.array([half, FEN_SCALE + half]), np.zeros(2), mode="half_even")
        assert posted.tolist() == [0, 2]

    def test_refuses_overflow_negatives_and_floats(self) -> None:
        with pytest.raises(AccrualError, match="overflow"):
            daily_interest_fen_scaled(np.array([10**12]), np.array([36_000_000]), 360)
        with pytest.raises(AccrualError, match="zero or more"):
            daily_interest_fen_scaled(np.array([-1]), np.array([1]), 360)
        with pytest.raises(TypeError, match="integer array"):
            daily_interest_fen_scaled(np.array([1.5]), np.array([1]), 360)
        with pytest.raises(AccrualError, match="360 or 365"):
            daily_interest_fen_scaled(np.array([1]), np.array([1]), 366)

    def test_rate_scale_matches_money_to_scaled(self) -> None:
        assert to_scaled(D("0.0435"), RATE_SCALE) == 4_350_000
        assert daily_interest_fen_scaled(np.array([10_000_000]), np.array([4_350_000]), 360).tolist() == [
            120_833_333_333
        ]  # 100000.00 yuan: 12.0833333333 yuan = 1208.33333333 fen a day

    def test_a_period_through_the_batch_posts_the_schedule_interest(self) -> None:
        start = date(2025, 1, 15)
        weights = accrual_weights(
            day_count=DayCount.ACTUAL_360,
            period_start=start,
            period_end=start + timedelta(days=30),
            period_days=30,
        )
        carry = np.zeros(1, dtype=np.int64)
        total = 0
        for w in weights:
            posted, carry = accrue_fen_scaled(
                np.array([10_000_000]), np.array([4_350_000]), carry, days_in_year=360, weights=w
            )
            total += int(posted[0])
        assert total == 36_250  # 362.50 yuan
