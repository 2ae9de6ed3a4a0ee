"""Use cases of the portrait: build it, build the targets, read them back."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from creditfactory import contract
from creditfactory.contract import lake as contract_lake
from creditfactory.errors import InvalidInput
from creditfactory.portrait import polars_engine, store
from creditfactory.portrait.errors import (
    CustomerNotInPortrait,
    EngineUnavailable,
    MissingTables,
    NoDataAtAsOf,
    PortraitNotFound,
    UnknownEngine,
)
from creditfactory.portrait.features import COLUMNS
from creditfactory.portrait.model import month_of
from creditfactory.portrait.plan import AsOf, CataloguePlan, catalogue_plan
from creditfactory.portrait.targets import target_column, target_frame

#: Tables without which no portrait is built. The others (bureau, tax, invoices, farmland,
#: social security, devices, contacts, negative list) are external or optional feeds: when the
#: lake lacks one, its features are empty (or their fill value) and the manifest says so.
REQUIRED_TABLES: tuple[str, ...] = (
    "customers",
    "deposit_accounts",
    "account_flows",
    "loans",
    "loan_performance",
)

ENGINES = ("local", "spark")

#: ``progress(stage, done, total)``: called as each step of a build starts and at the end.
Progress = Callable[[str, int, int], None]

PART_ROWS = 500_000


@dataclass(frozen=True, slots=True)
class BuildResult:
    as_of: date
    engine: str
    path: Path
    rows: int
    features: int
    seconds: float
    by_segment: dict[str, int]
    fingerprint: str
    missing_tables: tuple[str, ...] = ()
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "engine": self.engine,
            "path": str(self.path),
            "customers": self.rows,
            "features": self.features,
            "seconds": round(self.seconds, 3),
            "by_segment": self.by_segment,
            "fingerprint": self.fingerprint,
            "missing_tables": list(self.missing_tables),
        }


@dataclass(frozen=True, slots=True)
class TargetResult:
    as_of: date
    path: Path
    rows: int
    observable: int
    bad: int
    horizon_months: int
    history_end: date | None
    seconds: float
    unobservable: dict[str, int]

    @property
    def bad_rate(self) -> float | None:
        """Bad rate among observable customers."""
        return self.bad / self.observable if self.observable else None

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "path": str(self.path),
            "customers": self.rows,
            "observable": self.observable,
            "bad": self.bad,
            "bad_rate": None if self.bad_rate is None else round(self.bad_rate, 6),
            "horizon_months": self.horizon_months,
            "history_end": None if self.history_end is None else self.history_end.isoformat(),
            "unobservable": self.unobservable,
            "seconds": round(self.seconds, 3),
        }


# ------------------------------------------------------------------ inputs


def _present_tables(lake: Path, plan: CataloguePlan) -> frozenset[str]:
    present = frozenset(t for t in plan.tables if contract_lake.exists(lake, t))
    missing = [t for t in REQUIRED_TABLES if t not in present]
    if missing:
        raise MissingTables(
            f"the lake at {lake} has no {', '.join(missing)}; ingest the bank's extracts first "
            f"(creditfactory ingest DIR)",
            missing=missing,
        )
    return present


def input_fingerprint(lake: Path, tables: tuple[str, ...]) -> dict[str, Any]:
    """The lake files a build read: per table its batches and files (name and size), and one
    SHA-256 over all of them. Lake files are never rewritten, so name and size identify them."""
    digest = hashlib.sha256()
    per_table: dict[str, Any] = {}
    for table in tables:
        files = contract_lake.files(lake, table)
        entries = [{"file": p.name, "bytes": p.stat().st_size} for p in files]
        per_table[table] = {"batches": contract_lake.batches(lake, table), "files": entries}
        for entry in entries:
            digest.update(f"{table}/{entry['file']}:{entry['bytes']}\n".encode())
    return {"sha256": digest.hexdigest(), "tables": per_table}


def catalogue_fingerprint(plan: CataloguePlan) -> str:
    """A SHA-256 of the definitions: equal fingerprints mean the same features computed the same way."""
    text = repr((plan.base, [sp.source for sp in plan.sources], plan.features))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_as_of(lake: Path, at: AsOf) -> None:
    known = (
        contract.scan(lake, "customers")
        .filter(pl.col("opened_date") <= pl.lit(at.as_of, dtype=pl.Date))
        .select(pl.len())
        .collect()
        .item()
    )
    months = contract.scan(lake, "account_flows").select(
        pl.col("month").min().alias("first"), pl.col("month").max().alias("last")
    )
    first, last = months.collect().row(0)
    if not known:
        raise NoDataAtAsOf(
            f"no customer of the lake at {lake} was a customer on {at.as_of}; choose a later as-of date",
            as_of=at.as_of.isoformat(),
        )
    if first is None or last is None or at.ref_month < first or at.ref_month > last:
        span = "none" if first is None else f"{first:%Y-%m} to {last:%Y-%m}"
        raise NoDataAtAsOf(
            f"the as-of date {at.as_of} needs the account flows of {at.ref_month:%Y-%m}, "
            f"but the lake holds months {span}",
            as_of=at.as_of.isoformat(),
            first_month=None if first is None else first.isoformat(),
            last_month=None if last is None else last.isoformat(),
        )


# ------------------------------------------------------------------ build


def build(
    lake: Path,
    *,
    as_of: date,
    engine: str = "local",
    progress: Progress | None = None,
    spark: Any = None,
    part_rows: int = PART_ROWS,
) -> BuildResult:
    """Compute the portrait at ``as_of`` and publish it to ``LAKE/portrait/as_of=<date>/``.

    One row per customer whose relationship began on or before ``as_of``, using only data known
    at that date. ``engine`` is ``local`` (Polars on this machine) or ``spark`` (``spark``: a
    session to use; by default a local one). A rebuild replaces the published portrait; a build
    that fails leaves what was there before.
    """
    if engine not in ENGINES:
        raise UnknownEngine(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}", engine=engine)
    started = time.perf_counter()
    lake = Path(lake)
    plan = catalogue_plan()
    present = _present_tables(lake, plan)
    at = AsOf.at(as_of)
    _check_as_of(lake, at)
    fingerprint = input_fingerprint(lake, tuple(t for t in plan.tables if t in present))
    store.clean_leftovers(lake, store.PORTRAIT)
    staging = store.stage(lake, store.PORTRAIT)
    try:
        if engine == "local":
            stage_seconds = _build_local(lake, plan, at, present, staging, progress, part_rows)
        else:
            stage_seconds = _build_spark(lake, plan, at, present, staging, progress, spark)
        written = pl.scan_parquet(store.parts(staging))
        counts = written.group_by("segment").len().sort("segment").collect()
        by_segment = {str(s): int(n) for s, n in counts.iter_rows()}
        rows = sum(by_segment.values())
        seconds = time.perf_counter() - started
        manifest = _manifest(plan, at, engine, rows, seconds, by_segment, fingerprint, present, staging)
        manifest["stage_seconds"] = {k: round(v, 3) for k, v in stage_seconds.items()}
        store.write_manifest(staging, manifest)
        target = store.folder(lake, store.PORTRAIT, as_of)
        store.publish(staging, target)
    except BaseException:
        store.discard(staging)
        raise
    if progress:
        progress("done", len(plan.sources) + 3, len(plan.sources) + 3)
    return BuildResult(
        as_of=as_of,
        engine=engine,
        path=target,
        rows=rows,
        features=len(plan.features),
        seconds=seconds,
        by_segment=by_segment,
        fingerprint=fingerprint["sha256"],
        missing_tables=tuple(t for t in plan.tables if t not in present),
        stage_seconds=stage_seconds,
    )


def _build_local(
    lake: Path,
    plan: CataloguePlan,
    at: AsOf,
    present: frozenset[str],
    staging: Path,
    progress: Progress | None,
    part_rows: int,
) -> dict[str, float]:
    total = len(plan.sources) + 3
    seconds: dict[str, float] = {}

    def step(name: str, done: int) -> float:
        if progress:
            progress(name, done, total)
        return time.perf_counter()

    t0 = step("customers", 0)
    base = polars_engine.customer_codes(
        polars_engine.base_frame(lake, plan.base, at=at, present=present).collect(engine="streaming")
    )
    codes = base.lazy().select("customer_id", "_code")
    seconds["customers"] = time.perf_counter() - t0
    parts: list[pl.DataFrame] = []
    for i, sp in enumerate(plan.sources, start=1):
        t0 = step(sp.source.name, i)
        frame = polars_engine.source_frame(lake, sp, at=at, present=present, codes=codes)
        parts.append(frame.collect(engine="streaming"))
        seconds[sp.source.name] = time.perf_counter() - t0
    t0 = step("assemble", total - 2)
    portrait = polars_engine.assemble(base, parts, plan, at=at).collect()
    del parts, base
    seconds["assemble"] = time.perf_counter() - t0
    t0 = step("write", total - 1)
    for i, offset in enumerate(range(0, max(portrait.height, 1), part_rows)):
        portrait.slice(offset, part_rows).write_parquet(
            staging / f"part-{i:05d}.parquet", compression="zstd", compression_level=1, statistics=True
        )
    seconds["write"] = time.perf_counter() - t0
    return seconds


def _build_spark(
    lake: Path,
    plan: CataloguePlan,
    at: AsOf,
    present: frozenset[str],
    staging: Path,
    progress: Progress | None,
    spark: Any,
) -> dict[str, float]:
    try:
        from creditfactory.portrait import spark_engine

        session = spark if spark is not None else spark_engine.session()
    except Exception as exc:  # ImportError without PySpark; a Java error without a JVM
        raise EngineUnavailable(f"the spark engine cannot start here: {exc}") from exc
    total = len(plan.sources) + 3
    if progress:
        progress("plan", 0, total)
    t0 = time.perf_counter()
    frame = spark_engine.portrait_frame(session, lake, plan, at=at, present=present)
    if progress:
        progress("compute and write", 1, total)
    out = staging / "_spark"
    frame.write.mode("overwrite").parquet(str(out))
    for i, part in enumerate(sorted(out.glob("part-*.parquet"))):
        part.rename(staging / f"part-{i:05d}.parquet")
    store.discard(out)
    return {"spark": time.perf_counter() - t0}


def _manifest(
    plan: CataloguePlan,
    at: AsOf,
    engine: str,
    rows: int,
    seconds: float,
    by_segment: dict[str, int],
    fingerprint: dict[str, Any],
    present: frozenset[str],
    staging: Path,
) -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"name": "customer_id", "type": "string", "dtype": "string", "description": "Customer number"},
        {"name": "as_of", "type": "date", "dtype": "date", "description": "As-of date of the portrait"},
    ]
    for col in COLUMNS:
        family = "number" if col.dtype == "float" else col.dtype
        columns.append(
            {
                "name": col.name,
                "type": family,
                "dtype": col.dtype,
                "description": col.description,
                "label_zh": col.label_zh,
            }
        )
    for feat in plan.features:
        columns.append(
            {
                "name": feat.name,
                "type": feat.dtype.family,
                "dtype": feat.dtype.value,
                "description": feat.description,
                "label_zh": feat.label_zh,
                "group": feat.group,
                "table": feat.table,
                "window_months": feat.window_months,
                "feature": True,
            }
        )
    return {
        "kind": store.PORTRAIT,
        "as_of": at.as_of.isoformat(),
        "reference_month": at.ref_month.isoformat(),
        "engine": engine,
        "rows": rows,
        "features": len(plan.features),
        "seconds": round(seconds, 3),
        "by_segment": by_segment,
        "columns": columns,
        "catalogue_sha256": catalogue_fingerprint(plan),
        "input": fingerprint,
        "missing_tables": [t for t in plan.tables if t not in present],
        "parts": [p.name for p in store.parts(staging)],
        "polars": pl.__version__,
    }


def build_targets(
    lake: Path, *, as_of: date, horizon_months: int = 12, progress: Progress | None = None
) -> TargetResult:
    """Compute the performance target at ``as_of`` into ``LAKE/portrait_target/as_of=<date>/``."""
    if horizon_months < 1:
        raise InvalidInput(f"the outcome window must be at least one month, not {horizon_months}")
    started = time.perf_counter()
    lake = Path(lake)
    plan = catalogue_plan()
    present = _present_tables(lake, plan)
    at = AsOf.at(as_of)
    _check_as_of(lake, at)
    if progress:
        progress("targets", 0, 2)
    frame, last = target_frame(lake, at=at, horizon_months=horizon_months, present=present)
    result = frame.collect(engine="streaming")
    column = target_column(horizon_months)
    store.clean_leftovers(lake, store.TARGETS)
    staging = store.stage(lake, store.TARGETS)
    try:
        if progress:
            progress("write", 1, 2)
        result.write_parquet(staging / "part-00000.parquet", compression="zstd")
        observable = int(result["observable"].sum())
        bad = int(result.filter(pl.col("observable"))[column].cast(pl.Int64).sum())
        reasons = result["unobservable_reason"].drop_nulls().value_counts(sort=True)
        unobservable = {str(r): int(n) for r, n in reasons.iter_rows()}
        seconds = time.perf_counter() - started
        history_end = None if last is None else month_of(last)
        store.write_manifest(
            staging,
            {
                "kind": store.TARGETS,
                "as_of": as_of.isoformat(),
                "reference_month": at.ref_month.isoformat(),
                "target": column,
                "horizon_months": horizon_months,
                "rows": result.height,
                "observable": observable,
                "bad": bad,
                "unobservable": unobservable,
                "history_end": None if history_end is None else history_end.isoformat(),
                "seconds": round(seconds, 3),
                "columns": [
                    {"name": "customer_id", "type": "string"},
                    {"name": "as_of", "type": "date"},
                    {"name": column, "type": "number"},
                    {"name": "observable", "type": "bool"},
                    {"name": "unobservable_reason", "type": "string"},
                ],
                "input": input_fingerprint(lake, ("customers", "loans", "loan_performance")),
            },
        )
        target = store.folder(lake, store.TARGETS, as_of)
        store.publish(staging, target)
    except BaseException:
        store.discard(staging)
        raise
    if progress:
        progress("done", 2, 2)
    return TargetResult(
        as_of=as_of,
        path=target,
        rows=result.height,
        observable=observable,
        bad=bad,
        horizon_months=horizon_months,
        history_end=history_end,
        seconds=seconds,
        unobservable=unobservable,
    )


# ------------------------------------------------------------------ read


def _published(lake: Path, kind: str, as_of: date) -> Path:
    path = store.folder(Path(lake), kind, as_of)
    if store.read_manifest(path) is None:
        what = "portrait" if kind == store.PORTRAIT else "targets"
        built = store.built_dates(Path(lake), kind)
        hint = f"built: {', '.join(d.isoformat() for d in built)}" if built else "none built yet"
        command = "creditfactory portrait build --as-of " + as_of.isoformat()
        raise PortraitNotFound(
            f"no {what} at {as_of} in the lake at {lake} ({hint}); run `{command}`",
            as_of=as_of.isoformat(),
        )
    return path


def read(lake: Path, *, as_of: date) -> pl.LazyFrame:
    """The published portrait at ``as_of``, lazily (one row per customer)."""
    return pl.scan_parquet(store.parts(_published(lake, store.PORTRAIT, as_of)))


def read_targets(lake: Path, *, as_of: date) -> pl.LazyFrame:
    """The published targets at ``as_of``: ``customer_id``, ``as_of``, ``bad_12m``, ``observable``, …"""
    return pl.scan_parquet(store.parts(_published(lake, store.TARGETS, as_of)))


def files(lake: Path, *, as_of: date) -> list[Path]:
    """The Parquet parts of the published portrait at ``as_of`` (for engines that read files)."""
    return store.parts(_published(lake, store.PORTRAIT, as_of))


def manifest(lake: Path, *, as_of: date) -> dict[str, Any]:
    """The manifest of the published portrait at ``as_of``."""
    data = store.read_manifest(_published(lake, store.PORTRAIT, as_of))
    assert data is not None
    return data


def schema(lake: Path, *, as_of: date) -> dict[str, str]:
    """Column -> ``number`` | ``string`` | ``bool`` | ``date`` of the portrait at ``as_of``
    (what a strategy is checked against)."""
    return {c["name"]: c["type"] for c in manifest(lake, as_of=as_of)["columns"]}


def available(lake: Path) -> list[date]:
    """As-of dates with a published portrait, oldest first."""
    return store.built_dates(Path(lake), store.PORTRAIT)


def targets_available(lake: Path) -> list[date]:
    return store.built_dates(Path(lake), store.TARGETS)


def customer(lake: Path, *, as_of: date, customer_id: str) -> dict[str, Any]:
    """One customer's row of the portrait at ``as_of`` as a mapping (column -> value)."""
    rows = read(lake, as_of=as_of).filter(pl.col("customer_id") == customer_id).collect()
    if rows.height == 0:
        raise CustomerNotInPortrait(
            f"customer {customer_id} is not in the portrait at {as_of} (not a customer by then, or unknown)",
            customer_id=customer_id,
            as_of=as_of.isoformat(),
        )
    return rows.row(0, named=True)
