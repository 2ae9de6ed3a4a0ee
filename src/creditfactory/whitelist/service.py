"""Use cases of the whitelist: versions, publication, offers, status changes, diffs.

A version is made in three steps so that nothing half-made is ever visible:

1. :func:`begin_version` records the version as ``building`` (or finds the one with the same
   identity: the same strategy, models, as-of date and input give the same version, so mining
   again changes nothing);
2. the miner or the importer writes the lines to ``LAKE/whitelist/_staging-v<id>/``;
3. :func:`publish_version` moves them into place, loads the eligible lines into
   ``whitelist_entry`` in bulk, supersedes the previous version of the same list and marks the
   version ``published`` — one transaction, so offer look-ups see all of it or none of it.

A run that dies between the steps leaves a ``building`` version that the next run with the same
identity takes over and rebuilds. Services flush; the boundary commits.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import bindparam, case, func, literal, select, update
from sqlalchemy.orm import Session

from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Conflict, DomainError, NotFound
from creditfactory.money import from_minor, from_scaled
from creditfactory.whitelist import store
from creditfactory.whitelist.model import (
    LINE_SCHEMA,
    DiffResult,
    EntryEvent,
    EntryStatus,
    Outcome,
    RuleInfo,
    VersionStatus,
    conform_lines,
    decode_masks,
    diff_lines,
    next_status,
    sources_for,
)
from creditfactory.whitelist.store import WhitelistEntry, WhitelistVersion

RATE_SCALE = 8
RULES_FILE = "rules.json"
STRATEGY_FILE = "strategy.yaml"


class VersionNotFound(NotFound):
    code = "whitelist_version_not_found"
    title = "Whitelist version not found"


class VersionNotPublished(Conflict):
    code = "whitelist_version_not_published"
    title = "Whitelist version is not published"


class NoOffer(NotFound):
    code = "no_offer"
    title = "No pre-approved offer"


class WhitelistLinesMissing(DomainError):
    code = "whitelist_lines_missing"
    http_status = 500
    title = "Whitelist lines missing"


# ------------------------------------------------------------------ lake layout


def version_dir(lake: Path, version_id: int) -> Path:
    return lake / "whitelist" / f"v{version_id:06d}"


def staging_dir(lake: Path, version_id: int) -> Path:
    return lake / "whitelist" / f"_staging-v{version_id:06d}"


def fresh_staging(lake: Path, version_id: int) -> Path:
    """An empty staging folder for a version's lines (left-overs of a crashed run removed)."""
    path = staging_dir(lake, version_id)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_lines(staging: Path, frame: pl.DataFrame, *, part: int) -> Path:
    """Write one part of a version's lines (conformed to the line layout) into staging."""
    path = staging / f"lines-{part:05d}.parquet"
    conform_lines(frame).write_parquet(path, compression="zstd", statistics=True)
    return path


def read_lines(lake: Path, version_id: int) -> pl.LazyFrame:
    """Every line of a version, eligible and excluded."""
    folder = version_dir(lake, version_id)
    parts = sorted(folder.glob("lines-*.parquet"))
    if not parts:
        raise WhitelistLinesMissing(
            f"whitelist version {version_id} has no lines in {folder}: the lake and the database disagree",
            version_id=version_id,
        )
    return pl.scan_parquet(parts, schema=dict(LINE_SCHEMA))


# ------------------------------------------------------------------ versions


@dataclass(frozen=True, slots=True)
class VersionSpec:
    identity: str
    name: str
    kind: str
    as_of: date
    strategy_hash: str
    input_fingerprint: str
    strategy_name: str | None = None
    strategy_version: str | None = None
    models: dict[str, str] | None = None
    engine: str = "local"


def begin_version(
    uow: UnitOfWork, *, spec: VersionSpec, created_by: str, now: datetime
) -> tuple[WhitelistVersion, bool]:
    """The version for ``spec``: ``(version, True)`` when it is already published (nothing to
    do), ``(version, False)`` when it must be built (a new one, or a ``building`` left-over)."""
    session = uow.session
    found = store.get_by_identity(session, spec.identity)
    if found is not None and found.status is not VersionStatus.BUILDING:
        return found, True
    if found is None:
        found = WhitelistVersion(
            identity=spec.identity,
            name=spec.name,
            kind=spec.kind,
            status=VersionStatus.BUILDING,
            as_of=spec.as_of,
            strategy_name=spec.strategy_name,
            strategy_version=spec.strategy_version,
            strategy_hash=spec.strategy_hash,
            models=json.dumps(spec.models or {}, sort_keys=True),
            input_fingerprint=spec.input_fingerprint,
            engine=spec.engine,
            created_by=created_by,
            created_at=now,
        )
        session.add(found)
    else:
        found.engine = spec.engine
        found.created_by = created_by
        found.created_at = now
    session.flush()
    return found, False


