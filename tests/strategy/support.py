"""Helpers shared by the strategy tests: one expression on every backend, small strategies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from creditfactory.strategy.backends import polars as pb
from creditfactory.strategy.backends import python as py
from creditfactory.strategy.ir import Node, Type, columns
from creditfactory.strategy.sql import lower

#: A small schema for expression tests.
SCHEMA: dict[str, Type] = {
    "age": Type.NUMBER,
    "income": Type.NUMBER,
    "debt": Type.NUMBER,
    "segment": Type.STRING,
    "name": Type.STRING,
    "kyc": Type.BOOL,
    "flagged": Type.BOOL,
    "opened": Type.DATE,
    "as_of": Type.DATE,
}


def typed(sql: str, schema: Mapping[str, Type] = SCHEMA) -> Node:
    node, issues = lower(sql, schema)
    assert not issues, issues
    assert node is not None
    return node


def on_polars(node: Node, rows: list[dict[str, Any]], schema: Mapping[str, Type] = SCHEMA) -> list[Any]:
    frame = pl.DataFrame(rows, schema={c: pb.DTYPES[t] for c, t in schema.items()})
    refs = {}
    for c, t in schema.items():
        ref = pb.input_ref(c, t, frame.schema[c])
        assert not isinstance(ref, str)
        refs[c] = ref
    return frame.select(pb.compile_node(node, refs).alias("v"))["v"].to_list()


def on_python(node: Node, rows: list[dict[str, Any]]) -> list[Any]:
    fn = py.compile_node(node)
    return [fn(row) for row in rows]


def value(sql: str, **row: Any) -> Any:
    """The value of ``sql`` on one row, asserting that Polars and Python agree on it."""
    full = {c: row.get(c) for c in SCHEMA}
    full = {c: float(v) if SCHEMA[c] == Type.NUMBER and v is not None else v for c, v in full.items()}
    node = typed(sql)
    assert set(columns(node)) <= set(SCHEMA)
    got_polars = on_polars(node, [full])[0]
    got_python = on_python(node, [full])[0]
    assert got_polars == got_python, (sql, row, got_polars, got_python)
    return got_python
