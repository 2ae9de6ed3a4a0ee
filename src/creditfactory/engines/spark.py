"""The Spark engine: the same scores and the same strategy plan on a cluster (or ``local[2]``).

Scorecards become one SQL ``CASE`` per segment (the registry's ``sql_case``), tree models are
applied with ``mapInArrow`` (each executor scores Arrow batches with the model it was handed),
and the plan runs as the Spark SQL its compiler writes (:meth:`Plan.apply_spark`), so a customer
gets the same line from Spark as from the local engine. PySpark is imported only here, and only
when a Spark job runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl

from creditfactory.engines.local import EngineResult
from creditfactory.engines.scoring import Scoring, predict_batch
from creditfactory.errors import DomainError
from creditfactory.strategy import Plan
from creditfactory.strategy.backends import spark as sb


class SparkUnavailable(DomainError):
    code = "spark_unavailable"
    http_status = 503
    title = "Spark is not available"


#: SQL settings a mining job runs with (set for the job, then put back, on any session).
#:
#: ``hugeMethodLimit``: a strategy and its scorecards fuse into one very large generated method,
#: and the JVM never compiles a method above 8,000 bytes of bytecode to machine code (it stays
#: interpreted, about ten times slower). Above this limit Spark gives up fusing the stage and
#: generates each projection on its own, split into small methods the JVM does compile.
JOB_SETTINGS: dict[str, str] = {
    "spark.sql.codegen.hugeMethodLimit": "8000",
}


def session(*, master: str = "local[2]", app: str = "creditfactory", memory: str = "4g") -> Any:
    """A Spark session for batch work (UI off, UTC, few shuffle partitions on small clusters)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the optional extra is not installed
        raise SparkUnavailable(
            "the Spark engine needs PySpark and Java: pip install 'creditfactory[spark]'"
        ) from exc
    try:
        spark = (
            SparkSession.builder.master(master)
            .appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.driver.memory", memory)
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.parquet.compression.codec", "lz4")
            .config("spark.sql.codegen.hugeMethodLimit", JOB_SETTINGS["spark.sql.codegen.hugeMethodLimit"])
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    except Exception as exc:  # no Java, or the JVM would not start
        raise SparkUnavailable(f"Spark could not start ({type(exc).__name__}: {exc})") from exc


@contextmanager
def job_settings(spark: Any, settings: dict[str, str] | None = None) -> Iterator[None]:
    """``settings`` (by default :data:`JOB_SETTINGS`) on ``spark`` for the block, then the
    session's own values again."""
    conf = spark.conf
    saved = {key: conf.get(key, None) for key in (settings or JOB_SETTINGS)}
    for key, value in (settings or JOB_SETTINGS).items():
        conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                conf.unset(key)
            else:
                conf.set(key, value)


def _case(scorings: Sequence[Scoring], attr: str, segment_column: str) -> str:
    """One ``WHEN`` per distinct model: segments that share a model share its expression, so a
    scorecard is written (and compiled by Spark) once, not once per segment."""
    groups: dict[str, list[Scoring]] = {}
    for s in scorings:
        groups.setdefault(s.ref, []).append(s)
    whens = []
    for members in groups.values():
        names = ", ".join(f"'{m.segment}'" for m in members)
        test = f"`{segment_column}` IN ({names})" if len(members) > 1 else f"`{segment_column}` = {names}"
        whens.append(f"WHEN {test} THEN CAST(({getattr(members[0], attr)}) AS DOUBLE)")
    return f"CASE {' '.join(whens)} ELSE CAST(NULL AS DOUBLE) END" if whens else "CAST(NULL AS DOUBLE)"


def score_columns(
    scorings: Sequence[Scoring], segment_column: str = "segment"
) -> list[tuple[str, str]] | None:
    """``score`` and ``pd`` as Spark SQL (column, expression) pairs when every model has SQL
    (scorecards); None when a model must be run in Python."""
    if not all(s.score_sql is not None and s.pd_sql is not None for s in scorings):
        return None
    return [
        ("score", _case(scorings, "score_sql", segment_column)),
        ("pd", _case(scorings, "pd_sql", segment_column)),
    ]


def _scored_in_python(df: Any, scorings: Sequence[Scoring], segment_column: str) -> Any:
    from pyspark.sql import types as T

    schema = T.StructType(
        [*df.schema.fields, T.StructField("score", T.DoubleType()), T.StructField("pd", T.DoubleType())]
    )
    models = list(scorings)

    def score_batches(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            scored = predict_batch(frame, models, segment_column=segment_column)
            yield from scored.to_arrow().to_batches()

    return df.mapInArrow(score_batches, schema)


def run(
    spark: Any,
    *,
    sources: Sequence[Path],
    columns: Sequence[str],
    extra: pl.DataFrame | None,
    key: str,
    scorings: Sequence[Scoring],
    plan: Plan,
    shape: Callable[[Any], Any],
    out_dir: Path,
    segment_column: str = "segment",
    fill: dict[str, Any] | None = None,
) -> EngineResult:
    """Read ``columns`` of the Parquet ``sources``, left-join ``extra`` on ``key``, score, apply
    ``plan``, ``shape`` (a function of a Spark DataFrame) and write ``out_dir/lines-<n>.parquet``.
    ``fill`` gives values for the joined columns of rows ``extra`` does not cover."""
    started = perf_counter()
    with job_settings(spark):
        parts = _write(
            spark,
            sources=sources,
            columns=columns,
            extra=extra,
            key=key,
            scorings=scorings,
            plan=plan,
            shape=shape,
            out_dir=out_dir,
            segment_column=segment_column,
            fill=fill,
        )
    rows = sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in parts)
    return EngineResult(rows=rows, parts=parts, seconds=perf_counter() - started, mode="spark")


def _write(
    spark: Any,
    *,
    sources: Sequence[Path],
    columns: Sequence[str],
    extra: pl.DataFrame | None,
    key: str,
    scorings: Sequence[Scoring],
    plan: Plan,
    shape: Callable[[Any], Any],
    out_dir: Path,
    segment_column: str,
    fill: dict[str, Any] | None,
) -> list[Path]:
    df = spark.read.parquet(*[str(p) for p in sources]).select(*columns)
    if extra is not None and extra.height:
        df = df.join(spark.createDataFrame(extra.to_arrow()), on=key, how="left")
    elif extra is not None:
        from pyspark.sql import functions as F

        for name, dtype in extra.schema.items():
            if name != key:
                df = df.withColumn(name, F.lit(None).cast(_spark_type(dtype)))
    if fill:
        df = df.fillna(fill)
    derived = score_columns(scorings, segment_column)
    if derived is None:
        df, derived = _scored_in_python(df, scorings, segment_column), []
    lines = shape(sb.project(df, [*derived, *plan.spark_columns()]))
    target = out_dir / "_spark"
    if target.exists():
        shutil.rmtree(target)
    lines.write.parquet(str(target))
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    for i, part in enumerate(sorted(target.glob("part-*.parquet"))):
        dest = out_dir / f"lines-{i:05d}.parquet"
        part.rename(dest)
        parts.append(dest)
    shutil.rmtree(target)
    return parts


def _spark_type(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "bigint"
    if dtype.is_float():
        return "double"
    if dtype == pl.Date:
        return "date"
    return "string"