def get_version(uow: UnitOfWork, *, version_id: int) -> WhitelistVersion:
    version = store.get(uow.session, version_id)
    if version is None:
        raise VersionNotFound(f"whitelist version {version_id} does not exist", version_id=version_id)
    return version


def list_versions(uow: UnitOfWork, *, limit: int = 50) -> Sequence[WhitelistVersion]:
    return store.list_versions(uow.session, limit=limit)


def summarise(lines: pl.LazyFrame) -> dict[str, Any]:
    """Counts and limits by segment, grade and branch; exclusions by reason (JSON-ready)."""
    eligible = lines.filter(pl.col("outcome") == Outcome.ELIGIBLE.value)

    def by(col: str) -> list[dict[str, Any]]:
        frame = (
            eligible.group_by(col)
            .agg(
                pl.len().alias("customers"),
                pl.col("limit_fen").sum().alias("limit_fen"),
                pl.col("limit_fen").mean().alias("mean_limit_fen"),
                (pl.col("annual_rate_e8").mean()).alias("mean_rate_e8"),
            )
            .sort(col, nulls_last=True)
            .collect()
        )
        return [
            {
                col: r[col],
                "customers": int(r["customers"]),
                "limit": str(from_minor(int(r["limit_fen"] or 0))),
                "mean_limit": round(float(r["mean_limit_fen"] or 0) / 100, 2),
                "mean_rate": round(float(r["mean_rate_e8"] or 0) / 10**RATE_SCALE, 6),
            }
            for r in frame.iter_rows(named=True)
        ]

    scored = lines.group_by("segment").agg(
        pl.len().alias("scored"),
        (pl.col("outcome") == Outcome.ELIGIBLE.value).sum().alias("eligible"),
    )
    reasons = (
        lines.filter(pl.col("outcome") == Outcome.EXCLUDED.value)
        .group_by("reason")
        .agg(pl.len().alias("customers"))
        .sort(["customers", "reason"], descending=[True, False])
        .collect()
    )
    return {
        "segments_scored": {
            r["segment"]: {"scored": int(r["scored"]), "eligible": int(r["eligible"])}
            for r in scored.sort("segment").collect().iter_rows(named=True)
        },
        "by_segment": by("segment"),
        "by_grade": by("grade"),
        "by_branch": by("branch_id"),
        "exclusions": {str(r["reason"]): int(r["customers"]) for r in reasons.iter_rows(named=True)},
    }


@dataclass(frozen=True, slots=True)
class PublishResult:
    version_id: int
    scored: int
    eligible: int
    excluded: int
    total_limit: Decimal
    superseded: list[int]


def read_rules(lake: Path, version_id: int) -> list[RuleInfo]:
    """The rules of the strategy that made a version (empty for an imported list)."""
    path = version_dir(lake, version_id) / RULES_FILE
    if not path.exists():
        return []
    return [RuleInfo(**r) for r in json.loads(path.read_text(encoding="utf-8"))]


def write_rules(staging: Path, rules: Sequence[RuleInfo]) -> None:
    payload = [
        {"bit": r.bit, "id": r.id, "action": r.action, "code": r.code, "en": r.en, "zh": r.zh} for r in rules
    ]
    (staging / RULES_FILE).write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


def _entry_rows(
    lines: pl.DataFrame, *, version_id: int, on: date, rules: Sequence[RuleInfo], batch: int = 100_000
) -> Iterator[tuple[Any, ...]]:
    eligible = lines.filter(pl.col("outcome") == Outcome.ELIGIBLE.value)
    eligible = eligible.with_columns(decode_masks(eligible, rules).list.join(" ").alias("reasons"))
    bad = eligible.filter(
        pl.col("limit_fen").is_null() | pl.col("annual_rate_e8").is_null() | pl.col("expiry_date").is_null()
    )
    if bad.height:
        raise WhitelistLinesMissing(
            f"{bad.height} eligible lines of version {version_id} have no limit, rate or expiry "
            f"(first: {bad['customer_id'][0]})",
            version_id=version_id,
        )
    status = EntryStatus.OFFERED.value
    for start in range(0, eligible.height, batch):
        part = eligible.slice(start, batch).select(
            "customer_id",
            "segment",
            "branch_id",
            "grade",
            "score",
            "limit_fen",
            "annual_rate_e8",
            "expiry_date",
            "reasons",
        )
        for cid, seg, branch, grade, score, limit, rate, expiry, reasons in part.iter_rows():
            yield (
                version_id,
                cid,
                seg,
                branch,
                grade,
                score,
                limit,
                rate,
                expiry,
                (reasons or None) and reasons[:200],
                status,
                on,
                None,
            )


