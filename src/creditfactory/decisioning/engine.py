"""The automated decision on an application: strategies published as champion and challenger,
the decision itself, and its records.

:class:`DecisionEngine` holds what is worth keeping between decisions (compiled plans, loaded
models, portrait frames); :func:`decide_application` is the use case: read the application from
origination, gather the facts, find the applicant's portrait row, score, evaluate the champion
(and the challenger, when the applicant falls in its share), store a decision record per
strategy, move the application through origination's public operation, remember the application
for velocity and graph, and set its outcome, all in the caller's unit of work (never committed
here).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from threading import Lock
from typing import Any

import polars as pl
from sqlalchemy import Connection

from creditfactory import modeling, origination, portrait, strategy
from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning import records
from creditfactory.decisioning.evaluate import (
    APPLICATION_FIELDS,
    NEW_TO_BANK,
    Terms,
    Verdict,
    application_fields,
    evaluate,
    evaluation_row,
    plain,
    plain_values,
)
from creditfactory.decisioning.facts import fact_schema
from creditfactory.decisioning.model import Applicant, Contact, FactSettings
from creditfactory.decisioning.service import gather, remember_decided
from creditfactory.errors import Conflict, DomainError, InvalidInput, NotFound
from creditfactory.events import Event, append

log = logging.getLogger("creditfactory.decisioning")

CHAMPION, CHALLENGER = "champion", "challenger"
SHADOW, LIVE = "shadow", "live"
#: Who decided, as origination records it.
DECIDED_BY = "decisioning"


class NoChampionStrategy(NotFound):
    code = "no_champion_strategy"
    title = "No decision strategy is published as champion"


class DecisionNotFound(NotFound):
    code = "decision_not_found"
    title = "Decision not found"


class NotADecisionStrategy(InvalidInput):
    code = "not_a_decision_strategy"
    title = "The strategy is not a decision strategy"


class ApplicationNotDecidable(Conflict):
    code = "application_not_decidable"
    title = "The application is not waiting for an automated decision"


# ------------------------------------------------------------------ schema


def portrait_columns(lake: Path | None = None, *, as_of: date | None = None) -> dict[str, str]:
    """The portrait's columns: from the portrait built at ``as_of`` (the newest when ``None``) when
    the lake has one, else from the portrait's catalogue."""
    if lake is not None:
        dates = portrait.available(lake)
        if dates:
            return portrait.schema(lake, as_of=as_of or dates[-1])
    types = {"float": "number", "int": "number", "bool": "bool", "string": "string", "date": "date"}
    out = {"customer_id": "string", "as_of": "date", "segment": "string", "branch_id": "string"}
    out.update({"lat": "number", "lon": "number"})
    for f in portrait.FEATURES:
        out[f.name] = types[str(getattr(f.dtype, "value", f.dtype))]
    return out


def decision_schema(lake: Path | None = None, *, as_of: date | None = None) -> dict[str, str]:
    """What a decision strategy may read: the portrait's columns, the decision facts
    (:func:`fact_schema`) and the application's fields (``APPLICATION_FIELDS``); the plan adds
    ``score`` and ``pd``."""
    return {**portrait_columns(lake, as_of=as_of), **fact_schema(), **APPLICATION_FIELDS}


# ------------------------------------------------------------------ strategy registry


@dataclass(frozen=True, slots=True)
class PublishedStrategy:
    id: int
    name: str
    version: int | None
    sha256: str
    role: str
    share: float
    mode: str
    active: bool
    published_at: datetime
    published_by: str
    source: str
    # None where read without it (the active strategies a decision asks for; see ``plan``)
    text: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> PublishedStrategy:
        return cls(
            id=int(row["id"]),
            name=row["name"],
            version=row["version"],
            sha256=row["sha256"],
            role=row["role"],
            share=row["share_bp"] / 10_000,
            mode=row["mode"],
            active=bool(row["active"]),
            published_at=row["published_at"],
            published_by=row["published_by"],
            source=row["source"],
            text=row.get("text"),
        )

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" if self.version is not None else self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "role": self.role,
            "share": self.share,
            "mode": self.mode,
            "active": self.active,
            "published_at": self.published_at.isoformat(),
            "published_by": self.published_by,
            "source": self.source,
        }


