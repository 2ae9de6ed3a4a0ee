"""A compiled strategy: one set of typed trees, run on a Polars frame, one row, or Spark.

:func:`build` turns a checked strategy into a :class:`Plan`. The whole policy is expressed as
typed trees (:mod:`.ir`) — the variables, every rule's condition, and three rules the plan adds
after the written ones: the segment's cut-off (``cutoffs``), the grade table (``grades``: a
score in no band) and the limit's minimum (``limit``). The backends translate the same trees:

* :meth:`Plan.apply` — Polars, for a LazyFrame of any size;
* :meth:`Plan.evaluate_one` — Python closures, for one application online;
* :meth:`Plan.spark_columns` — Spark SQL text.

How the outcome follows from the rules is the same everywhere: rule *i* sets bit *i % 63* of
``hit_mask`` (word *i // 63*; ``hit_mask_2`` … for more than 63 rules) when its condition is
TRUE. The outcome is the most severe action among the hits (``exclude``/``decline`` before
``refer``; a ``flag`` changes nothing), and ``reason_code`` is the code of the first rule, in
order, with that action. ``grade``, ``limit``, ``price`` and ``expires_on`` are the offer: they
are set when the outcome is ``eligible``, ``approve`` or ``refer``, and NULL otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from sqlglot import exp

from creditfactory.strategy.backends import polars as pb
from creditfactory.strategy.backends import python as py
from creditfactory.strategy.backends import spark as sb
from creditfactory.strategy.checker import AS_OF, Analysis
from creditfactory.strategy.errors import FactsError
from creditfactory.strategy.ir import Call, Col, Lit, Node, Op, Type, columns, is_true
from creditfactory.strategy.spec import Action, Kind, Limit, Reason, Strategy

__all__ = ["WORD_BITS", "Outcome", "Plan", "PlanRule", "RuleHit", "build"]

#: Rules per ``hit_mask`` word (bit 63 is the sign bit of Int64 / BIGINT and stays unused).
WORD_BITS = 63

_GRADE = "_strategy_grade"
_LIMIT = "_strategy_limit"


@dataclass(frozen=True, slots=True)
class PlanRule:
    """A rule as compiled: its bit, its action and its reason."""

    bit: int
    id: str
    stage: str
    action: Action
    reason: Reason
    condition: Node
    sql: str
    line: int | None
    added: bool = False  # one of the three rules the plan adds (cutoffs, grades, limit)

    @property
    def word(self) -> int:
        return self.bit // WORD_BITS

    @property
    def mask(self) -> int:
        return 1 << (self.bit % WORD_BITS)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule whose condition was TRUE for the row."""

    rule: str
    stage: str
    action: Action
    reason: Reason


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer for one row: what, why, and the offer."""

    outcome: str
    reason_code: str | None
    reasons: tuple[Reason, ...]
    hits: tuple[RuleHit, ...]
    hit_mask: tuple[int, ...]
    variables: dict[str, Any]
    grade: str | None
    limit: Decimal | None
    price: Decimal | None
    expires_on: date | None
    strategy: str = ""
    fingerprint: str = ""

    @property
    def reason(self) -> Reason | None:
        """The decisive reason (``None`` when nothing stopped the customer)."""
        return next((r for r in self.reasons if r.code == self.reason_code), None)

    @property
    def rule_hits(self) -> tuple[str, ...]:
        return tuple(h.rule for h in self.hits)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (amounts and rates as text, dates in ISO form)."""
        return {
            "outcome": self.outcome,
            "reason_code": self.reason_code,
            "reasons": [{"code": r.code, "en": r.en, "zh": r.zh} for r in self.reasons],
            "hits": [
                {"rule": h.rule, "stage": h.stage, "action": h.action.value, "code": h.reason.code}
                for h in self.hits
            ],
            "hit_mask": list(self.hit_mask),
            "variables": {
                k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.variables.items()
            },
            "grade": self.grade,
            "limit": None if self.limit is None else str(self.limit),
            "price": None if self.price is None else str(self.price),
            "expires_on": None if self.expires_on is None else self.expires_on.isoformat(),
            "strategy": self.strategy,
            "fingerprint": self.fingerprint,
        }