def publish_version(
    uow: UnitOfWork,
    *,
    lake: Path,
    version_id: int,
    business_date: date,
    expiry_date: date | None,
    seconds: float,
    now: datetime,
) -> PublishResult:
    """Move the staged lines into place and publish the version (see the module's docstring)."""
    session = uow.session
    version = get_version(uow, version_id=version_id)
    if version.status is not VersionStatus.BUILDING:
        raise Conflict(
            f"whitelist version {version_id} is {version.status.value}; only a building version is published",
            version_id=version_id,
        )
    staging = staging_dir(lake, version_id)
    final = version_dir(lake, version_id)
    if staging.is_dir():
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    lines = read_lines(lake, version_id).collect()
    duplicated = lines.filter(pl.col("customer_id").is_duplicated())
    if duplicated.height:
        raise Conflict(
            f"whitelist version {version_id} lists customer {duplicated['customer_id'][0]} more than once",
            version_id=version_id,
        )
    session.execute(WhitelistEntry.__table__.delete().where(WhitelistEntry.version_id == version_id))
    eligible = store.add_entries(
        session,
        _entry_rows(lines, version_id=version_id, on=business_date, rules=read_rules(lake, version_id)),
    )

    superseded = list(
        session.scalars(
            select(WhitelistVersion.id).where(
                WhitelistVersion.name == version.name,
                WhitelistVersion.status == VersionStatus.PUBLISHED,
                WhitelistVersion.id != version_id,
            )
        )
    )
    if superseded:
        # An application in progress, or a line already opened, carries over to the new offer.
        for carried in (EntryStatus.APPLIED, EntryStatus.ACCEPTED):
            earlier = select(WhitelistEntry.customer_id).where(
                WhitelistEntry.version_id.in_(superseded), WhitelistEntry.status == carried
            )
            session.execute(
                update(WhitelistEntry)
                .where(WhitelistEntry.version_id == version_id, WhitelistEntry.customer_id.in_(earlier))
                .values(status=carried, status_reason="carried from the earlier version")
            )
        session.execute(
            update(WhitelistEntry)
            .where(
                WhitelistEntry.version_id.in_(superseded),
                WhitelistEntry.status.in_(sources_for(EntryEvent.SUPERSEDE)),
            )
            .values(
                status=EntryStatus.SUPERSEDED,
                status_date=business_date,
                status_reason=f"superseded by version {version_id}",
            )
        )
        session.execute(
            update(WhitelistVersion)
            .where(WhitelistVersion.id.in_(superseded))
            .values(status=VersionStatus.SUPERSEDED, closed_at=now)
        )
    scored = lines.height
    total_fen = int(lines.filter(pl.col("outcome") == Outcome.ELIGIBLE.value)["limit_fen"].sum() or 0)
    version.status = VersionStatus.PUBLISHED
    version.scored = scored
    version.eligible = eligible
    version.excluded = scored - eligible
    version.total_limit = from_minor(total_fen)
    version.expiry_date = expiry_date
    version.summary = json.dumps(summarise(lines.lazy()), ensure_ascii=False, sort_keys=True)
    version.seconds = seconds
    version.published_at = now
    session.flush()
    return PublishResult(
        version_id=version_id,
        scored=scored,
        eligible=eligible,
        excluded=scored - eligible,
        total_limit=from_minor(total_fen),
        superseded=superseded,
    )


def retire_version(uow: UnitOfWork, *, version_id: int, business_date: date, now: datetime) -> int:
    """Withdraw a published version: its open offers are no longer shown. Returns offers closed."""
    version = get_version(uow, version_id=version_id)
    if version.status is not VersionStatus.PUBLISHED:
        raise VersionNotPublished(
            f"whitelist version {version_id} is {version.status.value}; only a published one can be retired"
        )
    result = uow.session.execute(
        update(WhitelistEntry)
        .where(
            WhitelistEntry.version_id == version_id,
            WhitelistEntry.status.in_(sources_for(EntryEvent.SUPERSEDE)),
        )
        .values(status=EntryStatus.SUPERSEDED, status_date=business_date, status_reason="version retired")
    )
    version.status = VersionStatus.RETIRED
    version.closed_at = now
    uow.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ offers


