"""Replay a stored decision: the same strategy text, the same model versions, the stored inputs.

A decision is a pure function of (inputs, strategy version, model versions): replay re-scores
the stored portrait row with the recorded model versions (checking each manifest's digest),
re-evaluates the stored strategy text (checking its SHA-256) and compares every part of the
verdict with what was recorded. An unchanged engine finds no difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from creditfactory import modeling, strategy
from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning import records
from creditfactory.decisioning.engine import (
    DecisionNotFound,
    compile_decision,
    decision_schema,
    get_strategy,
    load_text,
    score_row,
)
from creditfactory.decisioning.evaluate import Terms, Verdict, evaluate, evaluation_row
from creditfactory.errors import Conflict


class StrategyTextChanged(Conflict):
    code = "strategy_text_changed"
    title = "The stored strategy text does not match the recorded SHA-256"


class ModelVersionChanged(Conflict):
    code = "model_version_changed"
    title = "A model version's artefacts differ from those the decision used"


def _type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def schema_for(inputs: Mapping[str, Any]) -> dict[str, str]:
    """The decision schema, plus any stored portrait column it no longer lists (typed by value)."""
    schema = decision_schema(None)
    row = (inputs.get("portrait") or {}).get("row") or {}
    for name, value in row.items():
        t = _type_of(value)
        if name not in schema and t is not None:
            schema[name] = t
    return schema


def inputs_of(
    record: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any], Terms]:
    inputs = record["inputs"]
    return (
        (inputs.get("portrait") or {}).get("row"),
        dict(inputs["facts"]),
        dict(inputs["fields"]),
        Terms.from_json(inputs["terms"]),
    )


def rescore(
    uow: UnitOfWork,
    *,
    models_dir: Path,
    plan: strategy.Plan,
    row: Mapping[str, Any],
    recorded: Mapping[str, Any],
) -> dict[str, Any]:
    """Scores from the model versions the decision recorded (``{}``: none was used)."""
    if not recorded:
        return {"score": None, "pd": None}
    ((segment, ref),) = recorded.items()
    model = modeling.load_version(
        uow, models_dir=models_dir, name=ref["name"], version=int(ref["version"]), allow_unapproved=True
    )
    if model.manifest_sha256 != ref["manifest_sha256"]:
        raise ModelVersionChanged(
            f"{model.ref} no longer has the artefacts decision used (manifest digest differs)",
            model=model.name,
            version=model.version,
        )
    score, pd = score_row(model, row)
    return {"score": score, "pd": pd}


@dataclass(frozen=True, slots=True)
class Replay:
    decision_id: int
    recorded: dict[str, Any]
    replayed: dict[str, Any]
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "same": self.same,
            "differences": self.differences,
            "recorded": self.recorded,
            "replayed": self.replayed,
        }


def _money(v: Any) -> str | None:
    return None if v is None else format(Decimal(v).normalize(), "f")


def _summary(
    outcome: str,
    reason_code: str | None,
    grade: str | None,
    limit: Any,
    rate: Any,
    score: float | None,
    pd: float | None,
    hits: list[Any],
    reasons: list[Any],
) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "reason_code": reason_code,
        "grade": grade,
        "limit": _money(limit),
        "annual_rate": _money(rate),
        "score": score,
        "pd": pd,
        "hits": [h["rule"] for h in hits],
        "reasons": [r["code"] for r in reasons],
        "reason_texts": [[r["code"], r["en"], r["zh"]] for r in reasons],
    }


def verdict_summary(v: Verdict, scores: Mapping[str, Any]) -> dict[str, Any]:
    return _summary(
        v.outcome,
        v.reason_code,
        v.grade,
        v.limit,
        v.annual_rate,
        scores["score"],
        scores["pd"],
        list(v.hits),
        list(v.reasons),
    )


def replay_decision(uow: UnitOfWork, *, decision_id: int, models_dir: Path) -> Replay:
    """Re-run a stored decision from its stored inputs and versions; list every difference."""
    record = records.get_decision(uow.session.connection(), decision_id)
    if record is None:
        raise DecisionNotFound(f"decision {decision_id} does not exist", decision_id=decision_id)
    published = get_strategy(uow, strategy_id=int(record["strategy_id"]))
    strat = load_text(published.text, source=published.source)
    if strat.fingerprint != record["strategy_sha256"]:
        raise StrategyTextChanged(
            f"strategy {published.id} hashes to {strat.fingerprint[:12]}, the decision recorded "
            f"{record['strategy_sha256'][:12]}",
            decision_id=decision_id,
        )
    plan = compile_decision(strat, schema_for(record["inputs"]))
    row, facts, fields, terms = inputs_of(record)
    base = {**(row or {}), **facts, **fields}
    scores = rescore(uow, models_dir=models_dir, plan=plan, row=base, recorded=record["models"])
    verdict = evaluate(
        plan, evaluation_row(plan, portrait_row=row, facts=facts, fields=fields, scores=scores), terms=terms
    )
    recorded = _summary(
        record["outcome"],
        record["reason_code"],
        record["grade"],
        record["limit"],
        record["annual_rate"],
        record["score"],
        record["pd"],
        record["hits"],
        record["reasons"],
    )
    replayed = verdict_summary(verdict, scores)
    differences = [
        {"field": k, "recorded": recorded[k], "replayed": replayed[k]}
        for k in recorded
        if recorded[k] != replayed[k]
    ]
    return Replay(decision_id=decision_id, recorded=recorded, replayed=replayed, differences=differences)


__all__ = ["ModelVersionChanged", "Replay", "StrategyTextChanged", "replay_decision", "schema_for"]
