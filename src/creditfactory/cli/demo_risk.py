"""The demo's risk stages: the customer portrait, one scorecard per segment, the whitelist.

Each stage goes through the same services as the commands (``portrait build``, ``model train``
and ``approve``, ``whitelist mine``) and is measured against the sandbox's truth, which the bank
itself never sees. Stages already done by an earlier run (same bank) are found and reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table as RichTable

from creditfactory import modeling, portrait, strategy, whitelist
from creditfactory.bootstrap import Container
from creditfactory.sandbox import measure
from creditfactory.whitelist import mining

#: Development and out-of-time windows (as-of dates whose 12 months of outcomes are in the
#: history), and the date the whitelist is mined at (the end of the history).
DEV = date(2024, 3, 31)
OOT = date(2024, 6, 30)
CURRENT = date(2025, 6, 30)
TARGET = "dpd30_12m"
SEGMENTS = ("farmer", "merchant", "salaried", "other")
TRAINER = "S-RISK-01"
APPROVER = "S-RISK-HEAD"
MINER = "S-RISK-02"


@dataclass
class ModelRow:
    segment: str
    name: str
    version: int
    test_auc: float | None
    oot_auc: float | None
    future_auc: float
    truth_auc: float
    features: int
    trained: bool


@dataclass
class RiskResult:
    portraits: dict[str, int]
    models: list[ModelRow]
    version_id: int
    mined: mining.MineResult
    quality: pl.DataFrame
    strategy_path: Path
    notes: list[str] = field(default_factory=list)


def build_portraits(c: Container, console: Console) -> dict[str, int]:
    built = set(portrait.available(c.lake_dir))
    with_targets = set(portrait.targets_available(c.lake_dir))
    out: dict[str, int] = {}
    for at in (DEV, OOT, CURRENT):
        if at not in built:
            result = portrait.build(c.lake_dir, as_of=at)
            out[at.isoformat()] = result.rows
        else:
            out[at.isoformat()] = int(portrait.manifest(c.lake_dir, as_of=at).get("rows") or 0)
        if at in (DEV, OOT) and at not in with_targets:
            portrait.build_targets(c.lake_dir, as_of=at)
    console.print(
        "  portraits (111 features per customer, only what was known on the day): "
        + ", ".join(f"{d} {n:,} customers" for d, n in out.items())
    )
    return out


def _auc(test: dict[str, Any] | None) -> float | None:
    return None if not test else test.get("auc")


#: A segment gets a scorecard of its own only with this many bad outcomes in the development
#: window (and a third of it out of time); smaller segments share a general scorecard trained on
#: every segment, as small banks do.
MIN_BADS = 30
GENERAL = "general_scorecard"


def _bads(frame: pl.DataFrame) -> int:
    return int(frame[TARGET].sum() or 0) if frame.height else 0


def _train_one(
    c: Container, *, name: str, segment: str | None, dev: pl.DataFrame, oot: pl.DataFrame | None
) -> None:
    with c.uow() as uow:
        result = modeling.train_and_register(
            uow,
            models_dir=c.models_dir,
            name=name,
            kind="scorecard",
            segment=segment,
            dev=dev,
            oot=oot,
            target=TARGET,
            features=None,
            trained_by=TRAINER,
            seed=42,
            clock=c.clock,
            exclude=modeling.portrait_exclusions(dev, target=TARGET),
            params={"max_features": 12, "C": 0.5},
            windows={"train_as_of": DEV.isoformat(), "oot_as_of": OOT.isoformat()},
            source={"source": "portrait", "train_as_of": DEV.isoformat(), "oot_as_of": OOT.isoformat()},
        )
        uow.commit()
    with c.uow() as uow:
        modeling.approve_version(
            uow,
            models_dir=c.models_dir,
            name=name,
            version=result.version,
            approved_by=APPROVER,
            clock=c.clock,
            schema=portrait.schema(c.lake_dir, as_of=CURRENT),
        )
        uow.commit()


def _approved(c: Container, name: str) -> bool:
    with c.uow() as uow:
        return any(str(v.status) == "approved" for v in modeling.list_versions(uow, name=name))


def train_models(c: Container, truth: pl.DataFrame, console: Console) -> list[ModelRow]:
    """One approved scorecard per segment with enough outcomes, a general one for the rest."""
    current = portrait.read(c.lake_dir, as_of=CURRENT).collect()
    dev_all = modeling.portrait_sample(c.lake_dir, as_of=DEV, segment=None, target=TARGET)
    oot_all = modeling.portrait_sample(c.lake_dir, as_of=OOT, segment=None, target=TARGET)
    chosen: dict[str, tuple[str, bool]] = {}
    for segment in SEGMENTS:
        name = f"{segment}_scorecard"
        if _approved(c, name):
            chosen[segment] = (name, False)
            continue
        dev = dev_all.filter(pl.col("segment") == segment)
        oot = oot_all.filter(pl.col("segment") == segment)
        if _bads(dev) >= MIN_BADS and _bads(oot) >= MIN_BADS // 3:
            _train_one(c, name=name, segment=segment, dev=dev, oot=oot)
            chosen[segment] = (name, True)
        else:
            chosen[segment] = (GENERAL, False)
    if any(name == GENERAL for name, _ in chosen.values()) and not _approved(c, GENERAL):
        _train_one(c, name=GENERAL, segment=None, dev=dev_all, oot=oot_all)
    rows: list[ModelRow] = []
    for segment in SEGMENTS:
        name, trained = chosen[segment]
        with c.uow() as uow:
            loaded = modeling.load_version(uow, models_dir=c.models_dir, name=name)
        samples = loaded.metrics.get("samples") or {}
        seg_rows = current.filter(pl.col("segment") == segment)
        scored = seg_rows.select("customer_id").with_columns(pl.Series("score", loaded.score(seg_rows)))
        vs_truth = measure.score_auc(scored, truth)
        rows.append(
            ModelRow(
                segment=segment,
                name=name,
                version=loaded.version,
                test_auc=_auc(samples.get("test")),
                oot_auc=_auc(samples.get("oot")),
                future_auc=vs_truth["model_auc"],
                truth_auc=vs_truth["truth_auc"],
                features=len(loaded.features),
                trained=trained,
            )
        )
    return rows


def print_models(console: Console, rows: list[ModelRow]) -> None:
    table = RichTable(
        title="Scorecards per segment (trained on the portrait at "
        f"{DEV}, validated out of time at {OOT}; then ranked against the truth after {CURRENT})",
        title_justify="left",
    )
    for col in (
        "segment",
        "model",
        "features",
        "test AUC",
        "out-of-time AUC",
        "AUC on the future",
        "truth's AUC",
    ):
        table.add_column(col, justify="left" if col in ("segment", "model") else "right")
    for r in rows:
        table.add_row(
            r.segment,
            f"{r.name} v{r.version}",
            str(r.features),
            "-" if r.test_auc is None else f"{r.test_auc:.3f}",
            "-" if r.oot_auc is None else f"{r.oot_auc:.3f}",
            f"{r.future_auc:.3f}",
            f"{r.truth_auc:.3f}",
        )
    console.print(table)
    console.print(
        "  'AUC on the future': the approved model's scores of every customer at "
        f"{CURRENT} against who really defaulted in the following 12 months; 'truth's AUC': the "
        "true default probability's own ranking of the same customers, the ceiling any model can reach."
    )


def demo_strategy(c: Container, models: list[ModelRow]) -> Path:
    """The shipped mining strategy with each segment pointing at the model it was given."""
    text = strategy.example_path("mining.yaml").read_text(encoding="utf-8")
    for m in models:
        text = re.sub(rf"(?m)^  {m.segment}: \S+", f"  {m.segment}: {m.name}", text, count=1)
    return write_if_changed(c.data_dir / "demo" / "mining.yaml", text)


def write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` unless it already holds it (a rerun keeps the file's time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def mine_whitelist(c: Container, console: Console, models: list[ModelRow]) -> tuple[mining.MineResult, Path]:
    path = demo_strategy(c, models)
    with c.uow() as uow:
        on = whitelist.service.offer_date(uow.session, clock=c.clock)
        # A later run keeps the version the demo published: since then customers have applied,
        # signed and borrowed, and mining again would (rightly) publish a different list.
        for v in whitelist.service.list_versions(uow):
            if v.as_of == CURRENT and v.created_by == MINER and str(v.status) == "published":
                return mining.MineResult(
                    version_id=v.id,
                    unchanged=True,
                    scored=v.scored,
                    eligible=v.eligible,
                    excluded=v.excluded,
                    total_limit=str(v.total_limit),
                    seconds=0.0,
                    engine=v.engine,
                    rows_per_second=0.0,
                ), path
    result = mining.mine(
        c.uow,
        lake=c.lake_dir,
        models_dir=c.models_dir,
        strategy_path=path,
        as_of=CURRENT,
        business_date=max(on, CURRENT + timedelta(days=1)),
        created_by=MINER,
        now=c.clock.now(),
    )
    return result, path


def print_quality(console: Console, quality: pl.DataFrame) -> None:
    table = RichTable(
        title="The whitelist against the truth (realised 12-month default after the as-of date)",
        title_justify="left",
    )
    for col in (
        "segment",
        "customers",
        "population bad rate",
        "pre-approved",
        "their bad rate",
        "truly good reached",
        "truly bad let through",
    ):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for r in quality.iter_rows(named=True):
        bold = "[bold]" if r["segment"] == "all" else ""
        table.add_row(
            f"{bold}{r['segment']}",
            f"{r['customers']:,}",
            f"{r['population_bad_rate']:.2%}",
            f"{r['whitelisted']:,}",
            "-" if r["whitelisted_bad_rate"] is None else f"{r['whitelisted_bad_rate']:.2%}",
            f"{r['good_reach']:.1%}",
            f"{r['bad_let_through']:.1%}",
        )
    console.print(table)


def run_risk(c: Container, sandbox_dir: Path, console: Console) -> RiskResult:
    truth = measure.truth(sandbox_dir)
    portraits = build_portraits(c, console)
    models = train_models(c, truth, console)
    print_models(console, models)
    mined, path = mine_whitelist(c, console, models)
    lines = whitelist.read_lines(c.lake_dir, mined.version_id).collect()
    quality = measure.whitelist_quality(lines, truth)
    return RiskResult(
        portraits=portraits,
        models=models,
        version_id=mined.version_id,
        mined=mined,
        quality=quality,
        strategy_path=path,
    )


def offers_frame(c: Container, version_id: int) -> pl.DataFrame:
    """The published version's open offers: customer, limit (fen), rate, grade."""
    lines = whitelist.read_lines(c.lake_dir, version_id).filter(pl.col("outcome") == "eligible")
    return (
        lines.select("customer_id", "segment", "grade", "limit_fen", "annual_rate_e8", "score")
        .sort("customer_id")
        .collect()
    )