@dataclass(frozen=True, slots=True)
class Offer:
    customer_id: str
    version_id: int
    list_name: str
    as_of: date
    grade: str | None
    limit: Decimal
    annual_rate: Decimal
    expiry_date: date
    status: EntryStatus
    segment: str | None
    branch_id: str | None
    score: float | None


def _live_entry() -> Any:
    # Core columns, not entities: asked on every application, mostly of customers without one
    e, v = WhitelistEntry.__table__.c, WhitelistVersion.__table__.c
    return (
        select(
            e.customer_id,
            v.id,
            v.name,
            v.as_of,
            e.grade,
            e.limit_amount,
            e.annual_rate,
            e.expiry_date,
            e.status,
            e.segment,
            e.branch_id,
            e.score,
        )
        .join_from(WhitelistEntry.__table__, WhitelistVersion.__table__, v.id == e.version_id)
        .where(
            e.customer_id == bindparam("customer_id"),
            v.status == VersionStatus.PUBLISHED,
            e.status.in_((EntryStatus.OFFERED, EntryStatus.APPLIED)),
            e.expiry_date >= bindparam("on"),
        )
        .order_by(v.published_at.desc(), v.id.desc())
        .limit(1)
    )


#: The read of :func:`find_offer` (parameters ``customer_id`` and ``on``), at most one row, for
#: a caller that sends it with other reads (``db.reads.together``); :func:`offer_of` answers it.
LIVE_OFFER = _live_entry()


def find_offer(session: Session, *, customer_id: str, on: date) -> Offer | None:
    """The customer's current pre-approved offer on ``on``: the newest published version's live
    entry that has not expired; ``None`` when there is none."""
    session.flush()  # as an ORM query would (a Core one does not flush by itself)
    return offer_of(session.connection().execute(LIVE_OFFER, {"customer_id": customer_id, "on": on}).first())


def offer_of(row: Sequence[Any] | None) -> Offer | None:
    """The offer of a row of :data:`LIVE_OFFER` (``None`` for no row)."""
    if row is None:
        return None
    return Offer(
        customer_id=row[0],
        version_id=row[1],
        list_name=row[2],
        as_of=row[3],
        grade=row[4],
        limit=row[5],
        annual_rate=row[6],
        expiry_date=row[7],
        status=row[8],
        segment=row[9],
        branch_id=row[10],
        score=row[11],
    )


def current_offer(uow: UnitOfWork, *, customer_id: str, on: date) -> Offer:
    """As :func:`find_offer`, raising :class:`NoOffer` when the customer has none."""
    offer = find_offer(uow.session, customer_id=customer_id, on=on)
    if offer is None:
        raise NoOffer(
            f"customer {customer_id} has no pre-approved offer on {on.isoformat()}", customer_id=customer_id
        )
    return offer


def record_event(
    uow: UnitOfWork, *, customer_id: str, event: EntryEvent, on: date, reason: str | None = None
) -> int:
    """Move the customer's entries in published versions that allow ``event`` (an application,
    a decline, an accepted offer ...). Returns how many entries changed; 0 when the customer has
    no entry the event applies to (an applicant without an offer)."""
    # One UPDATE (each source status to its next one) instead of loading the entries: it runs
    # on every application, mostly for applicants without an entry.
    session = uow.session
    params = {"p_customer_id": customer_id, "p_on": on, "p_reason": reason}
    # Entries loaded in the session are brought up to date by the ORM's UPDATE; without any (the
    # application path), a plain UPDATE on the connection spares the ORM's bookkeeping.
    mine = (WhitelistEntry, WhitelistVersion)
    if any(key[0] in mine for key in session.identity_map.keys()) or any(
        isinstance(obj, mine) for obj in session.new
    ):
        result = session.execute(_event_update(event).execution_options(synchronize_session="fetch"), params)
    else:
        result = session.connection().execute(_event_update(event), params)
    return int(result.rowcount or 0)


@cache
def _event_update(event: EntryEvent) -> Any:
    """The UPDATE of :func:`record_event` for one event (built once per event)."""
    status = WhitelistEntry.__table__.c.status
    moves = [(source, next_status(source, event)) for source in sources_for(event)]
    return (
        update(WhitelistEntry)
        .where(
            WhitelistEntry.customer_id == bindparam("p_customer_id"),
            WhitelistEntry.status.in_([source for source, _ in moves]),
            WhitelistEntry.version_id.in_(
                select(WhitelistVersion.id).where(WhitelistVersion.status == VersionStatus.PUBLISHED)
            ),
        )
        .values(
            status=case(
                *[(status == literal(a, status.type), literal(b, status.type)) for a, b in moves],
                else_=status,
            ),
            status_date=bindparam("p_on"),
            status_reason=bindparam("p_reason"),
        )
    )


