"""Mining: score every customer of the portrait, apply the bank's strategy, publish a version.

``mine`` checks and compiles the strategy against the portrait's schema (a strategy with errors
never runs), resolves each segment's model in the registry (only an approved version may be
used), and streams the portrait through the scores and the plan on the chosen engine into the
version's lines, then publishes them (see :mod:`creditfactory.whitelist.service`). The same
strategy, models, portrait and whitelist facts give the same version: mining again finds it.

``backtest`` runs a strategy over a past portrait whose outcomes are known and reports approval
volume, limits and the realised bad rate by grade, beside a champion strategy on the same data.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import polars as pl

from creditfactory import modeling, portrait, strategy
from creditfactory.engines import Scoring
from creditfactory.engines import local as local_engine
from creditfactory.errors import DomainError, InvalidInput
from creditfactory.strategy import Plan
from creditfactory.whitelist import service
from creditfactory.whitelist.model import RuleInfo, version_identity

#: Facts the whitelist itself keeps about customers, joined to the portrait for mining.
FACT_TYPES: dict[str, str] = {
    "has_line_with_us": "bool",
    "days_since_decline": "number",
    "exited_before": "bool",
}
IDENTITY = ("customer_id", "segment", "branch_id", "as_of")


class ModelDoesNotFit(InvalidInput):
    code = "model_does_not_fit_portrait"
    title = "Model does not fit the portrait"


class TooManyRules(InvalidInput):
    code = "strategy_too_many_rules"
    title = "Strategy has more rules than a whitelist line records"


def mining_schema(lake: Path, *, as_of: date) -> dict[str, str]:
    """What a mining strategy may use at ``as_of``: the portrait's columns and the whitelist's
    own facts (the plan adds ``score`` and ``pd``)."""
    return {**portrait.schema(lake, as_of=as_of), **FACT_TYPES}


def catalogue_schema() -> dict[str, str]:
    """The same, from the portrait's catalogue alone (to check a strategy before any build)."""
    types = {"float": "number", "int": "number", "bool": "bool", "string": "string", "date": "date"}
    out = {"customer_id": "string", "as_of": "date", "segment": "string", "branch_id": "string"}
    out.update({"lat": "number", "lon": "number"})
    for f in portrait.FEATURES:
        out[f.name] = types[str(getattr(f.dtype, "value", f.dtype))]
    return {**out, **FACT_TYPES}


#: Batches at least this large compile a tree model's trees to machine code first (when lleaves
#: is installed): compiling costs seconds, so it pays off on big runs only (or once cached).
COMPILE_ROWS = 2_000_000


def scoring_for(
    model: modeling.LoadedModel, segment: str, *, rows: int = 0, cache_dir: Path | None = None
) -> Scoring:
    """The engines' view of a registered model: expressions for a scorecard, predict otherwise."""
    features = tuple(model.features)
    if model.kind == "scorecard":
        offset, factor = model.scaling()
        score = pl.col("score")
        return Scoring(
            segment=segment,
            ref=f"{model.name}@{model.version}",
            features=features,
            score_expr=model.score_expr(),
            pd_expr=1.0 / (1.0 + ((score - offset) / factor).exp()),
            score_sql=model.sql_case(quote="`", dialect="spark"),
            pd_sql=f"1.0D / (1.0D + EXP((score - {offset!r}D) / {factor!r}D))",
        )

    estimator = model.estimator
    if not isinstance(estimator, modeling.LightGBMModel):

        def predict_any(frame: pl.DataFrame) -> tuple[Any, Any]:
            return model.score(frame), model.predict_proba(frame)

        return Scoring(
            segment=segment, ref=f"{model.name}@{model.version}", features=features, predict=predict_any
        )
    gbm = estimator
    scaling = gbm.scaling
    compiled = None
    if cache_dir is not None:
        cache = cache_dir / f"{model.name}-v{model.version}-{model.manifest_sha256[:16]}.so"
        if rows >= COMPILE_ROWS or cache.exists():
            compiled = gbm.compiled(cache)

    def predict(frame: pl.DataFrame) -> tuple[Any, Any]:
        # one pass through the trees: the score and the PD both follow from the log-odds
        logit = (
            compiled(gbm.matrix(frame, order="c")) if compiled is not None else gbm.logit(frame, threads=0)
        )
        return scaling.score_of_logit(logit), 0.5 * (1.0 + np.tanh(0.5 * logit))

    return Scoring(segment=segment, ref=f"{model.name}@{model.version}", features=features, predict=predict)


