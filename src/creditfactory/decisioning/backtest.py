"""Back-test a decision strategy over the inputs of stored decisions.

Each decision that moved an application between two business dates is decided again by the new
strategy from its stored inputs (portrait row, facts, application fields, product and offer),
scored by the approved models the new strategy names. The result compares approval, referral and
decline rates, approved limits, and, where the outcome of a customer is known (people the graph
marks as defaulted, or labels the caller gives), the bad rate of the approvals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from creditfactory import portrait, strategy
from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning import records, store
from creditfactory.decisioning.engine import DecisionEngine, compile_decision
from creditfactory.decisioning.evaluate import evaluate, evaluation_row
from creditfactory.decisioning.replay import inputs_of, schema_for
from creditfactory.errors import InvalidInput

OUTCOMES = ("approve", "refer", "decline")


@dataclass
class Side:
    """The figures of one side (what was decided, or the new strategy)."""

    counts: Counter[str] = field(default_factory=Counter)
    limit_total: Decimal = Decimal(0)
    known: int = 0
    bad: int = 0

    def add(self, outcome: str, limit: Decimal | None, bad: bool | None) -> None:
        self.counts[outcome] += 1
        if outcome == "approve":
            self.limit_total += limit or Decimal(0)
            if bad is not None:
                self.known += 1
                self.bad += int(bad)

    def to_json(self, n: int) -> dict[str, Any]:
        approved = self.counts["approve"]
        return {
            "approve": self.counts["approve"],
            "refer": self.counts["refer"],
            "decline": self.counts["decline"],
            "approval_rate": round(approved / n, 4) if n else None,
            "referral_rate": round(self.counts["refer"] / n, 4) if n else None,
            "decline_rate": round(self.counts["decline"] / n, 4) if n else None,
            "limit_total": f"{self.limit_total:.2f}",
            "limit_average": f"{(self.limit_total / approved):.2f}" if approved else None,
            "approvals_with_known_outcome": self.known,
            "bad_rate": round(self.bad / self.known, 4) if self.known else None,
        }


@dataclass(frozen=True, slots=True)
class Backtest:
    strategy: str
    sha256: str
    date_from: date
    date_to: date
    decisions: int
    recorded: dict[str, Any]
    new: dict[str, Any]
    changed: int
    moves: dict[str, int]
    changes: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "sha256": self.sha256,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "decisions": self.decisions,
            "recorded": self.recorded,
            "new": self.new,
            "changed": self.changed,
            "moves": self.moves,
            "changes": self.changes,
        }


def known_bad(uow: UnitOfWork) -> set[str]:
    """Customers the relationship graph marks as defaulted (servicing's classification)."""
    return store.defaulted_customers(uow.session.connection())


class _Targets:
    """Outcomes from the portrait's targets: for a decision made on a portrait as of A, the
    customer's ``target`` column (``bad_12m``: a loan 90+ days past due or written off in the 12
    months after A) in the targets built at A."""

    def __init__(self, lake: Path | None, target: str) -> None:
        self.lake, self.target = lake, target
        self.available = (
            set(portrait.targets_available(lake)) if lake is not None and lake.exists() else set()
        )
        self.frames: dict[str, dict[str, bool]] = {}

    def get(self, as_of: str | None, customer_id: str) -> bool | None:
        if as_of is None or self.lake is None or date.fromisoformat(as_of) not in self.available:
            return None
        if as_of not in self.frames:
            df = portrait.read_targets(self.lake, as_of=date.fromisoformat(as_of)).collect()
            if self.target not in df.columns:
                self.frames[as_of] = {}
            else:
                self.frames[as_of] = {
                    c: bool(v)
                    for c, v in zip(df["customer_id"], df[self.target], strict=True)
                    if v is not None
                }
        return self.frames[as_of].get(customer_id)


def backtest(
    uow: UnitOfWork,
    *,
    strategy_path: Path,
    date_from: date,
    date_to: date,
    models_dir: Path,
    lake: Path | None = None,
    labels: Mapping[str, bool] | None = None,
    target: str = "bad_12m",
    keep_changes: int = 50,
) -> Backtest:
    """Run the strategy in ``strategy_path`` over the decisions that moved applications with
    business dates in ``[date_from, date_to]`` and compare with what was decided.

    A customer's outcome is known from ``labels`` (customer id -> bad), else from the portrait's
    targets at the as-of the decision used (``target``), else bad when the graph marks the
    customer defaulted; the bad rate counts approvals with a known outcome only."""
    if date_to < date_from:
        raise InvalidInput(f"--from {date_from} is after --to {date_to}")
    strat = strategy.load(strategy_path)
    rows = [
        r
        for r in records.list_decisions(
            uow.session.connection(), date_from=date_from, date_to=date_to, limit=None, full=True
        )
        if r["applied"]
    ]
    defaulted = known_bad(uow)
    targets = _Targets(lake, target)
    engine = DecisionEngine(lake=lake or Path("."), models_dir=models_dir)
    plan: strategy.Plan | None = None
    recorded, new = Side(), Side()
    moves: Counter[str] = Counter()
    changes: list[dict[str, Any]] = []
    for r in rows:
        if plan is None:
            plan = compile_decision(strat, schema_for(r["inputs"]))
        row, facts, fields, terms = inputs_of(r)
        base = {**(row or {}), **facts, **fields}
        scores, _ = engine.score(uow, plan, base)
        v = evaluate(
            plan,
            evaluation_row(plan, portrait_row=row, facts=facts, fields=fields, scores=scores),
            terms=terms,
        )
        cid = r["customer_id"]
        outcome_known = (labels or {}).get(cid)
        if outcome_known is None:
            outcome_known = targets.get(r["inputs"]["portrait"]["as_of"], cid)
        if outcome_known is None and cid in defaulted:
            outcome_known = True
        recorded.add(r["outcome"], r["limit"], outcome_known)
        new.add(v.outcome, v.limit, outcome_known)
        moves[f"{r['outcome']}->{v.outcome}"] += 1
        if r["outcome"] != v.outcome or (r["limit"] or 0) != (v.limit or 0):
            if len(changes) < keep_changes:
                changes.append(
                    {
                        "decision_id": r["id"],
                        "application_id": r["application_id"],
                        "recorded": r["outcome"],
                        "new": v.outcome,
                        "recorded_limit": None if r["limit"] is None else f"{r['limit']:.2f}",
                        "new_limit": None if v.limit is None else f"{v.limit:.2f}",
                        "new_reasons": list(v.reason_codes),
                    }
                )
    n = len(rows)
    changed = sum(c for k, c in moves.items() if k.split("->")[0] != k.split("->")[1])
    if plan is None:  # no decision in the range: the strategy must still compile
        compile_decision(strat, schema_for({}))
    return Backtest(
        strategy=strat.label,
        sha256=strat.fingerprint,
        date_from=date_from,
        date_to=date_to,
        decisions=n,
        recorded=recorded.to_json(n),
        new=new.to_json(n),
        changed=changed,
        moves=dict(sorted(moves.items())),
        changes=changes,
    )


__all__ = ["Backtest", "backtest", "known_bad"]
