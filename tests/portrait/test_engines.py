"""The compiled catalogue: it compiles against the contract, guards exactness, and the Spark
engine gives the same portrait as the local one."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from creditfactory import portrait
from creditfactory.portrait import features as catalogue
from creditfactory.portrait import polars_engine
from creditfactory.portrait.model import Agg, AggKind, DefinitionError
from creditfactory.portrait.plan import AsOf, SourcePlan, catalogue_plan
from tests.portrait.lakes import AS_OF, write_table


class TestPolarsCompile:
    def test_every_expression_compiles_against_the_contract(self, tmp_path: Path) -> None:
        """On a lake with no table at all every source is an empty frame with the contract's
        columns: an unknown column or a malformed expression anywhere fails here."""
        plan = catalogue_plan()
        frame = polars_engine.portrait_frame(tmp_path, plan, at=AsOf.at(AS_OF), present=frozenset()).collect()
        assert frame.height == 0
        assert frame.columns == list(portrait.KEY_COLUMNS) + [f.name for f in portrait.FEATURES]

    def test_adding_up_a_float_column_is_refused(self, worked: Path) -> None:
        bureau = catalogue.SOURCE_BY_NAME["bureau"]
        feature = dataclasses.replace(
            catalogue.BY_NAME["bureau_card_utilisation"],
            name="util_avg",
            agg=Agg(AggKind.MEAN, "card_utilisation"),
        )
        plan = SourcePlan(source=bureau, features=(feature,), units={})
        present = frozenset(catalogue_plan().tables)
        with pytest.raises(DefinitionError, match="needs whole numbers"):
            polars_engine.source_frame(worked, plan, at=AsOf.at(AS_OF), present=present)


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed"
    if shutil.which("java") is None:
        return "Java is not installed"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = _spark_missing()
    if reason:
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("creditfactory-portrait-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _both(lake: Path, as_of: date, spark: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    local = portrait.build(lake, as_of=as_of)
    first = portrait.read(lake, as_of=as_of).collect()
    remote = portrait.build(lake, as_of=as_of, engine="spark", spark=spark)
    second = portrait.read(lake, as_of=as_of).collect()
    assert (local.rows, remote.rows) == (first.height, second.height)
    assert portrait.manifest(lake, as_of=as_of)["engine"] == "spark"
    return first, second


def _assert_same(first: pl.DataFrame, second: pl.DataFrame) -> None:
    assert first.schema == second.schema
    different = [c for c in first.columns if not first[c].equals(second[c])]
    assert different == [], f"columns that differ between engines: {different}"


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
class TestSparkParity:
    def test_worked_example(self, worked_copy: Path, spark: Any) -> None:
        """Hand-made edge cases (nulls, a missing optional table, a key sent again by a later
        load) come out identical."""
        write_table(
            worked_copy,
            "farmland",
            [{"customer_id": "C4", "land_area_mu": 20.0, "main_crop": "tea", "machinery_count": 1,
              "machinery_value": 5000, "cooperative_member": False}],
            batch=2,
        )  # fmt: skip
        first, second = _both(worked_copy, AS_OF, spark)
        _assert_same(first, second)
        assert second.filter(pl.col("customer_id") == "C4")["land_area_mu"].item() == 20.0

    def test_sandbox_bank(self, sandbox_copy: Path, spark: Any) -> None:
        first, second = _both(sandbox_copy, date(2025, 3, 31), spark)
        assert first.height > 500
        _assert_same(first, second)


class TestSparkMissing:
    def test_asking_for_spark_without_pyspark_is_a_clear_error(
        self, worked_copy: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "pyspark", None)
        monkeypatch.setitem(sys.modules, "pyspark.sql", None)
        with pytest.raises(portrait.EngineUnavailable, match="spark engine cannot start") as exc:
            portrait.build(worked_copy, as_of=AS_OF, engine="spark")
        assert exc.value.code == "portrait_engine_unavailable"
        assert portrait.available(worked_copy) == []
