"""Days past due, ageing buckets and the five-tier loan classification (五级分类).

**Days past due.** ``on − oldest unpaid due date`` in calendar days, or 0 while that is within
the grace days. Grace hides the first days only: once exceeded, DPD counts from the due date
itself (逾期天数自应还款日起算), so a loan with 3 grace days is 4 days past due on the fourth day.
The due date itself is day 0.

**Classification.** :class:`ClassificationPolicy` maps DPD to a :class:`Tier`; by default
0 → normal 正常, 1–90 → special mention 关注, 91–180 → substandard 次级, 181–360 → doubtful 可疑,
above 360 → loss 损失. The 2023 Measures on risk classification of financial assets of
commercial banks (《商业银行金融资产风险分类办法》) set floors that a policy may tighten but
not loosen: overdue more than 90 days is at least substandard, more than 270 days at least
doubtful, more than 360 days loss. The defaults are stricter than those floors for doubtful
(from 181 days, the common retail practice); a policy looser than a floor is refused.

The rule :func:`classify` implements, review by review:

1. Downgrades are immediate: a loan whose DPD maps to a worse tier than before takes that tier
   at once, however many tiers down.
2. DPD alone never upgrades. A loan better by DPD than its previous tier keeps its previous
   tier until it is current (DPD 0) and has been current for at least
   ``upgrade_after_months_current`` months (6 by default: the Measures let a non-performing
   asset back up only after its arrears are repaid and payments have then been made on time
   for a sustained period).
3. Then it moves up one tier per review, never more, and never above its tier by DPD.

**Months current.** A loan is current at a month end when its DPD is 0 there; its months
current are the month ends it has been current since it was drawn or last past due at a month
end. A loan keeps the date its count starts after (``current_since``: the day before it was
drawn, or the last month end at which it was past due), and :func:`months_current` counts the
month ends after that date: the count moves at a month end without writing the loan, and only
a loan past due at a month end is written (its count starts again).

The numpy versions (:func:`days_past_due_array`, :func:`bucket_codes`, :func:`tier_codes`,
:func:`classify_array`) give the same answers as the scalar ones for a whole portfolio at once;
tiers and buckets are then small integer codes (``Tier.code``, ``Bucket.code``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from creditfactory.errors import InvalidInput

__all__ = [
    "BUCKETS",
    "TIERS",
    "Bucket",
    "ClassificationPolicy",
    "DelinquencyError",
    "Tier",
    "bucket_codes",
    "classify",
    "classify_array",
    "days_past_due",
    "days_past_due_array",
    "tier_codes",
    "tier_for_dpd",
]


class DelinquencyError(InvalidInput):
    code = "invalid_delinquency_input"
    title = "Invalid delinquency input"


def _date(value: object, what: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{what} must be a datetime.date, got {type(value).__name__}")
    return value


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise DelinquencyError(f"{what} must be zero or more, got {value}", field=what)
    return int(value)


def days_past_due(oldest_unpaid_due: date | None, on: date, grace_days: int) -> int:
    """Days ``on`` is past the oldest unpaid due date; 0 within the grace days or with nothing due."""
    _date(on, "on")
    grace = _count(grace_days, "grace_days")
    if oldest_unpaid_due is None:
        return 0
    late = (on - _date(oldest_unpaid_due, "oldest_unpaid_due")).days
    return late if late > grace else 0


def days_past_due_array(
    oldest_unpaid_due: npt.ArrayLike, on: date, grace_days: npt.ArrayLike | int
) -> npt.NDArray[np.int64]:
    """:func:`days_past_due` for many loans; dates as ``datetime64[D]`` with NaT for nothing due."""
    _date(on, "on")
    due = np.asarray(oldest_unpaid_due, dtype="datetime64[D]")
    grace = np.asarray(grace_days, dtype=np.int64)
    if grace.size and grace.min() < 0:
        raise DelinquencyError("grace_days must be zero or more", field="grace_days")
    missing = np.isnat(due)
    late = (np.datetime64(on, "D") - np.where(missing, np.datetime64(on, "D"), due)).astype(np.int64)
    return np.where(~missing & (late > grace), late, 0).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Buckets


class Bucket(StrEnum):
    """Ageing buckets of days past due."""

    CURRENT = "current"
    DPD_1_30 = "1-30"
    DPD_31_60 = "31-60"
    DPD_61_90 = "61-90"
    DPD_91_180 = "91-180"
    DPD_181_PLUS = "181+"

    @property
    def code(self) -> int:
        return BUCKETS.index(self)

    @classmethod
    def of(cls, dpd: int) -> Bucket:
        """The bucket of ``dpd`` days past due."""
        days = _count(dpd, "dpd")
        return BUCKETS[int(np.searchsorted(_BUCKET_FLOORS, days, side="right")) - 1]


#: Buckets in order; ``Bucket.code`` is the index here.
BUCKETS: tuple[Bucket, ...] = tuple(Bucket)
_BUCKET_FLOORS = np.array([0, 1, 31, 61, 91, 181], dtype=np.int64)


def bucket_codes(dpd: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """``Bucket.code`` for each DPD."""
    days = np.asarray(dpd, dtype=np.int64)
    if days.size and days.min() < 0:
        raise DelinquencyError("dpd must be zero or more", field="dpd")
    return (np.searchsorted(_BUCKET_FLOORS, days, side="right") - 1).astype(np.int8)


# --------------------------------------------------------------------------------------------
# Five-tier classification


class Tier(StrEnum):
    """The five tiers of loan classification, best to worst."""

    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"

    @property
    def code(self) -> int:
        """0 (normal) … 4 (loss): higher is worse."""
        return TIERS.index(self)

    @property
    def label(self) -> str:
        """The Chinese name: 正常, 关注, 次级, 可疑, 损失."""
        return _TIER_LABELS[self]

    @property
    def non_performing(self) -> bool:
        """Substandard, doubtful and loss are non-performing (不良)."""
        return self.code >= Tier.SUBSTANDARD.code


#: Tiers best to worst; ``Tier.code`` is the index here.
TIERS: tuple[Tier, ...] = tuple(Tier)
_TIER_LABELS = {
    Tier.NORMAL: "正常",
    Tier.SPECIAL_MENTION: "关注",
    Tier.SUBSTANDARD: "次级",
    Tier.DOUBTFUL: "可疑",
    Tier.LOSS: "损失",
}

#: The 2023 Measures' floors: the latest first DPD at which a tier may begin.
REGULATORY_LATEST_FROM = {Tier.SUBSTANDARD: 91, Tier.DOUBTFUL: 271, Tier.LOSS: 361}


@dataclass(frozen=True, slots=True)
class ClassificationPolicy:
    """DPD thresholds of the tiers (the first DPD of each) and the upgrade observation period."""

    special_mention_from: int = 1
    substandard_from: int = 91
    doubtful_from: int = 181
    loss_from: int = 361
    upgrade_after_months_current: int = 6

    def __post_init__(self) -> None:
        values = (
            ("special_mention_from", self.special_mention_from),
            ("substandard_from", self.substandard_from),
            ("doubtful_from", self.doubtful_from),
            ("loss_from", self.loss_from),
            ("upgrade_after_months_current", self.upgrade_after_months_current),
        )
        for name, value in values:
            _count(value, name)
        thresholds = [v for _, v in values[:4]]
        if thresholds[0] < 1 or any(a >= b for a, b in zip(thresholds, thresholds[1:], strict=False)):
            raise DelinquencyError(
                "tier thresholds must rise strictly from special_mention_from >= 1: "
                + ", ".join(f"{n}={v}" for n, v in values[:4])
            )
        for tier, first in zip((Tier.SUBSTANDARD, Tier.DOUBTFUL, Tier.LOSS), thresholds[1:], strict=True):
            latest = REGULATORY_LATEST_FROM[tier]
            if first > latest:
                raise DelinquencyError(
                    f"{tier.value} from {first} days past due is looser than the regulatory floor "
                    f"(at least {tier.value} from {latest} days)",
                    field=f"{tier.value}_from",
                )

    @property
    def floors(self) -> npt.NDArray[np.int64]:
        """The first DPD of each tier, normal to loss."""
        return np.array(
            [0, self.special_mention_from, self.substandard_from, self.doubtful_from, self.loss_from],
            dtype=np.int64,
        )


DEFAULT_CLASSIFICATION = ClassificationPolicy()


def months_current(current_since: date, on: date) -> int:
    """Month ends after ``current_since`` up to and including ``on`` (0 when ``on`` is earlier)."""
    return max(_month_end_index(on) - _month_end_index(current_since), 0)


def _month_end_index(day: date) -> int:
    """Index of the last month end on or before ``day`` (months since January 1970)."""
    index = day.year * 12 + day.month - 1 - 1970 * 12
    month_end = (day + timedelta(days=1)).month != day.month
    return index if month_end else index - 1


def months_current_array(current_since: npt.ArrayLike, on: date) -> npt.NDArray[np.int64]:
    """:func:`months_current` for many loans; ``current_since`` as ``datetime64[D]``."""
    since = np.asarray(current_since, dtype="datetime64[D]")
    if np.isnat(since).any():
        raise DelinquencyError("current_since must be a date for every loan", field="current_since")
    counted = _month_end_index(_date(on, "on")) - _month_end_indexes(since)
    return np.maximum(counted, 0).astype(np.int64)


def _month_end_indexes(days: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    month = days.astype("datetime64[M]")
    month_end = (days + np.timedelta64(1, "D")).astype("datetime64[M]") != month
    return month.astype(np.int64) - (~month_end).astype(np.int64)


def tier_for_dpd(dpd: int, policy: ClassificationPolicy = DEFAULT_CLASSIFICATION) -> Tier:
    """The tier DPD alone gives."""
    days = _count(dpd, "dpd")
    return TIERS[int(np.searchsorted(policy.floors, days, side="right")) - 1]


def classify(*, dpd: int, previous: Tier | None, months_current: int, policy: ClassificationPolicy) -> Tier:
    """This review's tier from DPD, the previous tier and the months the loan has been current.

    See the module documentation for the rule: immediate downgrades; upgrades only when current
    for the observation period, one tier per review.
    """
    by_dpd = tier_for_dpd(dpd, policy)
    months = _count(months_current, "months_current")
    if previous is None:
        return by_dpd
    previous = Tier(previous)
    if by_dpd.code >= previous.code:
        return by_dpd
    if dpd == 0 and months >= policy.upgrade_after_months_current:
        return TIERS[max(previous.code - 1, by_dpd.code)]
    return previous


def tier_codes(
    dpd: npt.ArrayLike, policy: ClassificationPolicy = DEFAULT_CLASSIFICATION
) -> npt.NDArray[np.int8]:
    """``Tier.code`` by DPD alone, for each DPD."""
    days = np.asarray(dpd, dtype=np.int64)
    if days.size and days.min() < 0:
        raise DelinquencyError("dpd must be zero or more", field="dpd")
    return (np.searchsorted(policy.floors, days, side="right") - 1).astype(np.int8)


def classify_array(
    *,
    dpd: npt.ArrayLike,
    previous: npt.ArrayLike,
    months_current: npt.ArrayLike,
    policy: ClassificationPolicy,
) -> npt.NDArray[np.int8]:
    """:func:`classify` for many loans. ``previous`` holds tier codes, -1 where there is none."""
    days = np.asarray(dpd, dtype=np.int64)
    prev = np.asarray(previous, dtype=np.int64)
    months = np.asarray(months_current, dtype=np.int64)
    if prev.size and (prev.min() < -1 or prev.max() >= len(TIERS)):
        raise DelinquencyError("previous tier codes must be -1..4", field="previous")
    if months.size and months.min() < 0:
        raise DelinquencyError("months_current must be zero or more", field="months_current")
    by_dpd = tier_codes(days, policy).astype(np.int64)
    may_upgrade = (days == 0) & (months >= policy.upgrade_after_months_current)
    upgraded = np.where(may_upgrade, np.maximum(prev - 1, by_dpd), prev)
    result = np.where((prev < 0) | (by_dpd >= prev), by_dpd, upgraded)
    return result.astype(np.int8)
