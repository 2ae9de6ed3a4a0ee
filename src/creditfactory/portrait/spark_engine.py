"""The catalogue compiled to Spark DataFrames (the ``spark`` engine).

The same steps as :mod:`creditfactory.portrait.polars_engine`, expressed with PySpark: SQL
column expressions and formulas go through ``functions.expr``; aggregates are built from the
same :class:`~creditfactory.portrait.model.Agg` declarations, with integer sums (decimals of 38
digits where Polars uses 128-bit integers), so both engines give the same portrait. PySpark is
imported only inside these functions.
"""

from __future__ import annotations

import re
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Any

from creditfactory import contract
from creditfactory.contract import lake as contract_lake
from creditfactory.portrait.features import COLUMNS
from creditfactory.portrait.model import (
    UNIT_SCALE,
    AggKind,
    DefinitionError,
    DType,
    FeatureDef,
    Kind,
    Source,
    Unit,
    month_index,
)
from creditfactory.portrait.plan import AsOf, CataloguePlan, SourcePlan, lake_columns

_SPARK_TYPES = {DType.FLOAT: "double", DType.INT: "bigint", DType.BOOL: "boolean", DType.STRING: "string"}
_LAKE_TYPES = {
    contract.ColumnType.STRING: "string",
    contract.ColumnType.CODE: "string",
    contract.ColumnType.ID_NUMBER: "string",
    contract.ColumnType.PHONE: "string",
    contract.ColumnType.INT: "bigint",
    contract.ColumnType.AMOUNT: "bigint",
    contract.ColumnType.RATE: "bigint",
    contract.ColumnType.FLOAT: "double",
    contract.ColumnType.DATE: "date",
    contract.ColumnType.MONTH: "date",
    contract.ColumnType.BOOL: "boolean",
}
_DEC = "decimal(38,0)"
_EPOCH = date(1970, 1, 1)


