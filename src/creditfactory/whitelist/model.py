"""Pure rules of the whitelist: statuses, version identity, the line layout, diffs, import checks.

A *whitelist version* is one run of a mining strategy (or one imported list) at an as-of date:
every customer scored, each line either ``eligible`` (with a grade, a limit, a price and an
expiry) or ``excluded`` (with the reason codes of the rules that excluded it). Eligible lines are
published to the database as *entries*, the offers that mobile banking shows; each entry has a
status of its own::

    offered  --apply-->     applied   --accept-->  accepted   (a credit line was opened)
    applied  --decline-->   declined                           (final)
    applied  --withdraw-->  offered                            (the customer gave up the application)
    offered | applied | accepted  --exit-->    exited          (final: overdue, negative list ...)
    offered                       --expire-->  expired         (final: the offer ran out)
    offered                       --supersede--> superseded    (final: a newer version replaced it)

Amounts in the version's Parquet lines are integer fen (``limit_fen``) and rates integers at
scale 1e-8 (``annual_rate_e8``); in memory they are ``Decimal``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

import polars as pl

from creditfactory.errors import Conflict

__all__ = [
    "LINE_SCHEMA",
    "DiffResult",
    "RuleInfo",
    "decode_masks",
    "EntryEvent",
    "EntryStatus",
    "IllegalEntryTransition",
    "ImportBounds",
    "Outcome",
    "VersionStatus",
    "diff_lines",
    "next_status",
    "version_identity",
]


class VersionStatus(StrEnum):
    BUILDING = "building"
    """Being mined or imported: not visible to offer look-ups."""
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    """A newer version of the same list was published."""
    RETIRED = "retired"
    """Withdrawn by hand: its offers are no longer shown."""


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    EXCLUDED = "excluded"


class EntryStatus(StrEnum):
    OFFERED = "offered"
    APPLIED = "applied"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXITED = "exited"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"

    @property
    def live(self) -> bool:
        """The offer can still be shown to the customer."""
        return self in (EntryStatus.OFFERED, EntryStatus.APPLIED)


class EntryEvent(StrEnum):
    APPLY = "apply"
    ACCEPT = "accept"
    DECLINE = "decline"
    WITHDRAW = "withdraw"
    EXIT = "exit"
    EXPIRE = "expire"
    SUPERSEDE = "supersede"


_S = EntryStatus
_E = EntryEvent

TRANSITIONS: Mapping[tuple[EntryStatus, EntryEvent], EntryStatus] = {
    (_S.OFFERED, _E.APPLY): _S.APPLIED,
    (_S.APPLIED, _E.ACCEPT): _S.ACCEPTED,
    (_S.OFFERED, _E.ACCEPT): _S.ACCEPTED,
    (_S.APPLIED, _E.DECLINE): _S.DECLINED,
    (_S.OFFERED, _E.DECLINE): _S.DECLINED,
    (_S.APPLIED, _E.WITHDRAW): _S.OFFERED,
    (_S.OFFERED, _E.EXIT): _S.EXITED,
    (_S.APPLIED, _E.EXIT): _S.EXITED,
    (_S.ACCEPTED, _E.EXIT): _S.EXITED,
    (_S.OFFERED, _E.EXPIRE): _S.EXPIRED,
    (_S.OFFERED, _E.SUPERSEDE): _S.SUPERSEDED,
}


class IllegalEntryTransition(Conflict):
    code = "whitelist_illegal_transition"
    title = "Illegal whitelist status change"


def allowed_events(status: EntryStatus) -> tuple[EntryEvent, ...]:
    return tuple(e for (s, e) in TRANSITIONS if s is status)


def next_status(status: EntryStatus, event: EntryEvent) -> EntryStatus:
    """The status after ``event``; raises :class:`IllegalEntryTransition` when not allowed."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        allowed = ", ".join(e.value for e in allowed_events(status)) or "nothing (final status)"
        raise IllegalEntryTransition(
            f"a whitelist entry that is {status.value} cannot {event.value}; allowed: {allowed}",
            status=status.value,
            event=event.value,
        ) from None


def sources_for(event: EntryEvent) -> tuple[EntryStatus, ...]:
    """The statuses from which ``event`` is allowed (for set-based updates)."""
    return tuple(s for (s, e) in TRANSITIONS if e is event)


# ------------------------------------------------------------------ versions