@dataclass
class Plan:
    """A checked, compiled strategy. Build it with :func:`creditfactory.strategy.compile`."""

    strategy: Strategy
    kind: Kind
    model_refs: dict[str, tuple[str, int | None]]
    input_types: dict[str, Type]
    variables: tuple[tuple[str, Node], ...]
    rules: tuple[PlanRule, ...]
    grade_node: Node
    limit_node: Node
    prices: dict[str, Decimal]
    expiry_days: int | None
    _py: _PythonPlan | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ shape
    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns the plan reads from its input (so an engine can select only those)."""
        return tuple(self.input_types)

    @property
    def words(self) -> int:
        return max(1, math.ceil(len(self.rules) / WORD_BITS))

    @property
    def hit_columns(self) -> tuple[str, ...]:
        return tuple("hit_mask" if w == 0 else f"hit_mask_{w + 1}" for w in range(self.words))

    def outputs(self, *, reason_codes: bool = False) -> tuple[str, ...]:
        """Columns :meth:`apply` adds, in order."""
        extra = ("reason_codes",) if reason_codes else ()
        return (
            *(name for name, _ in self.variables),
            *self.hit_columns,
            "outcome",
            "reason_code",
            "grade",
            "limit",
            "price",
            "expires_on",
            *extra,
        )

    def decode(self, hit_mask: Sequence[int]) -> tuple[PlanRule, ...]:
        """The rules whose bits are set in ``hit_mask`` (one int per word), in order."""
        if not any(hit_mask):
            return ()
        return tuple(r for r in self.rules if hit_mask[r.bit // WORD_BITS] & (1 << (r.bit % WORD_BITS)))

    def _severities(self) -> list[tuple[str, list[PlanRule]]]:
        """(outcome, its rules) from the most severe action down."""
        hard = self.kind.hard_action
        out = [(hard.outcome or "", [r for r in self.rules if r.action is hard])]
        if self.kind is Kind.DECISION:
            out.append(("refer", [r for r in self.rules if r.action is Action.REFER]))
        return out

    def _bits(self, rules: Sequence[PlanRule], word: int) -> int:
        value = 0
        for r in rules:
            if r.word == word:
                value |= r.mask
        return value

    # ------------------------------------------------------------------ Polars
    def apply(self, lf: pl.LazyFrame | pl.DataFrame, *, reason_codes: bool = False) -> pl.LazyFrame:
        """Add the variables and the outcome columns to a frame (see :meth:`outputs`).

        ``reason_codes=True`` also adds ``reason_codes``, the codes of every rule hit, as a list
        (decoded once per distinct ``hit_mask`` and joined back). Batch jobs that only count
        reasons can keep ``hit_mask`` and :meth:`decode` its distinct values instead.
        Raises :class:`FactsError` when a column the plan reads is missing or of the wrong type.
        """
        frame = lf.lazy()
        schema = frame.collect_schema()
        refs: dict[str, pl.Expr] = {}
        problems = []
        for name, t in self.input_types.items():
            if name not in schema:
                problems.append(f"column {name} ({t.value}) is missing")
                continue
            ref = pb.input_ref(name, t, schema[name])
            if isinstance(ref, str):
                problems.append(ref)
            else:
                refs[name] = ref
        if problems:
            raise FactsError(problems, strategy=self.strategy.label)

        def c(node: Node) -> pl.Expr:
            return pb.compile_node(node, refs)

        for layer in _layers(self.variables):
            frame = frame.with_columns([c(node).alias(name) for name, node in layer])
        frame = frame.with_columns(c(self.grade_node).alias(_GRADE), c(self.limit_node).alias(_LIMIT))
        masks = []
        for word, name in enumerate(self.hit_columns):
            terms = [
                pl.when(c(r.condition)).then(pl.lit(r.mask, pl.Int64)).otherwise(pl.lit(0, pl.Int64))
                for r in self.rules
                if r.word == word
            ]
            masks.append(pl.sum_horizontal(terms).alias(name) if terms else pl.lit(0, pl.Int64).alias(name))
        frame = frame.with_columns(masks)

        outcome: Any = None
        firsts = []
        for label, rules in self._severities():
            if not rules:
                continue
            hit = pl.any_horizontal(
                [(pl.col(name) & self._bits(rules, w)) != 0 for w, name in enumerate(self.hit_columns)]
            )
            outcome = (pl.when(hit) if outcome is None else outcome.when(hit)).then(pl.lit(label))
            firsts.append(self._first_code(rules))
        positive = pl.lit(self.kind.positive)
        frame = frame.with_columns(
            (outcome.otherwise(positive) if outcome is not None else positive).alias("outcome"),
            (pl.coalesce(firsts) if firsts else pl.lit(None, pl.String)).alias("reason_code"),
        )
        offered = pl.col("outcome") != pl.lit(self.kind.hard_action.outcome)
        grade = pl.when(offered).then(pl.col(_GRADE))
        frame = frame.with_columns(
            grade.alias("grade"),
            pl.when(offered).then(pl.col(_LIMIT).cast(pl.Int64)).alias("limit"),
            grade.replace_strict(
                list(self.prices),
                [float(p) for p in self.prices.values()],
                default=None,
                return_dtype=pl.Float64,
            ).alias("price"),
            (
                pl.when(offered).then(c(_add_days(self.expiry_days)))
                if self.expiry_days is not None
                else pl.lit(None, pl.Date)
            ).alias("expires_on"),
        )
        frame = frame.drop(_GRADE, _LIMIT)
        if reason_codes:
            # decoded once per distinct mask (a few hundred), then joined back: no list is built
            # row by row
            keys = list(self.hit_columns)
            decoded = frame.select(keys).unique().with_columns(self._reason_codes_polars())
            frame = frame.join(decoded, on=keys, how="left", maintain_order="left")
        return frame

    def _first_code(self, rules: Sequence[PlanRule]) -> pl.Expr:
        """The code of the first of ``rules`` whose bit is set: lowest set bit, word by word."""
        per_word = []
        for w, name in enumerate(self.hit_columns):
            mine = [r for r in rules if r.word == w]
            if not mine:
                continue
            tz = (pl.col(name) & self._bits(mine, w)).bitwise_trailing_zeros()
            per_word.append(
                tz.replace_strict(
                    [r.bit % WORD_BITS for r in mine],
                    [r.reason.code for r in mine],
                    default=None,
                    return_dtype=pl.String,
                )
            )
        return pl.coalesce(per_word)

    def _reason_codes_polars(self) -> pl.Expr:
        items = [
            pl.when((pl.col(self.hit_columns[r.word]) & r.mask) != 0).then(pl.lit(r.reason.code))
            for r in self.rules
        ]
        codes = pl.concat_list(items).list.drop_nulls()
        if len({r.reason.code for r in self.rules}) < len(self.rules):
            codes = codes.list.unique(maintain_order=True)
        return codes.alias("reason_codes")

    # ------------------------------------------------------------------ one row
    def evaluate_one(self, facts: Mapping[str, Any]) -> Outcome:
        """Decide one row with the same trees, compiled to Python closures (no frame)."""
        if self._py is None:
            self._py = _PythonPlan(self)
        return self._py.evaluate(facts)

    def evaluate_one_polars(self, facts: Mapping[str, Any]) -> Outcome:
        """:meth:`evaluate_one` through :meth:`apply` on a one-row frame (slower; for comparison)."""
        row = _PythonPlan.prepare(self, facts)
        frame = pl.DataFrame(
            {name: [row[name]] for name in self.input_types},
            schema={name: pb.DTYPES[t] for name, t in self.input_types.items()},
        )
        out = self.apply(frame).collect().row(0, named=True)
        masks = tuple(int(out[name]) for name in self.hit_columns)
        return _outcome(
            self,
            out["outcome"],
            out["reason_code"],
            masks,
            {n: out[n] for n, _ in self.variables},
            out["grade"],
            out["limit"],
            out["expires_on"],
        )

    # ------------------------------------------------------------------ Spark
    def spark_columns(self, *, reason_codes: bool = False) -> list[tuple[str, str]]:
        """(column, Spark SQL expression) pairs, to be added in order.

        Each expression reads input columns and the columns of the pairs before it. Apply them
        with ``df.withColumn(name, F.expr(sql))`` one after another, or with :meth:`apply_spark`.
        """
        inputs = self.input_types
        inline = {_GRADE: self.grade_node, _LIMIT: self.limit_node}

        def sql(node: Node) -> exp.Expression:
            return sb.compile_node(node, inputs, inline)

        out: list[tuple[str, str]] = [(name, sb.to_sql(sql(node))) for name, node in self.variables]
        for w, name in enumerate(self.hit_columns):
            terms: list[exp.Expression] = [
                exp.Case(
                    ifs=[exp.If(this=sql(r.condition), true=exp.Literal.number(f"{r.mask}L"))],
                    default=exp.Literal.number("0L"),
                )
                for r in self.rules
                if r.word == w
            ]
            total: exp.Expression = terms[0] if terms else exp.Literal.number("0L")
            for term in terms[1:]:
                total = exp.Add(this=total, expression=term)
            out.append((name, sb.to_sql(total)))

        def has(rules: Sequence[PlanRule]) -> exp.Expression:
            tests: list[exp.Expression] = [
                exp.NEQ(
                    this=exp.Paren(
                        this=exp.BitwiseAnd(
                            this=exp.column(col, quoted=True), expression=exp.Literal.number(f"{bits}L")
                        )
                    ),
                    expression=exp.Literal.number("0L"),
                )
                for w, col in enumerate(self.hit_columns)
                if (bits := self._bits(rules, w))
            ]
            result = tests[0]
            for t in tests[1:]:
                result = exp.Or(this=result, expression=t)
            return result

        ifs, code_ifs = [], []
        for label, rules in self._severities():
            if rules:
                ifs.append(exp.If(this=has(rules), true=exp.Literal.string(label)))
                code_ifs += [exp.If(this=has([r]), true=exp.Literal.string(r.reason.code)) for r in rules]
        positive = exp.Literal.string(self.kind.positive)
        out.append(("outcome", sb.to_sql(exp.Case(ifs=ifs, default=positive) if ifs else positive)))
        null_text = exp.Cast(this=exp.Null(), to=exp.DataType.build("STRING"))
        out.append(
            ("reason_code", sb.to_sql(exp.Case(ifs=code_ifs, default=null_text) if code_ifs else null_text))
        )
        offered = exp.NEQ(
            this=exp.column("outcome", quoted=True),
            expression=exp.Literal.string(self.kind.hard_action.outcome or ""),
        )

        def when_offered(value: exp.Expression, t: str) -> str:
            return sb.to_sql(
                exp.Case(
                    ifs=[exp.If(this=offered, true=value)],
                    default=exp.Cast(this=exp.Null(), to=exp.DataType.build(t)),
                )
            )

        out.append(("grade", when_offered(sql(self.grade_node), "STRING")))
        out.append(
            (
                "limit",
                when_offered(exp.Cast(this=sql(self.limit_node), to=exp.DataType.build("BIGINT")), "BIGINT"),
            )
        )
        price = exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=exp.column("grade", quoted=True), expression=exp.Literal.string(g)),
                    true=sb.compile_node(Lit(float(p), Type.NUMBER), inputs),
                )
                for g, p in self.prices.items()
            ],
            default=exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE")),
        )
        out.append(("price", sb.to_sql(price)))
        if self.expiry_days is not None:
            out.append(("expires_on", when_offered(sql(_add_days(self.expiry_days)), "DATE")))
        else:
            out.append(("expires_on", "CAST(NULL AS DATE)"))
        if reason_codes:
            items = ", ".join(
                sb.to_sql(exp.Case(ifs=[exp.If(this=has([r]), true=exp.Literal.string(r.reason.code))]))
                for r in self.rules
            )
            out.append(("reason_codes", f"array_distinct(filter(array({items}), x -> x IS NOT NULL))"))
        return out

    def apply_spark(self, df: Any, *, reason_codes: bool = False) -> Any:
        """Add :meth:`spark_columns` to a Spark DataFrame (in as few projections as their
        dependencies allow, see :func:`backends.spark.project`)."""
        return sb.project(df, self.spark_columns(reason_codes=reason_codes))


def _add_days(days: int | None) -> Node:
    return Call(Op.ADD_DAYS, (Col(AS_OF, Type.DATE), Lit(float(days or 0), Type.NUMBER)), Type.DATE)


def _layers(variables: Sequence[tuple[str, Node]]) -> list[list[tuple[str, Node]]]:
    """Group variables so that each group reads only columns made before it."""
    layers: list[list[tuple[str, Node]]] = []
    made: dict[str, int] = {}
    for name, node in variables:
        depth = max((made[c] + 1 for c in columns(node) if c in made), default=0)
        made[name] = depth
        while len(layers) <= depth:
            layers.append([])
        layers[depth].append((name, node))
    return layers


# ---------------------------------------------------------------------- one row, in Python


class _PythonPlan:
    """The plan's trees compiled to closures once, then run per row."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.converters = _converters(plan)
        self.variables = [(name, py.compile_node(node)) for name, node in plan.variables]
        self.grade = py.compile_node(plan.grade_node)
        self.limit = py.compile_node(plan.limit_node)
        self.rules = [(r.word, r.mask, py.compile_node(r.condition)) for r in plan.rules]
        self.severities = [
            (label, [(r.word, r.mask, r.reason.code) for r in rules]) for label, rules in plan._severities()
        ]
        self.expiry = py.compile_node(_add_days(plan.expiry_days)) if plan.expiry_days is not None else None
        self.hard = plan.kind.hard_action.outcome
        self.positive = plan.kind.positive
        self.words = plan.words

    @staticmethod
    def prepare(plan: Plan, facts: Mapping[str, Any]) -> dict[str, Any]:
        return _prepare(plan, _converters(plan), facts)

    def evaluate(self, facts: Mapping[str, Any]) -> Outcome:
        plan = self.plan
        row = _prepare(plan, self.converters, facts)
        for name, fn in self.variables:
            row[name] = fn(row)
        row[_GRADE] = self.grade(row)
        row[_LIMIT] = self.limit(row)
        masks = [0] * self.words
        for word, mask, cond in self.rules:
            if cond(row) is True:
                masks[word] |= mask
        outcome = self.positive
        code = None
        for label, rules in self.severities:
            for word, mask, reason in rules:
                if masks[word] & mask:
                    outcome, code = label, reason
                    break
            if code is not None:
                break
        offered = outcome != self.hard
        limit = row[_LIMIT]
        return _outcome(
            plan,
            outcome,
            code,
            tuple(masks),
            {name: row[name] for name, _ in self.variables},
            row[_GRADE] if offered else None,
            int(limit) if offered and limit is not None else None,
            self.expiry(row) if self.expiry is not None and offered else None,
        )