def load_text(text: str, *, source: str) -> strategy.Strategy:
    """A strategy from its text (as stored), labelled with the file it was published from."""
    return strategy.load(text if "\n" in text else text + "\n", label=source)


def compile_decision(strat: strategy.Strategy, schema: Mapping[str, str]) -> strategy.Plan:
    """Compile a decision strategy (refusing a mining one)."""
    if strat.kind is not strategy.Kind.DECISION:
        raise NotADecisionStrategy(
            f"{strat.label} is a {getattr(strat.kind, 'value', strat.kind)} strategy; a decision needs kind: decision"
        )
    return strategy.compile(strat, schema)


def publish_strategy(
    uow: UnitOfWork,
    *,
    path: Path,
    clock: Clock,
    actor: str,
    challenger: bool = False,
    share: float = 0.1,
    mode: str = SHADOW,
    lake: Path | None = None,
    models_dir: Path | None = None,
) -> PublishedStrategy:
    """Check a decision strategy file against :func:`decision_schema` and publish it as the
    champion (replacing the active champion), or as the challenger taking ``share`` of the
    applicants (replacing the active challenger), ``shadow`` (recorded only) or ``live`` (its
    outcome is the application's). With ``models_dir`` every model it names must be approved
    and fit the schema."""
    text = path.read_text(encoding="utf-8")
    strat = strategy.load(path)
    schema = decision_schema(lake)
    plan = compile_decision(strat, schema)
    if models_dir is not None:
        for segment, (name, version) in sorted(plan.model_refs.items()):
            model = modeling.load_version(uow, models_dir=models_dir, name=name, version=version)
            problems = model.check_schema(schema)
            if problems:
                raise InvalidInput(
                    f"model {model.ref} for segment {segment} does not fit the decision schema: "
                    + "; ".join(problems),
                    model=model.name,
                    version=model.version,
                )
    role = CHALLENGER if challenger else CHAMPION
    if challenger:
        if not 0.0 < share <= 1.0:
            raise InvalidInput(f"a challenger's share is in (0, 1], got {share}", field="share")
        if mode not in (SHADOW, LIVE):
            raise InvalidInput(f"a challenger runs in shadow or live mode, not {mode!r}", field="mode")
    conn = uow.session.connection()
    now = clock.now()
    records.retire_active(conn, role=role, at=now)
    sid = records.add_strategy(
        conn,
        name=strat.name,
        version=strat.version,
        sha256=strat.fingerprint,
        text=text,
        source=str(path),
        role=role,
        share_bp=round(share * 10_000) if challenger else 10_000,
        mode=mode if challenger else LIVE,
        active=True,
        published_at=now,
        published_by=actor,
    )
    row = records.get_strategy(conn, sid)
    assert row is not None
    return PublishedStrategy.of(row)


def retire_challenger(uow: UnitOfWork, *, clock: Clock) -> int:
    """Stop the challenger (its records stay)."""
    return records.retire_active(uow.session.connection(), role=CHALLENGER, at=clock.now())


def list_strategies(uow: UnitOfWork) -> list[PublishedStrategy]:
    return [PublishedStrategy.of(r) for r in records.list_strategies(uow.session.connection())]


def get_strategy(uow: UnitOfWork, *, strategy_id: int) -> PublishedStrategy:
    row = records.get_strategy(uow.session.connection(), strategy_id)
    if row is None:
        raise NotFound(f"no published decision strategy has id {strategy_id}", strategy_id=strategy_id)
    return PublishedStrategy.of(row)


