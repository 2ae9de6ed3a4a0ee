"""The strategy language: one YAML file per mining or decision strategy, SQL for every condition.

A strategy is read once (:func:`load`), checked against a feature schema (:func:`check` lists
every problem at once: file, line, rule, column), and compiled (:func:`compile`) to a
:class:`Plan` that runs on a Polars frame (:meth:`Plan.apply`), on one row online
(:meth:`Plan.evaluate_one`) and on Spark (:meth:`Plan.spark_columns`) with the same answers.
The language and its NULL rules are described in ``docs/strategy.md``.

Example::

    from creditfactory import strategy

    s = strategy.load(strategy.example_path("mining.yaml"))
    plan = strategy.compile(s, strategy.default_schema())
    whitelist = plan.apply(scored_portrait).collect()
    answer = plan.evaluate_one({"age": 41, "segment": "farmer", "score": 655.0, ...})

The strategy is pure: it imports no domain and touches no database. Model scores are computed by
the caller into the columns ``score`` and ``pd`` (one model per segment, see ``Plan.model_refs``).
"""

from __future__ import annotations

from collections.abc import Mapping

from creditfactory.strategy.checker import OUTPUT_COLUMNS, SCORE_COLUMNS, analyse
from creditfactory.strategy.errors import FactsError, Problem, StrategyError
from creditfactory.strategy.loader import load
from creditfactory.strategy.plan import WORD_BITS, Outcome, Plan, PlanRule, RuleHit, build
from creditfactory.strategy.schema import default_schema, example_path, load_schema, schema_from_polars
from creditfactory.strategy.spec import Action, Kind, Reason, Strategy
from creditfactory.strategy.sql import FUNCTIONS

__all__ = [
    "FUNCTIONS",
    "OUTPUT_COLUMNS",
    "SCORE_COLUMNS",
    "WORD_BITS",
    "Action",
    "FactsError",
    "Kind",
    "Outcome",
    "Plan",
    "PlanRule",
    "Problem",
    "Reason",
    "RuleHit",
    "Strategy",
    "StrategyError",
    "check",
    "compile",
    "default_schema",
    "example_path",
    "load",
    "load_schema",
    "schema_from_polars",
]


def check(strategy: Strategy, schema: Mapping[str, str]) -> list[Problem]:
    """Every problem with ``strategy`` against ``schema`` (column -> number|string|bool|date),
    including those found when it was loaded; an empty list means it compiles."""
    return analyse(strategy, schema).problems


def compile(strategy: Strategy, schema: Mapping[str, str]) -> Plan:
    """Check ``strategy`` and compile it; raises :class:`StrategyError` listing every problem."""
    analysis = analyse(strategy, schema)
    if analysis.problems:
        raise StrategyError(analysis.problems, source=strategy.source)
    return build(analysis)