class _BadFact(ValueError):
    pass


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if value is None:
        return None
    if kind is not bool and isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    raise _BadFact(f"expected a number, got {kind.__name__}")


def _text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value  # type: ignore[no-any-return]
    raise _BadFact(f"expected text, got {type(value).__name__}")


def _truth(value: Any) -> bool | None:
    if value is None or type(value) is bool:
        return value  # type: ignore[no-any-return]
    raise _BadFact(f"expected true/false, got {type(value).__name__}")


def _day(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _BadFact(f"{value!r} is not a date (YYYY-MM-DD)") from None
    raise _BadFact(f"expected a date, got {type(value).__name__}")


_CONVERTERS: dict[Type, Any] = {Type.NUMBER: _number, Type.STRING: _text, Type.BOOL: _truth, Type.DATE: _day}


def _converters(plan: Plan) -> list[tuple[str, Any, Type]]:
    return [(name, _CONVERTERS[t], t) for name, t in plan.input_types.items()]


def _prepare(
    plan: Plan, converters: Sequence[tuple[str, Any, Type]], facts: Mapping[str, Any]
) -> dict[str, Any]:
    """The row of input values in the strategy's types; every missing or mistyped fact is named."""
    row: dict[str, Any] = {}
    problems: list[str] = []
    for name, convert, t in converters:
        if name not in facts:
            problems.append(f"{name} ({t.value}) is missing")
            continue
        try:
            row[name] = convert(facts[name])
        except _BadFact as bad:
            problems.append(f"{name}: {bad}")
    if problems:
        raise FactsError(problems, strategy=plan.strategy.label)
    return row


def _outcome(
    plan: Plan,
    outcome: str,
    code: str | None,
    masks: tuple[int, ...],
    variables: dict[str, Any],
    grade: str | None,
    limit: int | None,
    expires: date | None,
) -> Outcome:
    hit_rules = plan.decode(masks)
    reasons: dict[str, Reason] = {}
    for r in hit_rules:
        reasons.setdefault(r.reason.code, r.reason)
    return Outcome(
        outcome=outcome,
        reason_code=code,
        reasons=tuple(reasons.values()),
        hits=tuple(RuleHit(r.id, r.stage, r.action, r.reason) for r in hit_rules),
        hit_mask=masks,
        variables=variables,
        grade=grade,
        limit=None if limit is None else Decimal(limit),
        price=plan.prices.get(grade) if grade is not None else None,
        expires_on=expires,
        strategy=plan.strategy.label,
        fingerprint=plan.strategy.fingerprint,
    )


# ---------------------------------------------------------------------- building


def _limit_node(limit: Limit, formula: Node, caps: Sequence[Node]) -> Node:
    """The limit in whole yuan: LEAST(formula, caps…, max), NULL if any part is NULL, then kept
    at -1 or more (NULL becomes -1: below every minimum), rounded to the fen and to the multiple."""
    n = Type.NUMBER
    assert limit.maximum is not None
    parts = [formula, *caps]
    any_null: Node = Call(Op.IS_NULL, (parts[0],), Type.BOOL)
    for part in parts[1:]:
        any_null = Call(Op.OR, (any_null, Call(Op.IS_NULL, (part,), Type.BOOL)), Type.BOOL)
    least = Call(Op.LEAST, (*parts, Lit(float(limit.maximum), n)), n)
    raw = Call(Op.CASE, (any_null, Lit(None, n), least), n)
    kept = Call(Op.GREATEST, (raw, Lit(-1.0, n)), n)
    return Call(
        Op.ROUND_MULTIPLE,
        (kept, Lit(float(limit.multiple), n), Lit(limit.rounding.value, Type.STRING)),
        n,
    )


def build(analysis: Analysis) -> Plan:
    """The plan of a strategy that passed every check."""
    s = analysis.strategy
    assert s.kind is not None and s.grades is not None and s.limit is not None
    kind = s.kind
    rules: list[PlanRule] = []
    for rule, node in analysis.rules:
        assert rule.action is not None and rule.reason is not None and rule.when is not None
        rules.append(
            PlanRule(
                len(rules), rule.id, rule.stage, rule.action, rule.reason, node, rule.when.text, rule.line
            )
        )
    seg = Col(s.segment_column, Type.STRING)
    if s.cutoffs is not None:
        c = s.cutoffs
        assert analysis.cutoff_column is not None and c.reason is not None
        args: list[Node] = []
        for segment, value in c.segments.items():
            args += [Call(Op.EQ, (seg, Lit(segment, Type.STRING)), Type.BOOL), Lit(value, Type.NUMBER)]
        threshold = Call(Op.CASE, (*args, Lit(None, Type.NUMBER)), Type.NUMBER)
        op = Op.GE if c.direction == "at_least" else Op.LE
        passes = Call(op, (analysis.cutoff_column, threshold), Type.BOOL)
        sign = ">=" if op is Op.GE else "<="
        rules.append(
            PlanRule(
                len(rules),
                "cutoffs",
                "cutoffs",
                c.action or kind.hard_action,
                c.reason,
                Call(Op.NOT, (is_true(passes),), Type.BOOL),
                f"NOT ({c.column} {sign} the cut-off of the {s.segment_column})",
                c.line,
                added=True,
            )
        )
    g = s.grades
    assert analysis.grade_column is not None and g.reason is not None
    branches: list[Node] = []
    for band in g.bands:
        tests: list[Node] = []
        if band.lower is not None:
            tests.append(Call(Op.GE, (analysis.grade_column, Lit(band.lower, Type.NUMBER)), Type.BOOL))
        if band.upper is not None:
            tests.append(Call(Op.LT, (analysis.grade_column, Lit(band.upper, Type.NUMBER)), Type.BOOL))
        cond: Node = (
            tests[0]
            if tests
            else Call(Op.NOT, (Call(Op.IS_NULL, (analysis.grade_column,), Type.BOOL),), Type.BOOL)
        )
        for t in tests[1:]:
            cond = Call(Op.AND, (cond, t), Type.BOOL)
        branches += [cond, Lit(band.grade, Type.STRING)]
    grade_node = Call(Op.CASE, (*branches, Lit(None, Type.STRING)), Type.STRING)
    rules.append(
        PlanRule(
            len(rules),
            "grades",
            "grades",
            g.action or kind.hard_action,
            g.reason,
            Call(Op.IS_NULL, (Col(_GRADE, Type.STRING),), Type.BOOL),
            f"{g.column} in no grade band",
            g.line,
            added=True,
        )
    )
    lim = s.limit
    assert analysis.limit_formula is not None and lim.reason is not None
    limit_node = _limit_node(lim, analysis.limit_formula, analysis.limit_caps)
    at_least_min = Call(Op.GE, (Col(_LIMIT, Type.NUMBER), Lit(float(lim.minimum), Type.NUMBER)), Type.BOOL)
    rules.append(
        PlanRule(
            len(rules),
            "limit",
            "limit",
            lim.action or kind.hard_action,
            lim.reason,
            Call(Op.NOT, (is_true(at_least_min),), Type.BOOL),
            f"limit below {lim.minimum} (or unknown)",
            lim.line,
            added=True,
        )
    )
    produced = {name for name, _ in analysis.variables} | {_GRADE, _LIMIT}
    used: dict[str, None] = {}
    nodes = [n for _, n in analysis.variables] + [r.condition for r in rules] + [grade_node, limit_node]
    for node in nodes:
        for name in columns(node):
            if name not in produced:
                used.setdefault(name, None)
    if s.expiry_days is not None:
        used.setdefault(AS_OF, None)
    env = analysis.env
    input_types = {name: t for name in used if (t := env.get(name)) is not None}
    return Plan(
        strategy=s,
        kind=kind,
        model_refs={m.segment: (m.name, m.version) for m in s.models},
        input_types=input_types,
        variables=tuple(analysis.variables),
        rules=tuple(rules),
        grade_node=grade_node,
        limit_node=limit_node,
        prices=dict(s.price),
        expiry_days=s.expiry_days,
    )