def exit_customers(session: Session, *, customer_ids: Any, on: date, reason: str) -> int:
    """Take customers off every published whitelist (set-based): ``customer_ids`` is a list or a
    SELECT of customer ids, e.g. those overdue at the end of day."""
    result = session.execute(
        update(WhitelistEntry)
        .where(
            WhitelistEntry.customer_id.in_(customer_ids),
            WhitelistEntry.status.in_(sources_for(EntryEvent.EXIT)),
            WhitelistEntry.version_id.in_(
                select(WhitelistVersion.id).where(WhitelistVersion.status == VersionStatus.PUBLISHED)
            ),
        )
        .values(status=EntryStatus.EXITED, status_date=on, status_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def expire_offers(session: Session, *, on: date) -> int:
    """Offers whose expiry date has passed by ``on`` become ``expired`` (set-based)."""
    result = session.execute(
        update(WhitelistEntry)
        .where(
            WhitelistEntry.status.in_(sources_for(EntryEvent.EXPIRE)),
            WhitelistEntry.expiry_date < on,
        )
        .values(status=EntryStatus.EXPIRED, status_date=on, status_reason="offer expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def status_counts(uow: UnitOfWork, *, version_id: int) -> dict[str, int]:
    rows = uow.session.execute(
        select(WhitelistEntry.status, func.count())
        .where(WhitelistEntry.version_id == version_id)
        .group_by(WhitelistEntry.status)
    ).all()
    return {str(getattr(s, "value", s)): int(n) for s, n in rows}


def customer_facts(session: Session, *, on: date) -> pl.DataFrame:
    """What the whitelist itself knows per customer, for the next mining run's exclusion rules:
    ``has_line_with_us`` (an offer was accepted), ``days_since_decline`` (latest decline),
    ``exited_before`` (taken off a list)."""
    accepted = (
        select(WhitelistEntry.customer_id).where(WhitelistEntry.status == EntryStatus.ACCEPTED).distinct()
    )
    declined = (
        select(WhitelistEntry.customer_id, func.max(WhitelistEntry.status_date))
        .where(WhitelistEntry.status == EntryStatus.DECLINED)
        .group_by(WhitelistEntry.customer_id)
    )
    exited = select(WhitelistEntry.customer_id).where(WhitelistEntry.status == EntryStatus.EXITED).distinct()
    facts: dict[str, dict[str, Any]] = {}
    for (cid,) in session.execute(accepted):
        facts.setdefault(cid, {})["has_line_with_us"] = True
    for cid, when in session.execute(declined):
        facts.setdefault(cid, {})["days_since_decline"] = (on - when).days
    for (cid,) in session.execute(exited):
        facts.setdefault(cid, {})["exited_before"] = True
    return pl.DataFrame(
        {
            "customer_id": list(facts),
            "has_line_with_us": [f.get("has_line_with_us", False) for f in facts.values()],
            "days_since_decline": [f.get("days_since_decline") for f in facts.values()],
            "exited_before": [f.get("exited_before", False) for f in facts.values()],
        },
        schema={
            "customer_id": pl.String,
            "has_line_with_us": pl.Boolean,
            "days_since_decline": pl.Int64,
            "exited_before": pl.Boolean,
        },
    )


# ------------------------------------------------------------------ diff


def diff_versions(uow: UnitOfWork, *, lake: Path, old_id: int, new_id: int) -> DiffResult:
    """Who was added, removed, or had the limit, price or grade changed, and why."""
    for vid in (old_id, new_id):
        version = get_version(uow, version_id=vid)
        if version.status is VersionStatus.BUILDING:
            raise VersionNotPublished(f"whitelist version {vid} is still building")
    old = read_lines(lake, old_id).collect()
    new = read_lines(lake, new_id).collect()
    return diff_lines(old, new)


def rate_of(e8: int) -> Decimal:
    return from_scaled(e8, RATE_SCALE)


def offer_date(session: Session, *, clock: Any) -> date:
    """The date offers are judged on: the open business date, or the bank's calendar day
    (Beijing time) before the first business date is opened."""
    from zoneinfo import ZoneInfo

    from creditfactory.jobs.store import BusinessDateRow

    row = session.get(BusinessDateRow, "default")
    if row is not None:
        return row.business_date
    return clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
