"""Days past due, buckets and five-tier classification, scalar and vectorised."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory.servicing.model import (
    TIERS,
    Bucket,
    ClassificationPolicy,
    DelinquencyError,
    Tier,
    bucket_codes,
    classify,
    classify_array,
    days_past_due,
    days_past_due_array,
    months_current,
    months_current_array,
    tier_codes,
    tier_for_dpd,
)

POLICY = ClassificationPolicy()
DUE = date(2025, 3, 15)


class TestDaysPastDue:
    def test_nothing_due_is_zero(self) -> None:
        assert days_past_due(None, date(2025, 6, 1), 3) == 0

    def test_grace_hides_the_first_days_then_counts_from_the_due_date(self) -> None:
        assert [days_past_due(DUE, DUE + timedelta(days=k), 3) for k in range(0, 6)] == [0, 0, 0, 0, 4, 5]
        assert days_past_due(DUE, DUE + timedelta(days=1), 0) == 1
        assert days_past_due(DUE, DUE - timedelta(days=3), 0) == 0  # not yet due

    def test_array_version_matches(self) -> None:
        dues = np.array(["2025-03-15", "NaT", "2025-01-01", "2025-05-30"], dtype="datetime64[D]")
        got = days_past_due_array(dues, date(2025, 6, 1), np.array([3, 3, 0, 5]))
        expected = [
            days_past_due(d, date(2025, 6, 1), g)
            for d, g in [(DUE, 3), (None, 3), (date(2025, 1, 1), 0), (date(2025, 5, 30), 5)]
        ]
        assert got.tolist() == expected == [78, 0, 151, 0]

    def test_refuses_negative_grace(self) -> None:
        with pytest.raises(DelinquencyError):
            days_past_due(DUE, DUE, -1)


class TestBuckets:
    @pytest.mark.parametrize(
        ("dpd", "bucket"),
        [
            (0, Bucket.CURRENT),
            (1, Bucket.DPD_1_30),
            (30, Bucket.DPD_1_30),
            (31, Bucket.DPD_31_60),
            (60, Bucket.DPD_31_60),
            (61, Bucket.DPD_61_90),
            (90, Bucket.DPD_61_90),
            (91, Bucket.DPD_91_180),
            (180, Bucket.DPD_91_180),
            (181, Bucket.DPD_181_PLUS),
            (4000, Bucket.DPD_181_PLUS),
        ],
    )
    def test_boundaries(self, dpd: int, bucket: Bucket) -> None:
        assert Bucket.of(dpd) is bucket
        assert bucket_codes(np.array([dpd]))[0] == bucket.code


class TestTiers:
    @pytest.mark.parametrize(
        ("dpd", "tier"),
        [
            (0, Tier.NORMAL),
            (1, Tier.SPECIAL_MENTION),
            (90, Tier.SPECIAL_MENTION),
            (91, Tier.SUBSTANDARD),
            (180, Tier.SUBSTANDARD),
            (181, Tier.DOUBTFUL),
            (360, Tier.DOUBTFUL),
            (361, Tier.LOSS),
        ],
    )
    def test_default_thresholds(self, dpd: int, tier: Tier) -> None:
        assert tier_for_dpd(dpd, POLICY) is tier

    def test_chinese_labels_and_non_performing(self) -> None:
        assert [t.label for t in TIERS] == ["正常", "关注", "次级", "可疑", "损失"]
        assert [t.non_performing for t in TIERS] == [False, False, True, True, True]

    def test_policy_may_be_stricter_but_not_looser_than_the_regulatory_floors(self) -> None:
        assert tier_for_dpd(61, ClassificationPolicy(substandard_from=61)) is Tier.SUBSTANDARD
        assert tier_for_dpd(271, ClassificationPolicy(doubtful_from=271)) is Tier.DOUBTFUL
        with pytest.raises(DelinquencyError, match="looser than the regulatory floor"):
            ClassificationPolicy(substandard_from=92)
        with pytest.raises(DelinquencyError, match="looser than the regulatory floor"):
            ClassificationPolicy(doubtful_from=272)
        with pytest.raises(DelinquencyError, match="rise strictly"):
            ClassificationPolicy(special_mention_from=91)


class TestClassify:
    def test_first_review_takes_the_tier_by_dpd(self) -> None:
        assert classify(dpd=120, previous=None, months_current=0, policy=POLICY) is Tier.SUBSTANDARD

    def test_downgrades_at_once_by_several_tiers(self) -> None:
        assert classify(dpd=200, previous=Tier.NORMAL, months_current=0, policy=POLICY) is Tier.DOUBTFUL

    def test_a_cured_loan_stays_down_until_the_observation_period_is_over(self) -> None:
        for months in range(6):
            assert classify(dpd=0, previous=Tier.SUBSTANDARD, months_current=months, policy=POLICY) is (
                Tier.SUBSTANDARD
            )
        assert classify(dpd=0, previous=Tier.SUBSTANDARD, months_current=6, policy=POLICY) is (
            Tier.SPECIAL_MENTION
        )

    def test_upgrades_one_tier_per_review(self) -> None:
        tier = Tier.LOSS
        path = []
        for _ in range(5):
            tier = classify(dpd=0, previous=tier, months_current=12, policy=POLICY)
            path.append(tier)
        assert path == [Tier.DOUBTFUL, Tier.SUBSTANDARD, Tier.SPECIAL_MENTION, Tier.NORMAL, Tier.NORMAL]

    def test_a_loan_still_overdue_is_not_upgraded(self) -> None:
        assert classify(dpd=10, previous=Tier.DOUBTFUL, months_current=9, policy=POLICY) is Tier.DOUBTFUL

    def test_observation_period_is_a_policy_setting(self) -> None:
        quick = ClassificationPolicy(upgrade_after_months_current=3)
        assert classify(dpd=0, previous=Tier.SPECIAL_MENTION, months_current=3, policy=quick) is Tier.NORMAL


dpds = st.integers(0, 800)
previous_tiers = st.one_of(st.none(), st.sampled_from(TIERS))
policies = st.builds(
    ClassificationPolicy,
    special_mention_from=st.just(1),
    substandard_from=st.integers(31, 91),
    doubtful_from=st.integers(121, 271),
    loss_from=st.integers(300, 361),
    upgrade_after_months_current=st.integers(0, 12),
)


class TestClassificationProperties:
    @settings(max_examples=300, deadline=None)
    @given(dpd=dpds, previous=previous_tiers, months=st.integers(0, 24), policy=policies)
    def test_never_upgrades_before_the_observation_period_nor_by_more_than_one_tier(
        self, dpd: int, previous: Tier | None, months: int, policy: ClassificationPolicy
    ) -> None:
        tier = classify(dpd=dpd, previous=previous, months_current=months, policy=policy)
        by_dpd = tier_for_dpd(dpd, policy)
        assert tier.code >= by_dpd.code  # never better than DPD allows
        if previous is not None:
            if months < policy.upgrade_after_months_current or dpd > 0:
                assert tier.code >= previous.code
            assert tier.code >= previous.code - 1

    @settings(max_examples=100, deadline=None)
    @given(
        rows=st.lists(st.tuples(dpds, previous_tiers, st.integers(0, 24)), min_size=1, max_size=50),
        policy=policies,
    )
    def test_vectorised_classification_equals_the_scalar_one(
        self, rows: list[tuple[int, Tier | None, int]], policy: ClassificationPolicy
    ) -> None:
        dpd = np.array([r[0] for r in rows])
        previous = np.array([-1 if r[1] is None else r[1].code for r in rows], dtype=np.int8)
        months = np.array([r[2] for r in rows])
        got = classify_array(dpd=dpd, previous=previous, months_current=months, policy=policy)
        expected = [classify(dpd=d, previous=p, months_current=m, policy=policy).code for d, p, m in rows]
        assert got.tolist() == expected
        assert tier_codes(dpd, policy).tolist() == [tier_for_dpd(int(d), policy).code for d in dpd]
        assert bucket_codes(dpd).tolist() == [Bucket.of(int(d)).code for d in dpd]

    def test_array_inputs_are_checked(self) -> None:
        with pytest.raises(DelinquencyError, match="previous tier codes"):
            classify_array(dpd=[0], previous=[7], months_current=[0], policy=POLICY)
        with pytest.raises(DelinquencyError, match="dpd must be zero or more"):
            tier_codes([-1])


class TestMonthsCurrent:
    """Months current are the month ends after ``current_since``, up to and including the day."""

    @pytest.mark.parametrize(
        ("since", "on", "months"),
        [
            (date(2025, 1, 14), date(2025, 1, 30), 0),  # drawn 15 January, before its first month end
            (date(2025, 1, 14), date(2025, 1, 31), 1),  # the month end itself counts
            (date(2025, 1, 30), date(2025, 1, 31), 1),  # drawn on a month end: current there
            (date(2025, 1, 31), date(2025, 1, 31), 0),  # past due at that month end: starts again
            (date(2025, 1, 31), date(2025, 2, 27), 0),
            (date(2025, 1, 31), date(2025, 2, 28), 1),
            (date(2024, 1, 31), date(2024, 2, 29), 1),  # a leap year's February ends on the 29th
            (date(2024, 1, 31), date(2024, 2, 28), 0),
            (date(2024, 11, 30), date(2025, 6, 30), 7),  # across a year end
            (date(2025, 6, 30), date(2025, 1, 31), 0),  # never negative
        ],
    )
    def test_worked_examples(self, since: date, on: date, months: int) -> None:
        assert months_current(since, on) == months
        assert months_current_array(np.array([since], dtype="datetime64[D]"), on).tolist() == [months]

    @settings(max_examples=200, deadline=None)
    @given(
        since=st.lists(st.dates(date(2020, 1, 1), date(2026, 12, 31)), min_size=1, max_size=30),
        on=st.dates(date(2020, 1, 1), date(2026, 12, 31)),
    )
    def test_the_count_equals_counting_month_ends_day_by_day(self, since: list[date], on: date) -> None:
        def counted(start: date) -> int:
            n, day = 0, start + timedelta(days=1)
            while day <= on:
                n += (day + timedelta(days=1)).day == 1
                day += timedelta(days=1)
            return n

        got = months_current_array(np.array(since, dtype="datetime64[D]"), on).tolist()
        assert got == [months_current(s, on) for s in since] == [counted(s) for s in since]

    def test_a_missing_date_is_refused(self) -> None:
        with pytest.raises(DelinquencyError, match="current_since"):
            months_current_array(np.array(["NaT"], dtype="datetime64[D]"), date(2025, 1, 31))
