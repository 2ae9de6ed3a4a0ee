"""Feature schemas: which columns a strategy may read, and their types.

A schema is a ``dict[str, str]``: column -> ``number`` | ``string`` | ``bool`` | ``date``. It
comes from the portrait (``portrait.schema(lake, as_of=…)``), from a JSON file, from a Parquet
file's own schema, or — when nothing is given — from the built-in catalogue
``strategy/examples/schema.json``: the policy facts the portrait promises and the facts an
application brings to a decision.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from creditfactory.strategy.errors import Problem, StrategyError

__all__ = ["default_schema", "example_path", "load_schema", "schema_from_polars"]


def example_path(name: str) -> Path:
    """Path of a file shipped in ``strategy/examples`` (``mining.yaml``, ``decision.yaml``, …)."""
    return Path(str(resources.files("creditfactory.strategy").joinpath("examples", name)))


def _from_json(data: Any, label: str) -> dict[str, str]:
    columns = data.get("columns", data) if isinstance(data, dict) else None
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        problem = Problem(
            label, None, None, None, "bad_schema", 'a schema is {"column": "number|string|bool|date", …}'
        )
        raise StrategyError([problem], source=label)
    return {str(k): v for k, v in columns.items()}


def default_schema() -> dict[str, str]:
    """The built-in catalogue: portrait policy facts plus application facts."""
    path = example_path("schema.json")
    return _from_json(json.loads(path.read_text(encoding="utf-8")), str(path))


def schema_from_polars(schema: pl.Schema | dict[str, Any]) -> dict[str, str]:
    """Map a Polars schema to strategy types; columns of other types (lists, times…) are left out."""
    out: dict[str, str] = {}
    for name, dtype in dict(schema).items():
        if dtype.is_numeric():
            out[name] = "number"
        elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical | pl.Enum):
            out[name] = "string"
        elif dtype == pl.Boolean:
            out[name] = "bool"
        elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
            out[name] = "date"
    return out


def load_schema(path: Path) -> dict[str, str]:
    """A schema from a JSON file (``{"column": "type"}`` or ``{"columns": {…}}``) or from the
    schema of a Parquet file or folder of Parquet files."""
    label = str(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            problem = Problem(label, None, None, None, "bad_schema", f"cannot read the schema: {exc}")
            raise StrategyError([problem], source=label) from None
        return _from_json(data, label)
    try:
        target = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        return schema_from_polars(pl.scan_parquet(target).collect_schema())
    except (OSError, pl.exceptions.PolarsError) as exc:
        problem = Problem(label, None, None, None, "bad_schema", f"cannot read the Parquet schema: {exc}")
        raise StrategyError([problem], source=label) from None
