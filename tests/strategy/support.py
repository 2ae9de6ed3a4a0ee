"""Helpers shared by the strategy tests: one expression on every backend, small strategies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
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
    return frame.with_columns(pb.compile_node(node, refs).alias("__v"))["__v"].to_list()


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


# ---------------------------------------------------------------------- random facts for a plan


def pools(plan: Any) -> dict[str, list[Any]]:
    """Per input column, values worth trying: the plan's own constants and their neighbours (so
    that rows land on cut-offs, band edges and limit boundaries), a few ordinary values, NULL."""
    from datetime import timedelta

    from creditfactory.strategy.ir import Lit, walk

    nodes = (
        [n for _, n in plan.variables]
        + [r.condition for r in plan.rules]
        + [plan.grade_node, plan.limit_node]
    )
    numbers: set[float] = {0.0, 1.0}
    texts: set[str] = {"other"}
    for node in nodes:
        for n in walk(node):
            if isinstance(n, Lit) and isinstance(n.value, float) and not isinstance(n.value, bool):
                numbers |= {n.value, n.value - 1, n.value + 1, n.value * 1.5, n.value + 1e-9, n.value - 1e-9}
            elif isinstance(n, Lit) and isinstance(n.value, str):
                texts.add(n.value)
    base = date(2025, 6, 30)
    out: dict[str, list[Any]] = {}
    for name, t in plan.input_types.items():
        if t == Type.NUMBER:
            out[name] = sorted(numbers) + [None]
        elif t == Type.STRING:
            out[name] = sorted(texts) + [None]
        elif t == Type.BOOL:
            out[name] = [True, False, None]
        else:
            out[name] = [base, base - timedelta(days=400), base + timedelta(days=31), None]
    return out


#: A customer who gets through both example strategies; random rows start from here.
GOOD: dict[str, Any] = {
    "as_of": date(2025, 6, 30),
    "segment": "farmer",
    "age": 41.0,
    "kyc_complete": True,
    "marketing_consent": True,
    "on_negative_list": False,
    "current_dpd": 0.0,
    "has_overdue": False,
    "existing_loan_balance": 20000.0,
    "bureau_total_exposure": 15000.0,
    "annual_income_est": 86000.0,
    "months_since_open": 40.0,
    "assets_current": 52000.0,
    "has_line_with_us": False,
    "days_since_decline": None,
    "lat": 30.1,
    "lon": 120.2,
    "score": 688.0,
    "requested_amount": 30000.0,
    "requested_term_months": 12.0,
    "applicant_age": 41.0,
    "applicant_segment": "farmer",
    "has_portrait": True,
    "whitelisted": True,
    "offer_limit": 40000.0,
    "id_matches_customer": True,
    "name_matches_customer": True,
    "phone_matches_customer": True,
    "income_declared": 90000.0,
    "income_observed": 84000.0,
    "income_overstated": False,
    "device_is_emulator": False,
    "device_is_rooted": False,
    "device_negative": False,
    "apps_per_device_1h": 0.0,
    "apps_per_id_24h": 1.0,
    "apps_per_phone_30d": 1.0,
    "device_applicants_30d": 1.0,
    "distance_home_branch_km": 3.5,
    "graph_hops_to_negative": None,
    "graph_component_size": 4.0,
    "graph_declined_neighbours": 0.0,
    "graph_defaulted_neighbours": 0.0,
}


def random_rows(plan: Any, n: int, seed: int, *, change: float = 0.12) -> list[dict[str, Any]]:
    """``n`` rows: the good customer with each column replaced, with probability ``change``, by
    a pool value, a wide random number (with fractions), NULL or NaN."""
    import numpy as np

    rng = np.random.default_rng(seed)
    choices = pools(plan)
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {}
        for name, t in plan.input_types.items():
            if rng.random() > (0.6 if name == "score" else change) and name in GOOD:
                row[name] = GOOD[name]
                continue
            draw = rng.random()
            if t == Type.NUMBER and draw < 0.35:
                row[name] = float(np.round(rng.uniform(-1000, 400_000), int(rng.integers(0, 4))))
            elif t == Type.NUMBER and draw < 0.38:
                row[name] = [float("nan"), float("inf"), -float("inf")][int(rng.integers(0, 3))]
            elif t == Type.NUMBER and name == "score" and draw < 0.6:
                row[name] = float(np.round(rng.uniform(250, 800), 2))
            else:
                pool = choices[name]
                row[name] = pool[int(rng.integers(0, len(pool)))]
        rows.append(row)
    return rows


def frame_of(plan: Any, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={name: pb.DTYPES[t] for name, t in plan.input_types.items()}, strict=False
    )