def bucket(id_number_token: str, *, salt: str) -> float:
    """Where an applicant falls in [0, 1): a stable hash of the ID-number token (salted with the
    challenger's SHA-256, so that each challenger draws its own sample)."""
    digest = hashlib.sha256(f"{salt}:{id_number_token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_challenger(id_number_token: str, *, salt: str, share: float) -> bool:
    return bucket(id_number_token, salt=salt) < share


# ------------------------------------------------------------------ views


@dataclass(frozen=True, slots=True)
class DecisionView:
    """A decision record as the API, the console and the CLI show it."""

    id: int
    application_id: int
    customer_id: str
    role: str
    applied: bool
    outcome: str
    reason_code: str | None
    grade: str | None
    limit: Decimal | None
    annual_rate: Decimal | None
    segment: str | None
    score: float | None
    pd: float | None
    strategy: dict[str, Any]
    models: dict[str, Any]
    hits: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    variables: dict[str, Any]
    inputs: dict[str, Any]
    timings: dict[str, float]
    total_ms: float
    business_date: date
    decided_at: datetime
    portrait_as_of: date | None
    whitelisted: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> DecisionView:
        return cls(
            id=int(row["id"]),
            application_id=int(row["application_id"]),
            customer_id=row["customer_id"],
            role=row["role"],
            applied=bool(row["applied"]),
            outcome=row["outcome"],
            reason_code=row["reason_code"],
            grade=row["grade"],
            limit=row["limit"],
            annual_rate=row["annual_rate"],
            segment=row["segment"],
            score=row["score"],
            pd=row["pd"],
            strategy={
                "id": int(row["strategy_id"]),
                "name": row["strategy_name"],
                "version": row["strategy_version"],
                "sha256": row["strategy_sha256"],
            },
            models=row.get("models") or {},
            hits=row.get("hits") or [],
            reasons=row.get("reasons") or [],
            variables=row.get("variables") or {},
            inputs=row.get("inputs") or {},
            timings=row.get("timings") or {},
            total_ms=float(row["total_ms"]),
            business_date=row["business_date"],
            decided_at=row["decided_at"],
            portrait_as_of=row["portrait_as_of"],
            whitelisted=bool(row["whitelisted"]),
        )

    @property
    def reason_codes(self) -> list[str]:
        return [r["code"] for r in self.reasons]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "application_id": self.application_id,
            "customer_id": self.customer_id,
            "role": self.role,
            "applied": self.applied,
            "outcome": self.outcome,
            "reason_code": self.reason_code,
            "reason_codes": self.reason_codes,
            "grade": self.grade,
            "limit": None if self.limit is None else f"{self.limit:.2f}",
            "annual_rate": None if self.annual_rate is None else format(self.annual_rate.normalize(), "f"),
            "segment": self.segment,
            "score": self.score,
            "pd": self.pd,
            "strategy": self.strategy,
            "models": self.models,
            "hits": self.hits,
            "reasons": self.reasons,
            "variables": self.variables,
            "inputs": self.inputs,
            "timings_ms": self.timings,
            "total_ms": self.total_ms,
            "business_date": self.business_date.isoformat(),
            "decided_at": self.decided_at.isoformat(),
            "portrait_as_of": None if self.portrait_as_of is None else self.portrait_as_of.isoformat(),
            "whitelisted": self.whitelisted,
        }


def get_decision(uow: UnitOfWork, *, decision_id: int) -> DecisionView:
    row = records.get_decision(uow.session.connection(), decision_id)
    if row is None:
        raise DecisionNotFound(f"decision {decision_id} does not exist", decision_id=decision_id)
    return DecisionView.of(row)


def decisions_of_application(uow: UnitOfWork, *, application_id: int) -> list[DecisionView]:
    """Every record of an application (the applied one first)."""
    rows = records.decisions_of(uow.session.connection(), application_id)
    views = [DecisionView.of(r) for r in rows]
    return sorted(views, key=lambda v: (not v.applied, v.id))


def list_decisions(
    uow: UnitOfWork,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    role: str | None = None,
    outcome: str | None = None,
    after_id: int | None = None,
    limit: int | None = 50,
) -> list[dict[str, Any]]:
    """Decision summaries (no inputs) in id order."""
    rows = records.list_decisions(
        uow.session.connection(),
        date_from=date_from,
        date_to=date_to,
        role=role,
        outcome=outcome,
        after_id=after_id,
        limit=limit,
    )
    return [
        {
            "id": r["id"],
            "application_id": r["application_id"],
            "customer_id": r["customer_id"],
            "role": r["role"],
            "applied": r["applied"],
            "outcome": r["outcome"],
            "reason_code": r["reason_code"],
            "grade": r["grade"],
            "limit": None if r["limit"] is None else f"{r['limit']:.2f}",
            "annual_rate": None if r["annual_rate"] is None else format(r["annual_rate"].normalize(), "f"),
            "score": r["score"],
            "strategy": f"{r['strategy_name']} v{r['strategy_version']}",
            "business_date": r["business_date"].isoformat(),
            "total_ms": round(float(r["total_ms"]), 3),
        }
        for r in rows
    ]


# ------------------------------------------------------------------ the engine