def rules_of(plan: Plan) -> list[RuleInfo]:
    return [
        RuleInfo(
            bit=r.bit, id=r.id, action=r.action.value, code=r.reason.code, en=r.reason.en, zh=r.reason.zh
        )
        for r in plan.rules
    ]


def shape_polars(plan: Plan) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    """The plan's outputs as whitelist lines (amounts in fen, rates at scale 1e-8)."""
    if plan.words > 2:
        raise TooManyRules(f"a whitelist line records at most 126 rules; the strategy has {len(plan.rules)}")
    second = pl.col("hit_mask_2") if plan.words == 2 else pl.lit(0, dtype=pl.Int64)

    def shape(lf: pl.LazyFrame) -> pl.LazyFrame:
        return lf.select(
            pl.col("customer_id").cast(pl.String),
            pl.col("segment").cast(pl.String),
            pl.col("branch_id").cast(pl.String),
            pl.col("outcome").cast(pl.String),
            pl.col("reason_code").cast(pl.String).alias("reason"),
            pl.col("hit_mask").cast(pl.Int64),
            second.cast(pl.Int64).alias("hit_mask_2"),
            pl.col("score").cast(pl.Float64),
            pl.col("pd").cast(pl.Float64),
            pl.col("grade").cast(pl.String),
            (pl.col("limit").cast(pl.Int64) * 100).alias("limit_fen"),
            (pl.col("price") * 100_000_000).round(0).cast(pl.Int64).alias("annual_rate_e8"),
            pl.col("expires_on").cast(pl.Date).alias("expiry_date"),
        )

    return shape


def shape_spark(plan: Plan) -> Callable[[Any], Any]:
    """As :func:`shape_polars`, for a Spark DataFrame."""

    def shape(df: Any) -> Any:
        from pyspark.sql import functions as F

        second = F.col("hit_mask_2") if plan.words == 2 else F.lit(0)
        return df.select(
            F.col("customer_id").cast("string"),
            F.col("segment").cast("string"),
            F.col("branch_id").cast("string"),
            F.col("outcome").cast("string"),
            F.col("reason_code").cast("string").alias("reason"),
            F.col("hit_mask").cast("bigint"),
            second.cast("bigint").alias("hit_mask_2"),
            F.col("score").cast("double"),
            F.col("pd").cast("double"),
            F.col("grade").cast("string"),
            (F.col("limit").cast("bigint") * 100).alias("limit_fen"),
            F.round(F.col("price") * 100_000_000).cast("bigint").alias("annual_rate_e8"),
            F.col("expires_on").cast("date").alias("expiry_date"),
        )

    return shape


@dataclass
class Prepared:
    """A strategy ready to run at an as-of date: plan, models, inputs, identity."""

    strategy: strategy.Strategy
    plan: Plan
    scorings: list[Scoring]
    models: dict[str, str]
    columns: list[str]
    facts: pl.DataFrame
    identity: str
    input_fingerprint: str
    rows: int


def _facts_digest(facts: pl.DataFrame) -> str:
    data = facts.sort("customer_id").write_csv()
    return hashlib.sha256(data.encode()).hexdigest()