def version_identity(
    *,
    kind: str,
    name: str,
    as_of: date | None,
    strategy_hash: str,
    models: Mapping[str, str],
    input_fingerprint: str,
) -> str:
    """The identity of a version: the same strategy, models, date and input give the same one.

    Mining the same inputs again therefore finds the version already made instead of a second
    one, and re-importing the same file changes nothing.
    """
    payload = json.dumps(
        {
            "kind": kind,
            "name": name,
            "as_of": as_of.isoformat() if as_of else None,
            "strategy": strategy_hash,
            "models": dict(sorted(models.items())),
            "input": input_fingerprint,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


#: The columns of a version's lines in the lake, in order. ``reason`` is the decisive reason code
#: (the first rule, in the strategy's order, with the outcome's action); ``hit_mask`` and
#: ``hit_mask_2`` have bit *i* set when rule *i* fired (up to 126 rules), decoded to reason codes
#: with the version's ``rules.json`` (:func:`decode_masks`).
LINE_SCHEMA: Mapping[str, pl.DataType] = {
    "customer_id": pl.String(),
    "segment": pl.String(),
    "branch_id": pl.String(),
    "outcome": pl.String(),
    "reason": pl.String(),
    "hit_mask": pl.Int64(),
    "hit_mask_2": pl.Int64(),
    "score": pl.Float64(),
    "pd": pl.Float64(),
    "grade": pl.String(),
    "limit_fen": pl.Int64(),
    "annual_rate_e8": pl.Int64(),
    "expiry_date": pl.Date(),
}


def conform_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with exactly :data:`LINE_SCHEMA`'s columns (missing optional ones as nulls)."""
    cols = []
    for name, dtype in LINE_SCHEMA.items():
        if name in frame.columns:
            cols.append(pl.col(name).cast(dtype))
        elif name in ("customer_id", "outcome"):
            raise ValueError(f"whitelist lines need a {name!r} column")
        elif name.startswith("hit_mask"):
            cols.append(pl.lit(0, dtype=dtype).alias(name))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule of the strategy that made a version: its bit, id, action and reason."""

    bit: int
    id: str
    action: str
    code: str
    en: str
    zh: str


def decode_masks(frame: pl.DataFrame, rules: Sequence[RuleInfo]) -> pl.Series:
    """Every fired rule's reason code per line, in rule order (a list per row).

    Lines share few distinct masks, so each distinct mask is decoded once and joined back.
    """
    if frame.height == 0:
        return pl.Series("reasons", [], dtype=pl.List(pl.String))
    masks = frame.select(pl.col("hit_mask").fill_null(0), pl.col("hit_mask_2").fill_null(0)).with_row_index(
        "_i"
    )
    distinct = masks.select("hit_mask", "hit_mask_2").unique()
    words = (distinct["hit_mask"].to_list(), distinct["hit_mask_2"].to_list())
    decoded = [
        [r.code for r in rules if (words[r.bit // 63][k] >> (r.bit % 63)) & 1] for k in range(distinct.height)
    ]
    table = distinct.with_columns(pl.Series("reasons", decoded, dtype=pl.List(pl.String)))
    joined = masks.join(table, on=["hit_mask", "hit_mask_2"], how="left").sort("_i")
    return joined["reasons"]


# ------------------------------------------------------------------ diff


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Who was added, removed, or had the limit, price or grade changed between two versions."""

    added: pl.DataFrame
    removed: pl.DataFrame
    changed: pl.DataFrame
    unchanged: int
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added.height,
            "removed": self.removed.height,
            "changed": self.changed.height,
            "unchanged": self.unchanged,
            **self.summary,
        }


def _why_excluded() -> pl.Expr:
    return pl.col("reason").fill_null("")


def diff_lines(old: pl.DataFrame, new: pl.DataFrame) -> DiffResult:
    """Compare two versions' lines (each with :data:`LINE_SCHEMA`'s columns).

    * **added**: eligible in ``new`` and not in ``old`` — with why ``old`` left them out
      (its exclusion reasons, or "not scored" when the customer was not in it);
    * **removed**: eligible in ``old`` and not in ``new`` — with ``new``'s exclusion reasons;
    * **changed**: eligible in both with another limit, price or grade — with both values and
      the score move.
    """
    keep = ["customer_id", "outcome", "reason", "score", "grade", "limit_fen", "annual_rate_e8"]
    o = old.select(keep).with_columns(_why_excluded().alias("why"))
    n = new.select(keep).with_columns(_why_excluded().alias("why"))
    joined = o.join(n, on="customer_id", how="full", suffix="_new", coalesce=True)
    was = pl.col("outcome") == Outcome.ELIGIBLE.value
    now = pl.col("outcome_new") == Outcome.ELIGIBLE.value
    added = (
        joined.filter(now & ~was.fill_null(False))
        .select(
            "customer_id",
            pl.col("grade_new").alias("grade"),
            pl.col("limit_fen_new").alias("limit_fen"),
            pl.col("annual_rate_e8_new").alias("annual_rate_e8"),
            pl.when(pl.col("outcome").is_null())
            .then(pl.lit("not in the earlier version"))
            .otherwise(pl.concat_str(pl.lit("was excluded: "), pl.col("why")))
            .alias("why"),
        )
        .sort("customer_id")
    )
    removed = (
        joined.filter(was & ~now.fill_null(False))
        .select(
            "customer_id",
            "grade",
            "limit_fen",
            "annual_rate_e8",
            pl.when(pl.col("outcome_new").is_null())
            .then(pl.lit("not in the newer version"))
            .otherwise(pl.concat_str(pl.lit("now excluded: "), pl.col("why_new")))
            .alias("why"),
        )
        .sort("customer_id")
    )
    both = joined.filter(was & now)
    moved = (
        (pl.col("limit_fen") != pl.col("limit_fen_new"))
        | (pl.col("annual_rate_e8") != pl.col("annual_rate_e8_new"))
        | (pl.col("grade") != pl.col("grade_new"))
    )
    changed = (
        both.filter(moved)
        .select(
            "customer_id",
            pl.col("grade").alias("grade_old"),
            "grade_new",
            pl.col("limit_fen").alias("limit_fen_old"),
            "limit_fen_new",
            pl.col("annual_rate_e8").alias("annual_rate_e8_old"),
            "annual_rate_e8_new",
            pl.col("score").alias("score_old"),
            "score_new",
        )
        .with_columns(
            pl.when(pl.col("grade_old") != pl.col("grade_new"))
            .then(pl.concat_str(pl.lit("grade "), pl.col("grade_old"), pl.lit(" → "), pl.col("grade_new")))
            .when(pl.col("score_old").is_not_null() & pl.col("score_new").is_not_null())
            .then(
                pl.concat_str(
                    pl.lit("score "),
                    pl.col("score_old").round(1).cast(pl.String),
                    pl.lit(" → "),
                    pl.col("score_new").round(1).cast(pl.String),
                )
            )
            .otherwise(pl.lit("limit or price formula"))
            .alias("why")
        )
        .sort("customer_id")
    )
    unchanged = both.height - changed.height
    summary = {
        "limit_added_fen": int(added["limit_fen"].sum() or 0),
        "limit_removed_fen": int(removed["limit_fen"].sum() or 0),
        "limit_change_fen": int((changed["limit_fen_new"] - changed["limit_fen_old"]).sum() or 0),
    }
    return DiffResult(added=added, removed=removed, changed=changed, unchanged=unchanged, summary=summary)


# ------------------------------------------------------------------ import


@dataclass(frozen=True, slots=True)
class ImportBounds:
    """What a hand-approved line may hold: the product's limit and price bounds."""

    min_limit: Decimal = Decimal("1000")
    max_limit: Decimal = Decimal("300000")
    min_rate: Decimal = Decimal("0.03")
    max_rate: Decimal = Decimal("0.24")
    max_expiry_days: int = 366

    def __post_init__(self) -> None:
        if not (Decimal(0) < self.min_limit <= self.max_limit):
            raise ValueError("import bounds need 0 < min_limit <= max_limit")
        if not (Decimal(0) <= self.min_rate <= self.max_rate < Decimal(1)):
            raise ValueError("import bounds need 0 <= min_rate <= max_rate < 1")


def check_amount(value: Decimal, *, field_name: str, low: Decimal, high: Decimal, places: int) -> list[str]:
    problems = []
    if value.as_tuple().exponent < -places:  # type: ignore[operator]
        problems.append(f"{field_name}: {value} has more than {places} decimal places")
    if value < low or value > high:
        problems.append(f"{field_name}: {value} is outside the product's bounds {low}–{high}")
    return problems