@dataclass
class _Compiled:
    published: PublishedStrategy
    plan: strategy.Plan


@dataclass
class _PortraitFrame:
    frame: pl.DataFrame
    index: dict[str, int]


def _dtype(kind: str) -> pl.DataType:
    return {"number": pl.Float64(), "string": pl.String(), "bool": pl.Boolean()}.get(kind, pl.Float64())


def score_row(model: modeling.LoadedModel, row: Mapping[str, Any]) -> tuple[float, float]:
    """One row's score and probability of bad from a loaded model: a scorecard's points read
    in plain Python (:meth:`~creditfactory.modeling.LoadedModel.score_one`), else a one-row
    frame."""
    plain_scores = model.score_one(row)
    if plain_scores is not None:
        return plain_scores
    schema = {name: _dtype(kind) for name, kind in model.features.items()}
    values: dict[str, list[Any]] = {}
    for name, kind in model.features.items():
        v = row.get(name)
        if kind == "number" and v is not None and not isinstance(v, bool):
            v = float(v)
        values[name] = [v]
    frame = pl.DataFrame(values, schema=schema)
    score = float(model.score(frame)[0])
    if model.kind == "scorecard":  # the points carry the odds: one pass instead of two
        offset, factor = model.scaling()
        return score, 1.0 / (1.0 + math.exp((score - offset) / factor))
    return score, float(model.predict_proba(frame)[0])