def prepare(
    uow: Any,
    *,
    lake: Path,
    models_dir: Path,
    strategy_path: Path,
    as_of: date,
    business_date: date,
    facts: pl.DataFrame | None = None,
    kind: str = "mined",
) -> Prepared:
    """Load, check and compile the strategy; resolve approved models; fingerprint the inputs."""
    strat = strategy.load(strategy_path)
    schema = mining_schema(lake, as_of=as_of)  # raises PortraitNotFound for an as-of never built
    plan = strategy.compile(strat, schema)
    if plan.kind is not strategy.Kind.MINING:
        raise InvalidInput(f"{strategy_path.name} is a {plan.kind.value} strategy; mining needs kind: mining")
    scorings: list[Scoring] = []
    models: dict[str, str] = {}
    needed: set[str] = set()
    rows = int(portrait.manifest(lake, as_of=as_of).get("rows") or 0)
    for segment, (name, version) in sorted(plan.model_refs.items()):
        model = modeling.load_version(uow, models_dir=models_dir, name=name, version=version)
        problems = model.check_schema(schema)
        if problems:
            raise ModelDoesNotFit(
                f"model {model.ref} for segment {segment} does not fit the portrait of {as_of}: "
                + "; ".join(problems),
                model=model.name,
                version=model.version,
            )
        scorings.append(scoring_for(model, segment, rows=rows, cache_dir=models_dir / "_compiled"))
        models[segment] = f"{model.name}@{model.version}:{model.manifest_sha256[:16]}"
        needed.update(model.features)
    if facts is None:
        facts = service.customer_facts(uow.session, on=business_date)
    needed.update(c for c in plan.inputs if c not in FACT_TYPES and c not in strategy.SCORE_COLUMNS)
    needed.update(IDENTITY)
    columns = [c for c in schema if c in needed]
    manifest = portrait.manifest(lake, as_of=as_of)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "portrait": manifest["input"]["sha256"],
                "catalogue": manifest["catalogue_sha256"],
                "rows": manifest.get("rows"),
                "facts": _facts_digest(facts),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    identity = version_identity(
        kind=kind,
        name=strat.name,
        as_of=as_of,
        strategy_hash=strat.fingerprint,
        models=models,
        input_fingerprint=fingerprint,
    )
    return Prepared(
        strategy=strat,
        plan=plan,
        scorings=scorings,
        models=models,
        columns=columns,
        facts=facts,
        identity=identity,
        input_fingerprint=fingerprint,
        rows=int(manifest.get("rows") or 0),
    )


def source_frame(lake: Path, prepared: Prepared, *, as_of: date) -> pl.LazyFrame:
    """The portrait's needed columns with the whitelist's facts joined (defaults for the absent)."""
    lf = portrait.read(lake, as_of=as_of).select(prepared.columns)
    facts = prepared.facts
    if facts.height:
        lf = lf.join(facts.lazy(), on="customer_id", how="left")
    else:
        lf = lf.with_columns(
            pl.lit(None, dtype=dt).alias(n) for n, dt in facts.schema.items() if n != "customer_id"
        )
    return lf.with_columns(
        pl.col("has_line_with_us").fill_null(False),
        pl.col("exited_before").fill_null(False),
    )


@dataclass
class MineResult:
    version_id: int
    unchanged: bool
    scored: int
    eligible: int
    excluded: int
    total_limit: str
    seconds: float
    engine: str
    rows_per_second: float
    models: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "unchanged": self.unchanged,
            "scored": self.scored,
            "eligible": self.eligible,
            "excluded": self.excluded,
            "total_limit": self.total_limit,
            "seconds": round(self.seconds, 3),
            "engine": self.engine,
            "rows_per_second": round(self.rows_per_second),
            "models": self.models,
        }