def session(*, master: str = "local[2]") -> Any:
    """A Spark session for building portraits on this machine (an existing one is reused)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("creditfactory-portrait")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def _F() -> Any:
    from pyspark.sql import functions

    return functions


def scan_table(spark: Any, lake: Path, name: str, present: frozenset[str]) -> Any:
    """The newest row per key of a lake table (an empty frame when the lake lacks the table)."""
    F = _F()
    table = contract.get_table(name)
    if name not in present:
        columns = [c for c in table.columns if not c.pii or _tokenised(table, c)]
        ddl = ", ".join(
            f"{lake_name} {_LAKE_TYPES[c.type]}"
            for c, lake_name in zip(columns, lake_columns(table), strict=True)
        )
        return spark.createDataFrame([], ddl)
    paths = [str(p) for p in contract_lake.files(lake, name)]
    frame = spark.read.parquet(*paths)
    if len(contract_lake.batches(lake, name)) > 1:
        from pyspark.sql import Window

        keys = contract_lake.key_columns(table)
        newest = Window.partitionBy(*keys).orderBy(F.col("_batch").desc())
        frame = frame.withColumn("_newest", F.row_number().over(newest)).filter("_newest = 1").drop("_newest")
    return frame


def _tokenised(table: contract.Table, col: contract.Column) -> bool:
    return col.type in (contract.ColumnType.ID_NUMBER, contract.ColumnType.PHONE) or (
        col.pii and table.name == "negative_list"
    )


def _month_index(col: Any) -> Any:
    F = _F()
    return F.year(col).cast("bigint") * 12 + F.month(col).cast("bigint") - 1


def _months_to(col: Any, at: AsOf) -> Any:
    F = _F()
    late = F.when(F.dayofmonth(col) > at.as_of.day, F.lit(1)).otherwise(F.lit(0)).cast("bigint")
    return F.lit(month_index(at.as_of)).cast("bigint") - _month_index(col) - late


def _known(col: str, as_of: date) -> Any:
    F = _F()
    return F.col(col) <= F.lit(as_of)


def source_rows(spark: Any, lake: Path, src: Source, *, at: AsOf, present: frozenset[str]) -> Any:
    F = _F()
    df = scan_table(spark, lake, src.table, present)
    if src.kind is Kind.MONTHLY:
        assert src.time is not None
        df = df.filter(_month_index(F.col(src.time)) <= F.lit(at.ref_index))
    elif src.kind is Kind.DATED:
        assert src.time is not None
        df = df.filter(_known(src.time, at.as_of))
    if src.where:
        df = df.filter(F.expr(src.where))
    if src.link is not None:
        link = src.link
        linked = scan_table(spark, lake, link.table, present)
        if link.known:
            linked = linked.filter(_known(link.known, at.as_of))
        linked = linked.select(
            F.col(link.right_on).alias("_link_key"), F.col("customer_id").alias("_link_customer")
        ).distinct()
        if "customer_id" in df.columns:
            df = df.drop("customer_id")
        df = df.join(linked, df[link.left_on] == linked["_link_key"], "inner")
        df = df.withColumnRenamed("_link_customer", "customer_id")
    for name in src.dates:
        df = df.withColumn(f"{name}_days", F.datediff(F.lit(at.as_of), F.col(name)).cast("bigint"))
        df = df.withColumn(f"{name}_months", _months_to(F.col(name), at))
    timing: list[Any] = []
    if src.kind is Kind.MONTHLY:
        assert src.time is not None
        timing = [_month_index(F.col(src.time)).alias("t")]
    elif src.kind is Kind.DATED:
        assert src.time is not None
        timing = [
            F.datediff(F.col(src.time), F.lit(_EPOCH)).cast("bigint").alias("t"),
            _months_to(F.col(src.time), at).alias("m"),
        ]
    df = df.select(F.col("customer_id"), *timing, *[F.expr(c.sql).alias(c.name) for c in src.columns])
    if src.kind is Kind.MONTHLY:
        if src.combine:
            df = df.groupBy("customer_id", "t").agg(
                *[
                    (F.coalesce(F.sum(name), F.lit(0)) if how == "sum" else F.max(name)).alias(name)
                    for name, how in src.combine.items()
                ]
            )
        df = df.withColumn("m", F.lit(at.ref_index).cast("bigint") - F.col("t"))
    return df


def _scaled(e: Any, unit: Unit | None) -> Any:
    F = _F()
    return e if unit is None else e.cast("double") / F.lit(UNIT_SCALE[unit])


def agg_column(feature: FeatureDef, units: dict[str, Unit | None]) -> Any:
    """One feature as a Spark aggregate over a customer's rows of its source."""
    F = _F()
    agg = feature.agg
    assert agg is not None
    conds: list[Any] = []
    if feature.window_months is not None:
        conds.append(F.col("m") < F.lit(feature.window_months))
    if agg.where:
        conds.append(F.expr(agg.where))
    cond = reduce(lambda a, b: a & b, conds) if conds else None

    def masked(e: Any) -> Any:
        return e if cond is None else F.when(cond, e)

    unit = units.get(agg.column) if agg.column else None
    y = F.col(agg.column) if agg.column else F.lit(1)
    k = agg.kind

    def dec(e: Any) -> Any:
        return e.cast(_DEC)

    if k is AggKind.COUNT:
        out = F.count(F.lit(1)) if cond is None else F.count(F.when(cond, F.lit(1)))
    elif k is AggKind.SUM:
        out = _scaled(F.sum(masked(y)), unit)
    elif k is AggKind.MEAN:
        e = masked(y)
        n = F.count(e)
        out = _scaled(F.when(n > 0, F.sum(e).cast("double") / n.cast("double")), unit)
    elif k is AggKind.MIN:
        out = _scaled(F.min(masked(y)), unit)
    elif k is AggKind.MAX:
        out = _scaled(F.max(masked(y)), unit)
    elif k is AggKind.VALUE:
        out = _scaled(F.max(y), unit)
    elif k in (AggKind.STD, AggKind.CV):
        e = masked(y)
        n = dec(F.count(e))
        s = dec(F.sum(e))
        q = F.sum(dec(e) * dec(e))
        num = (n * q - s * s).cast("double")
        var = num / (n * (n - 1)).cast("double")
        if k is AggKind.STD:
            out = _scaled(F.when(n > 1, F.sqrt(var)), unit)
        else:
            mean = s.cast("double") / n.cast("double")
            out = F.when((n > 1) & (s != 0), F.sqrt(var) / mean)
    elif k is AggKind.SLOPE:
        e = masked(y)
        x = F.when(e.isNotNull(), -F.col("m"))
        n = dec(F.count(e))
        sx = dec(F.sum(x))
        sxx = dec(F.sum(x * x))
        sy = dec(F.sum(e))
        sxy = F.sum(dec(x) * dec(e))
        num = (n * sxy - sx * sy).cast("double")
        den = (n * sxx - sx * sx).cast("double")
        out = _scaled(F.when((n > 1) & (den != 0), num / den), unit)
    elif k is AggKind.GROWTH:
        assert agg.k is not None
        extra = F.expr(agg.where) if agg.where else F.lit(True)
        recent = F.when((F.col("m") < agg.k) & extra, y)
        prior = F.when((F.col("m") >= agg.k) & (F.col("m") < 2 * agg.k) & extra, y)
        n1, n2 = dec(F.count(recent)), dec(F.count(prior))
        s1, s2 = dec(F.sum(recent)), dec(F.sum(prior))
        ok = (n1 > 0) & (n2 > 0) & (s2 != 0)
        out = F.when(ok, (s1 * n2).cast("double") / (s2 * n1).cast("double") - F.lit(1.0))
    elif k is AggKind.ANY:
        out = F.max(masked(y.cast("tinyint"))).cast("boolean")
    elif k is AggKind.LAST:
        out = _scaled(F.max_by(y, masked(F.col("t"))), unit)
    elif k is AggKind.MONTHS_SINCE:
        out = F.min(masked(F.col("m"))).cast("bigint")
    else:  # pragma: no cover - every kind is handled above
        raise DefinitionError(f"feature {feature.name}: no Spark aggregate for {k}")
    return out.alias(feature.name)