class DecisionEngine:
    """Decides applications; keeps compiled plans, loaded models and portrait frames between
    decisions (safe to share between threads: the caches are filled under a lock)."""

    def __init__(self, *, lake: Path, models_dir: Path, facts: FactSettings | None = None) -> None:
        self.lake = Path(lake)
        self.models_dir = Path(models_dir)
        self.facts = facts or FactSettings()
        self._plans: dict[int, _Compiled] = {}
        self._models: dict[tuple[str, int], modeling.LoadedModel] = {}
        self._portraits: dict[date, _PortraitFrame] = {}
        self._schema: dict[str, str] | None = None
        self._lock = Lock()

    # -------------------------------------------------------------- caches
    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = decision_schema(self.lake)
        return self._schema

    def plan(self, published: PublishedStrategy, conn: Connection | None = None) -> strategy.Plan:
        """The compiled plan of a published strategy, compiled once per strategy id (its text
        never changes). A strategy read without its text has it read on ``conn`` here, once."""
        hit = self._plans.get(published.id)
        if hit is not None:
            return hit.plan
        text = published.text
        if text is None:
            if conn is None:
                raise ValueError(f"strategy {published.id} was read without its text; give a connection")
            text = records.strategy_text(conn, published.id)
            if text is None:
                raise NotFound(
                    f"no published decision strategy has id {published.id}", strategy_id=published.id
                )
        with self._lock:
            strat = load_text(text, source=published.source)
            plan = compile_decision(strat, self.schema())
            self._plans[published.id] = _Compiled(published, plan)
        return plan

    def model(self, uow: UnitOfWork, name: str, version: int | None) -> modeling.LoadedModel:
        if version is None:
            # asked of the registry on every decision (one indexed look-up): a version approved
            # or retired by another process takes effect at once
            version = modeling.approved_version(uow, name=name)
            if version is None:
                # load_version names the problem (no such model, or none approved)
                return modeling.load_version(uow, models_dir=self.models_dir, name=name)
        key = (name, version)
        hit = self._models.get(key)
        if hit is None:
            hit = modeling.load_version(uow, models_dir=self.models_dir, name=name, version=version)
            with self._lock:
                self._models[key] = hit
        return hit

    def portrait_row(self, customer_id: str, *, on: date) -> tuple[dict[str, Any] | None, date | None]:
        """The customer's row of the newest portrait at or before ``on``, and its as-of; ``(None, None)`` when there is no such portrait or the customer is not in it."""
        dates = [d for d in portrait.available(self.lake) if d <= on]  # none when the lake has none
        if not dates:
            return None, None
        as_of = dates[-1]
        frame = self._portraits.get(as_of)
        if frame is None:
            with self._lock:
                df = portrait.read(self.lake, as_of=as_of).collect()
                ids = df.get_column("customer_id").to_list()
                frame = _PortraitFrame(df, {cid: i for i, cid in enumerate(ids)})
                self._portraits[as_of] = frame
        i = frame.index.get(customer_id)
        if i is None:
            return None, as_of
        return frame.frame.row(i, named=True), as_of

    def warm(self, uow: UnitOfWork) -> list[str]:
        """Before the first decision: import the modeling stack (scikit-learn, about 1.5 s),
        compile the active strategies, load the models they name and read the newest portrait.
        Returns what was made ready (``strategy …``, ``model …``, ``portrait …``)."""
        import creditfactory.modeling.service  # noqa: F401  (the import the first score would pay)

        ready: list[str] = []
        conn = uow.session.connection()
        for published in (PublishedStrategy.of(r) for r in records.active_strategies(conn)):
            plan = self.plan(published, conn)
            ready.append(f"strategy {published.label}")
            for name, version in sorted(set(plan.model_refs.values()), key=str):
                model = self.model(uow, name, version)
                ready.append(f"model {model.ref}")
        dates = portrait.available(self.lake) if ready else []
        if dates:
            self.portrait_row("", on=dates[-1])
            ready.append(f"portrait {dates[-1].isoformat()}")
        return ready

    # -------------------------------------------------------------- scoring and rules
    def score(
        self, uow: UnitOfWork, plan: strategy.Plan, row: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``({"score": .., "pd": ..}, models used)`` for the row's segment (NULL scores when the
        strategy names no model for it)."""
        segment = row.get(plan.strategy.segment_column)
        ref = plan.model_refs.get(segment) if isinstance(segment, str) else None
        if ref is None:
            return {"score": None, "pd": None}, {}
        model = self.model(uow, ref[0], ref[1])
        s, p = score_row(model, row)
        used = {
            str(segment): {
                "name": model.name,
                "version": model.version,
                "kind": model.kind,
                "manifest_sha256": model.manifest_sha256,
            }
        }
        return {"score": s, "pd": p}, used

    # -------------------------------------------------------------- the decision
    def decide(
        self,
        uow: UnitOfWork,
        *,
        application_id: int,
        now: datetime,
        actor: str = DECIDED_BY,
        view: bool = True,
        no_savepoint: bool = False,
    ) -> DecisionView | None:
        """Decide a submitted application (see :func:`decide_application`); without ``view``
        nothing is returned (the decision on submission answers with the application).

        Everything that may refuse the decision (no champion, a model not approved, a move
        origination would refuse) is asked before the first write. ``no_savepoint`` is for a
        caller that takes no savepoint around the decision: a refusal after the first write
        (none is foreseen) is then raised as :class:`DecisionNotRecorded`, not a domain error,
        so that the caller's transaction fails as a whole rather than keep part of a decision.
        Such a caller decides in the transaction that submitted the application (the decision
        on submission), so the application's move is left to its commit, which writes it in its
        own statement on PostgreSQL (``origination.record_decision(at_commit=True)``)."""
        conn = uow.session.connection()
        app = origination.application_facts(uow, application_id=application_id)
        if app["status"] != origination.ApplicationStatus.SUBMITTED.value:
            # a decided application: its decision, when this engine made it
            existing = [r for r in records.decisions_of(conn, application_id) if r["applied"]]
            if existing:
                return DecisionView.of(existing[0])
        active = [PublishedStrategy.of(r) for r in records.active_strategies(conn)]
        champion = next((s for s in active if s.role == CHAMPION), None)
        if champion is None:
            raise NoChampionStrategy(
                "publish a decision strategy first: creditfactory decision strategy publish FILE"
            )
        challenger = next((s for s in active if s.role == CHALLENGER), None)
        if app["status"] != origination.ApplicationStatus.SUBMITTED.value:
            raise ApplicationNotDecidable(
                f"application {application_id} is {app['status']}; only a submitted one is decided",
                application_id=application_id,
            )

        started = time.perf_counter()
        identity = app["identity"]
        applicant = _applicant(app)
        business_date: date = app["business_date"]

        t = time.perf_counter()
        native_row, as_of = self.portrait_row(app["customer_id"], on=business_date)
        row = None if native_row is None else plain_values(native_row)
        portrait_ms = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        gathered = gather(uow, applicant=applicant, portrait_row=native_row, settings=self.facts)
        facts_ms = (time.perf_counter() - t) * 1000
        facts = plain_values(gathered.values)
        fields = application_fields(app, portrait_row=row, portrait_as_of=as_of)
        terms = Terms.of(app)
        assignment = (
            None if challenger is None else bucket(identity["id_number_token"], salt=challenger.sha256)
        )
        to_challenger = challenger is not None and assignment is not None and assignment < challenger.share
        runs = [(CHAMPION, champion)] + ([(CHALLENGER, challenger)] if to_challenger and challenger else [])
        live_role = CHALLENGER if to_challenger and challenger and challenger.mode == LIVE else CHAMPION

        inputs = {
            "application": {
                "id": application_id,
                "customer_id": app["customer_id"],
                "amount": plain(app["amount"]),
                "term_months": app["term_months"],
                "declared_annual_income": plain(app["declared_annual_income"]),
                "channel": app["channel"],
                "product_code": app["product_code"],
                "purpose": app["purpose"],
                "offer": plain(app["offer"]),
                "submitted_at": plain(app["submitted_at"]),
                "business_date": business_date.isoformat(),
            },
            "fields": fields,
            "portrait": {"as_of": None if as_of is None else as_of.isoformat(), "row": row},
            "facts": facts,
            "terms": terms.to_json(),
            "assignment": {
                "bucket": assignment,
                "challenger_share": challenger.share if challenger else None,
            },
        }
        made: list[
            tuple[str, PublishedStrategy, Verdict, dict[str, Any], dict[str, Any], dict[str, float]]
        ] = []
        for role, published in runs:
            plan = self.plan(published, conn)
            t = time.perf_counter()
            base = {**(row or {}), **facts, **fields}
            scores, models = self.score(uow, plan, base)
            scoring_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            verdict = evaluate(
                plan,
                evaluation_row(plan, portrait_row=row, facts=facts, fields=fields, scores=scores),
                terms=terms,
            )
            rules_ms = (time.perf_counter() - t) * 1000
            timings = {
                "facts": facts_ms,
                "portrait": portrait_ms,
                "scoring": scoring_ms,
                "rules": rules_ms,
                **{f"facts.{k}": v for k, v in gathered.timings_ms.items() if k != "total"},
            }
            made.append((role, published, verdict, scores, models, timings))

        applied = next(v for r, _, v, *_ in made if r == live_role)
        # every refusal of origination's before the first write (see ``no_savepoint``)
        origination.check_decision(
            uow,
            application_id=application_id,
            outcome=applied.outcome,
            limit=applied.limit,
            annual_rate=applied.annual_rate,
            decided_by=actor,
            business_date=business_date,
        )
        with _refusals_fail(no_savepoint, application_id):
            # the velocity and graph writes first, timed as "persist"; then the records, with
            # their timings in the one INSERT (a record cannot time its own write), then the
            # application's move and the events, which name the live record
            t = time.perf_counter()
            remember_decided(
                uow, applicant=applicant, application_ref=str(application_id), outcome=applied.outcome, at=now
            )
            persist_ms = (time.perf_counter() - t) * 1000
            total_ms = (time.perf_counter() - started) * 1000
            ids: dict[str, int] = {}
            written: dict[str, dict[str, Any]] = {}
            for role, published, verdict, scores, models, timings in made:
                plan = self.plan(published, conn)
                segment = {**(row or {}), **facts, **fields}.get(plan.strategy.segment_column)
                written[role] = dict(
                    application_id=application_id,
                    customer_id=app["customer_id"],
                    strategy_id=published.id,
                    strategy_name=published.name,
                    strategy_version=published.version,
                    strategy_sha256=published.sha256,
                    role=role,
                    applied=role == live_role,
                    outcome=verdict.outcome,
                    reason_code=verdict.reason_code,
                    grade=verdict.grade,
                    limit=verdict.limit,
                    annual_rate=verdict.annual_rate,
                    segment=None if segment is None else str(segment),
                    score=scores["score"],
                    pd=scores["pd"],
                    business_date=business_date,
                    decided_at=now,
                    portrait_as_of=as_of,
                    whitelisted=app["offer"] is not None,
                    inputs=inputs,
                    models=models,
                    hits=list(verdict.hits),
                    reasons=list(verdict.reasons),
                    variables=verdict.variables,
                    timings={**{k: round(v, 3) for k, v in timings.items()}, "persist": round(persist_ms, 3)},
                    total_ms=total_ms,
                )
                ids[role] = records.add_decision(conn, **written[role])
                written[role]["id"] = ids[role]
            origination.record_decision(
                uow,
                application_id=application_id,
                outcome=applied.outcome,
                limit=applied.limit,
                annual_rate=applied.annual_rate,
                reasons=list(applied.reason_codes),
                decision_id=str(ids[live_role]),
                decided_by=actor,
                business_date=business_date,
                now=now,
                # made in the transaction that submitted the application: the commit writes
                # the move in its own statement (nobody else sees the application before it)
                at_commit=no_savepoint,
            )
            append(
                uow.session,
                Event(
                    f"decisioning.application.{_PAST[applied.outcome]}",
                    {
                        "application_id": application_id,
                        "customer_id": app["customer_id"],
                        "decision_id": ids[live_role],
                        "outcome": applied.outcome,
                        "reason_codes": list(applied.reason_codes),
                        "business_date": business_date.isoformat(),
                    },
                ),
                now=now,
            )
            if not no_savepoint:
                # within the caller's savepoint; without one, the caller's commit writes them
                uow.flush()
            if not view:
                return None
            # the view of what was written, as a read would give it back (JSON-plain inputs)
            return DecisionView.of(records.decoded_copy(written[live_role]))


_PAST = {"approve": "approved", "decline": "declined", "refer": "referred"}


class DecisionNotRecorded(RuntimeError):
    """A decision was refused after part of it was written (see ``DecisionEngine.decide``)."""


@contextmanager
def _refusals_fail(active: bool, application_id: int) -> Iterator[None]:
    if not active:
        yield
        return
    try:
        yield
    except DomainError as exc:
        raise DecisionNotRecorded(
            f"application {application_id}: the decision was refused after it was partly written: "
            f"{exc} ({exc.code})"
        ) from exc


def _applicant(app: Mapping[str, Any]) -> Applicant:
    identity = app["identity"]
    device = app["device"]
    location = app["location"] or {}
    return Applicant(
        id_number_token=identity["id_number_token"],
        phone_token=identity["phone_token"],
        applied_at=app["submitted_at"],
        business_date=app["business_date"],
        customer_id=app["customer_id"],
        device_fingerprint=device["fingerprint"],
        is_emulator=bool(device["is_emulator"]),
        is_rooted=bool(device["is_rooted"]),
        ip_address=app["ip"],
        lat=location.get("lat"),
        lon=location.get("lon"),
        declared_annual_income=app["declared_annual_income"],
        contacts=tuple(Contact(c["phone_token"], c["relation"]) for c in app["contacts"]),
    )


def decide_application(
    uow: UnitOfWork,
    *,
    application_id: int,
    lake: Path,
    models_dir: Path,
    clock: Clock,
    engine: DecisionEngine | None = None,
    actor: str = DECIDED_BY,
) -> DecisionView:
    """Decide a submitted application now and return the record that decided it.

    Reads the application (origination), gathers the facts, takes the customer's row of the
    newest portrait at or before the application's business date (none for a new-to-bank
    applicant), scores with the approved models the strategy names for the segment, evaluates the
    champion (and the challenger for the applicants in its share), stores one record per
    strategy, moves the application (approve / decline / refer) through origination, remembers it
    for velocity and graph and sets its outcome, all in ``uow`` (the caller commits). Deciding an
    application that already has a decision returns that decision (no second record).

    Raises :class:`NoChampionStrategy` when no strategy is published and
    :class:`ApplicationNotDecidable` when the application is not ``submitted``.
    """
    engine = engine or DecisionEngine(lake=lake, models_dir=models_dir)
    decided = engine.decide(uow, application_id=application_id, now=clock.now(), actor=actor)
    assert decided is not None
    return decided


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DECIDED_BY",
    "LIVE",
    "NEW_TO_BANK",
    "SHADOW",
    "ApplicationNotDecidable",
    "DecisionEngine",
    "DecisionNotRecorded",
    "DecisionNotFound",
    "DecisionView",
    "NoChampionStrategy",
    "NotADecisionStrategy",
    "PublishedStrategy",
    "bucket",
    "compile_decision",
    "decide_application",
    "decision_schema",
    "decisions_of_application",
    "get_decision",
    "get_strategy",
    "in_challenger",
    "list_decisions",
    "list_strategies",
    "load_text",
    "portrait_columns",
    "publish_strategy",
    "retire_challenger",
    "score_row",
]