def mine(
    uow_factory: Any,
    *,
    lake: Path,
    models_dir: Path,
    strategy_path: Path,
    as_of: date,
    business_date: date,
    created_by: str,
    now: datetime,
    engine: str = "local",
    spark: Any = None,
    progress: Callable[[int, int | None], None] | None = None,
    crash_after_lines: bool = False,
) -> MineResult:
    """Mine and publish a whitelist version (see the module's docstring).

    ``crash_after_lines`` stops after the lines are written and before publication (for tests
    of a run that dies half way).
    """
    if engine not in ("local", "spark"):
        raise InvalidInput(f"unknown engine {engine!r}: use local or spark")
    started = perf_counter()
    with uow_factory() as uow:
        prepared = prepare(
            uow,
            lake=lake,
            models_dir=models_dir,
            strategy_path=strategy_path,
            as_of=as_of,
            business_date=business_date,
        )
        spec = service.VersionSpec(
            identity=prepared.identity,
            name=prepared.strategy.name,
            kind="mined",
            as_of=as_of,
            strategy_hash=prepared.strategy.fingerprint,
            input_fingerprint=prepared.input_fingerprint,
            strategy_name=strategy_path.name,
            strategy_version=None if prepared.strategy.version is None else str(prepared.strategy.version),
            models=prepared.models,
            engine=engine,
        )
        version, done = service.begin_version(uow, spec=spec, created_by=created_by, now=now)
        uow.commit()
        version_id = version.id
        if done:
            return MineResult(
                version_id=version.id,
                unchanged=True,
                scored=version.scored,
                eligible=version.eligible,
                excluded=version.excluded,
                total_limit=str(version.total_limit),
                seconds=perf_counter() - started,
                engine=version.engine,
                rows_per_second=0.0,
                models=prepared.models,
            )
    staging = service.fresh_staging(lake, version_id)
    shutil.copyfile(strategy_path, staging / service.STRATEGY_FILE)
    service.write_rules(staging, rules_of(prepared.plan))
    run = _run_engine(
        engine, lake=lake, prepared=prepared, as_of=as_of, out=staging, spark=spark, progress=progress
    )
    if crash_after_lines:
        raise DomainError("mining stopped before publication (requested)")
    expiry = None
    if prepared.plan.expiry_days is not None:
        expiry = as_of + timedelta(days=prepared.plan.expiry_days)
    with uow_factory() as uow:
        published = service.publish_version(
            uow,
            lake=lake,
            version_id=version_id,
            business_date=business_date,
            expiry_date=expiry,
            seconds=perf_counter() - started,
            now=now,
        )
        uow.commit()
    seconds = perf_counter() - started
    return MineResult(
        version_id=version_id,
        unchanged=False,
        scored=published.scored,
        eligible=published.eligible,
        excluded=published.excluded,
        total_limit=str(published.total_limit),
        seconds=seconds,
        engine=engine,
        rows_per_second=run.rows / run.seconds if run.seconds else math.inf,
        models=prepared.models,
    )


def _run_engine(
    engine: str,
    *,
    lake: Path,
    prepared: Prepared,
    as_of: date,
    out: Path,
    spark: Any,
    progress: Callable[[int, int | None], None] | None,
) -> local_engine.EngineResult:
    if engine == "local":
        return local_engine.run(
            source_frame(lake, prepared, as_of=as_of),
            scorings=prepared.scorings,
            plan=prepared.plan,
            shape=shape_polars(prepared.plan),
            out_dir=out,
            total_rows=prepared.rows,
            progress=progress,
        )
    from creditfactory.engines import spark as spark_engine

    session = spark or spark_engine.session()
    facts = prepared.facts
    result = spark_engine.run(
        session,
        sources=portrait.files(lake, as_of=as_of),
        columns=prepared.columns,
        extra=facts,
        key="customer_id",
        scorings=prepared.scorings,
        plan=prepared.plan,
        shape=shape_spark(prepared.plan),
        fill={"has_line_with_us": False, "exited_before": False},
        out_dir=out,
    )
    if progress:
        progress(result.rows, prepared.rows)
    return result


# ------------------------------------------------------------------ back-test


@dataclass
class BacktestRow:
    strategy: str
    grade: str
    eligible: int
    observed: int
    bad: int
    total_limit_fen: int

    @property
    def bad_rate(self) -> float | None:
        return self.bad / self.observed if self.observed else None


@dataclass
class BacktestResult:
    as_of: date
    population: int
    observed: int
    population_bad_rate: float | None
    rows: list[BacktestRow]
    totals: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "population": self.population,
            "observed": self.observed,
            "population_bad_rate": self.population_bad_rate,
            "strategies": self.totals,
            "by_grade": [
                {
                    "strategy": r.strategy,
                    "grade": r.grade,
                    "eligible": r.eligible,
                    "observed": r.observed,
                    "bad_rate": r.bad_rate,
                    "total_limit": r.total_limit_fen / 100,
                }
                for r in self.rows
            ],
        }