def source_frame(spark: Any, lake: Path, sp: SourcePlan, *, at: AsOf, present: frozenset[str]) -> Any:
    rows = source_rows(spark, lake, sp.source, at=at, present=present)
    units = dict(sp.units)
    return rows.groupBy("customer_id").agg(*[agg_column(f, units) for f in sp.features])


def portrait_frame(spark: Any, lake: Path, plan: CataloguePlan, *, at: AsOf, present: frozenset[str]) -> Any:
    """The whole portrait as one Spark DataFrame, sorted by customer."""
    F = _F()
    df = source_rows(spark, lake, plan.base, at=at, present=present).drop("t", "m")
    for sp in plan.sources:
        df = df.join(source_frame(spark, lake, sp, at=at, present=present), on="customer_id", how="left")
    # One projection per step (``withColumns``), not one per feature: Spark analyses a plan of a
    # hundred chained projections far more slowly than the work itself on small data.
    fills = {
        f.name: F.coalesce(F.col(f.name), F.lit(f.fill))
        for f in plan.features
        if not f.derived and f.fill is not None
    }
    if fills:
        df = df.withColumns(fills)
    pending: dict[str, Any] = {}
    for feat in plan.features:
        if feat.derived:
            assert feat.formula is not None
            if any(re.search(rf"\b{re.escape(name)}\b", feat.formula) for name in pending):
                df = df.withColumns(pending)  # a formula that reads a derived feature of this step
                pending = {}
            pending[feat.name] = F.expr(feat.formula).cast(_SPARK_TYPES[feat.dtype])
    if pending:
        df = df.withColumns(pending)
    identity = [
        F.col(c.name).cast("double" if c.dtype == "float" else "string").alias(c.name) for c in COLUMNS
    ]
    return df.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        F.lit(at.as_of).alias("as_of"),
        *identity,
        *[F.col(f.name).cast(_SPARK_TYPES[f.dtype]).alias(f.name) for f in plan.features],
    ).orderBy("customer_id")