def _lines_in_memory(
    uow: Any, *, lake: Path, models_dir: Path, strategy_path: Path, as_of: date
) -> tuple[str, pl.DataFrame]:
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            **{k: (pl.Boolean if v == "bool" else pl.Int64) for k, v in FACT_TYPES.items()},
        }
    )
    prepared = prepare(
        uow,
        lake=lake,
        models_dir=models_dir,
        strategy_path=strategy_path,
        as_of=as_of,
        business_date=as_of,
        facts=empty,
        kind="backtest",
    )
    scored = source_frame(lake, prepared, as_of=as_of).collect()
    from creditfactory.engines.scoring import predict_batch

    scored = predict_batch(scored, prepared.scorings)
    lines = shape_polars(prepared.plan)(prepared.plan.apply(scored.lazy())).collect()
    return prepared.strategy.label, lines


def backtest(
    uow: Any,
    *,
    lake: Path,
    models_dir: Path,
    strategy_path: Path,
    as_of: date,
    champion_path: Path | None = None,
) -> BacktestResult:
    """Approval volume, limits and realised bad rate by grade at a past as-of date (whose
    12-month outcomes are known), for the strategy and, when given, the champion beside it.

    The whitelist's own facts (earlier declines, lines opened) are not replayed: both strategies
    see the portrait alone.
    """
    targets = (
        portrait.read_targets(lake, as_of=as_of).select("customer_id", "bad_12m", "observable").collect()
    )
    strategies: list[tuple[str, Path]] = [("candidate", strategy_path)]
    if champion_path is not None:
        strategies.append(("champion", champion_path))
    rows: list[BacktestRow] = []
    totals: dict[str, dict[str, Any]] = {}
    population = targets.height
    observed_all = targets.filter(pl.col("observable"))
    pop_bad = float(observed_all["bad_12m"].mean()) if observed_all.height else None  # type: ignore[arg-type]
    for role, path in strategies:
        label, lines = _lines_in_memory(
            uow, lake=lake, models_dir=models_dir, strategy_path=path, as_of=as_of
        )
        joined = lines.join(targets, on="customer_id", how="left").filter(pl.col("outcome") == "eligible")
        by_grade = (
            joined.group_by("grade")
            .agg(
                pl.len().alias("eligible"),
                pl.col("observable").fill_null(False).sum().alias("observed"),
                pl.when(pl.col("observable"))
                .then(pl.col("bad_12m"))
                .otherwise(0)
                .fill_null(0)
                .sum()
                .alias("bad"),
                pl.col("limit_fen").sum().alias("limit_fen"),
            )
            .sort("grade")
        )
        for r in by_grade.iter_rows(named=True):
            rows.append(
                BacktestRow(
                    strategy=role,
                    grade=str(r["grade"]),
                    eligible=int(r["eligible"]),
                    observed=int(r["observed"]),
                    bad=int(r["bad"]),
                    total_limit_fen=int(r["limit_fen"] or 0),
                )
            )
        observed = int(joined["observable"].fill_null(False).sum())
        bad = int(joined.filter(pl.col("observable").fill_null(False))["bad_12m"].sum() or 0)
        totals[role] = {
            "strategy": label,
            "file": path.name,
            "scored": lines.height,
            "eligible": joined.height,
            "approval_rate": joined.height / lines.height if lines.height else 0.0,
            "total_limit": int(joined["limit_fen"].sum() or 0) / 100,
            "observed": observed,
            "bad_rate": bad / observed if observed else None,
        }
    return BacktestResult(
        as_of=as_of,
        population=population,
        observed=observed_all.height,
        population_bad_rate=pop_bad,
        rows=rows,
        totals=totals,
    )


def champion_strategy(uow: Any, *, lake: Path, name: str | None = None) -> Path | None:
    """The strategy file of the newest published mined version (of ``name`` when given)."""
    for v in service.list_versions(uow, limit=200):
        if v.kind != "mined" or v.status.value != "published":
            continue
        if name is not None and v.name != name:
            continue
        path = service.version_dir(lake, v.id) / service.STRATEGY_FILE
        if path.exists():
            return path
    return None


__all__: Sequence[str] = [
    "FACT_TYPES",
    "BacktestResult",
    "MineResult",
    "ModelDoesNotFit",
    "backtest",
    "catalogue_schema",
    "champion_strategy",
    "mine",
    "mining_schema",
    "prepare",
]
