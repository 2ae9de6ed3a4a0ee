"""Check a strategy against a feature schema, collecting every problem.

:func:`analyse` parses and types every expression (variables in order, so a later one may use an
earlier one), then checks the strategy as a whole: rule ids, actions allowed for the kind,
reason codes, unreachable rules, cut-offs against the model segments, grade bands for overlaps
and gaps, the limit's arithmetic, prices and expiry. It returns the problems together with the
typed trees, which :mod:`creditfactory.strategy.plan` compiles when there are no problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from creditfactory.strategy import ir
from creditfactory.strategy.backends.python import compile_node
from creditfactory.strategy.errors import Problem
from creditfactory.strategy.ir import Node, Type
from creditfactory.strategy.spec import Action, Band, Kind, Reason, Rule, SqlText, Strategy
from creditfactory.strategy.sql import lower

__all__ = ["OUTPUT_COLUMNS", "SCORE_COLUMNS", "Analysis", "analyse", "schema_types"]

#: Columns the caller fills with model outputs before the plan runs.
SCORE_COLUMNS: dict[str, Type] = {"score": Type.NUMBER, "pd": Type.NUMBER}

#: Columns a plan adds to a frame (``hit_mask_2`` … follow when there are more than 63 rules).
OUTPUT_COLUMNS = (
    "hit_mask",
    "outcome",
    "reason_code",
    "reason_codes",
    "grade",
    "limit",
    "price",
    "expires_on",
)
_OUTPUT_PATTERN = re.compile(r"^(hit_mask(_\d+)?|outcome|reason_codes?|grade|limit|price|expires_on)$")

#: The date column an offer's expiry counts from.
AS_OF = "as_of"


@dataclass
class Analysis:
    strategy: Strategy
    schema: dict[str, Type]
    problems: list[Problem] = field(default_factory=list)
    env: dict[str, Type | None] = field(default_factory=dict)
    variables: list[tuple[str, Node]] = field(default_factory=list)
    rules: list[tuple[Rule, Node]] = field(default_factory=list)
    cutoff_column: Node | None = None
    grade_column: Node | None = None
    limit_formula: Node | None = None
    limit_caps: list[Node] = field(default_factory=list)


def schema_types(schema: Mapping[str, str], *, file: str = "schema") -> tuple[dict[str, Type], list[Problem]]:
    """Validate a ``column -> number|string|bool|date`` mapping."""
    out: dict[str, Type] = {}
    problems = []
    allowed = ("number", "string", "bool", "date")
    for column, kind in schema.items():
        if kind not in allowed:
            problems.append(
                Problem(
                    file,
                    None,
                    None,
                    column,
                    "bad_schema",
                    f"schema: column {column} has type {kind!r}; use one of {', '.join(allowed)}",
                )
            )
            continue
        out[column] = Type(kind)
    return out, problems


class _Checker:
    def __init__(self, strategy: Strategy, schema: dict[str, Type]) -> None:
        self.s = strategy
        self.a = Analysis(strategy, schema)
        self.a.problems.extend(strategy.problems)
        self.a.env = {**SCORE_COLUMNS, **schema}

    def problem(
        self, line: int | None, code: str, message: str, *, rule: str | None = None, column: str | None = None
    ) -> None:
        self.a.problems.append(Problem(self.s.source, line, rule, column, code, message))

    def expr(
        self, sql: SqlText | None, where: str, want: Type | None, *, rule: str | None = None
    ) -> Node | None:
        """Lower one expression; report its issues under ``where`` (and ``rule``); check its type."""
        if sql is None:
            return None
        rule = rule or where
        node, issues = lower(sql.text, self.a.env)
        for issue in issues:
            line = sql.line + issue.line_offset if sql.block else sql.line
            self.problem(line, issue.code, f"{where}: {issue.message}", rule=rule, column=issue.column)
        if node is None:
            return None
        if want is not None and node.type not in (want, Type.NULL):
            code = "not_boolean" if want == Type.BOOL else "not_numeric"
            noun = "a condition" if want == Type.BOOL else "a number"
            self.problem(
                sql.line,
                code,
                f"{where}: {sql.text!r} must give {noun}, but it gives {node.type.value}",
                rule=rule,
                column=ir.columns(node)[0] if ir.columns(node) else None,
            )
            return None
        return node

    def numeric_column(self, name: str, where: str, line: int) -> Node | None:
        t = self.a.env.get(name)
        if name not in self.a.env:
            self.problem(line, "unknown_column", f"{where}: unknown column {name}", rule=where, column=name)
            return None
        if t is None:
            return None
        if t != Type.NUMBER:
            self.problem(
                line,
                "not_numeric",
                f"{where}: column {name} is {t.value}, not a number",
                rule=where,
                column=name,
            )
            return None
        return ir.Col(name, t)

    # ---------------------------------------------------------------- sections
    def run(self) -> Analysis:
        self.header()
        self.variables()
        self.rules()
        self.reasons()
        self.cutoffs()
        self.grades()
        self.limit()
        self.price()
        self.expiry()
        return self.a

    def header(self) -> None:
        seg = self.s.segment_column
        t = self.a.env.get(seg)
        line = self.s.lines.get("segment_column", self.s.lines.get("models"))
        if seg not in self.a.env:
            self.problem(line, "unknown_column", f"segment column {seg} is not in the schema", column=seg)
        elif t != Type.STRING:
            self.problem(line, "type_mismatch", f"segment column {seg} must be text, not {t}", column=seg)
        for column, t2 in SCORE_COLUMNS.items():
            if self.a.schema.get(column, t2) != t2:
                self.problem(
                    None,
                    "bad_schema",
                    f"column {column} holds model output and must be a number",
                    column=column,
                )
        seen: dict[str, int] = {}
        for model in self.s.models:
            if model.segment in seen:
                self.problem(model.line, "duplicate_id", f"models: segment {model.segment} named twice")
            seen[model.segment] = model.line

    def variables(self) -> None:
        for var in self.s.variables:
            where = f"variables.{var.name}"
            if var.name in self.a.env:
                what = "a model output" if var.name in SCORE_COLUMNS else "a schema column"
                if any(v.name == var.name for v in self.s.variables[: self.s.variables.index(var)]):
                    what = "another variable"
                self.problem(
                    var.line,
                    "duplicate_id",
                    f"variable {var.name} has the name of {what}; choose another name",
                    rule=where,
                    column=var.name,
                )
                continue
            if _OUTPUT_PATTERN.match(var.name):
                self.problem(
                    var.line,
                    "duplicate_id",
                    f"variable {var.name} has the name of an outcome column; choose another name",
                    rule=where,
                    column=var.name,
                )
                continue
            node = self.expr(var.expr, where, None)
            if node is not None and node.type == Type.NULL:
                self.problem(
                    var.line, "type_mismatch", f"{where} is always NULL", rule=where, column=var.name
                )
                node = None
            self.a.env[var.name] = node.type if node is not None else None
            if node is not None:
                self.a.variables.append((var.name, node))

    def rules(self) -> None:
        kind = self.s.kind
        seen: dict[str, int] = {}
        stopper: Rule | None = None
        refer_stopper: Rule | None = None
        for rule in self.s.rules:
            where = rule.id or f"rules.{rule.stage}"
            if rule.id:
                if rule.id in seen:
                    self.problem(
                        rule.line,
                        "duplicate_id",
                        f"rule id {rule.id} is used twice (first on line {seen[rule.id]})",
                        rule=rule.id,
                    )
                else:
                    seen[rule.id] = rule.line
                if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", rule.id):
                    self.problem(
                        rule.line, "bad_name", f"rule id {rule.id!r}: use letters, digits and _", rule=rule.id
                    )
            if kind is not None and rule.action is not None and rule.action not in kind.actions:
                self.problem(
                    rule.line,
                    "wrong_action",
                    f"rule {where}: action {rule.action.value} is not for a {kind.value} strategy "
                    f"(use {', '.join(a.value for a in kind.actions)})",
                    rule=where,
                )
            node = self.expr(rule.when, f"rule {where}", Type.BOOL, rule=where)
            if stopper is not None:
                self.problem(
                    rule.line,
                    "unreachable_rule",
                    f"rule {where} can never decide: rule {stopper.id} before it always fires",
                    rule=where,
                )
            elif refer_stopper is not None and rule.action is Action.REFER:
                self.problem(
                    rule.line,
                    "unreachable_rule",
                    f"rule {where} can never decide: refer rule {refer_stopper.id} before it always fires",
                    rule=where,
                )
            if node is None:
                continue
            constant = _constant(node)
            if constant is not _NOT_CONSTANT:
                if constant is True:
                    if rule.action in (Action.EXCLUDE, Action.DECLINE):
                        stopper = stopper or rule
                    elif rule.action is Action.REFER:
                        refer_stopper = refer_stopper or rule
                else:
                    self.problem(
                        rule.line,
                        "never_fires",
                        f"rule {where}: {rule.when.text if rule.when else ''!r} is never TRUE",
                        rule=where,
                    )
            if rule.action is not None and rule.reason is not None:
                self.a.rules.append((rule, node))

    def reasons(self) -> None:
        """One code, one text: the same reason code may serve several rules only with the same words."""
        found: dict[str, tuple[Reason, str]] = {}
        for where, reason, line in self._all_reasons():
            if reason is None:
                continue
            first = found.get(reason.code)
            if first is None:
                found[reason.code] = (reason, where)
            elif (first[0].en, first[0].zh) != (reason.en, reason.zh):
                self.problem(
                    line,
                    "reason_conflict",
                    f"{where}: reason code {reason.code} has a different text than in {first[1]}",
                    rule=where,
                )

    def _all_reasons(self) -> list[tuple[str, Reason | None, int]]:
        out = [(r.id, r.reason, r.line) for r in self.s.rules]
        for section, part in (
            ("cutoffs", self.s.cutoffs),
            ("grades", self.s.grades),
            ("limit", self.s.limit),
        ):
            if part is not None:
                out.append((section, part.reason, part.line))
        return out

    def _section_action(self, action: Action | None, where: str, line: int) -> None:
        kind = self.s.kind
        if action is None or kind is None:
            return
        if action not in (kind.hard_action, Action.REFER) or action not in kind.actions:
            allowed = [kind.hard_action.value] + (["refer"] if kind is Kind.DECISION else [])
            self.problem(
                line,
                "wrong_action",
                f"{where}: action {action.value} is not allowed here (use {' or '.join(allowed)})",
                rule=where,
            )

    def cutoffs(self) -> None:
        c = self.s.cutoffs
        segments = {m.segment for m in self.s.models}
        if c is None:
            return
        self.a.cutoff_column = self.numeric_column(c.column, "cutoffs", c.line)
        self._section_action(c.action, "cutoffs", c.line)
        for segment, line in c.segment_lines.items():
            if segment not in segments:
                self.problem(
                    line,
                    "unknown_segment",
                    f"cutoffs: segment {segment} has no model (segments: {', '.join(sorted(segments)) or 'none'})",
                    rule="cutoffs",
                    column=self.s.segment_column,
                )
        for segment in sorted(segments - set(c.segments)):
            self.problem(
                c.line,
                "missing_cutoff",
                f"cutoffs: no cut-off for segment {segment}",
                rule="cutoffs",
                column=self.s.segment_column,
            )

    def grades(self) -> None:
        g = self.s.grades
        if g is None:
            return
        self.a.grade_column = self.numeric_column(g.column, "grades", g.line)
        self._section_action(g.action, "grades", g.line)
        names: dict[str, int] = {}
        for band in g.bands:
            if band.grade in names:
                self.problem(
                    band.line, "duplicate_id", f"grades: grade {band.grade} appears twice", rule="grades"
                )
            names[band.grade] = band.line
            if band.lower is not None and band.upper is not None and band.lower >= band.upper:
                self.problem(
                    band.line,
                    "empty_band",
                    f"grades: band {band.grade} runs from {_n(band.lower)} to {_n(band.upper)}: "
                    "'from' must be below 'to'",
                    rule="grades",
                )
        ordered = sorted(g.bands, key=lambda b: -float("inf") if b.lower is None else b.lower)
        for below, above in zip(ordered, ordered[1:], strict=False):
            self._adjacent(below, above)

    def _adjacent(self, below: Band, above: Band) -> None:
        top = float("inf") if below.upper is None else below.upper
        bottom = -float("inf") if above.lower is None else above.lower
        if top > bottom:
            self.problem(
                above.line,
                "grade_overlap",
                f"grades: bands {below.grade} ({_span(below)}) and {above.grade} ({_span(above)}) overlap",
                rule="grades",
            )
        elif top < bottom:
            self.problem(
                above.line,
                "grade_gap",
                f"grades: no band covers {_n(top)} to {_n(bottom)} (between {below.grade} and {above.grade})",
                rule="grades",
            )

    def limit(self) -> None:
        lim = self.s.limit
        if lim is None:
            return
        self._section_action(lim.action, "limit", lim.line)
        self.a.limit_formula = self.expr(lim.formula, "limit.formula", Type.NUMBER)
        for n, cap in enumerate(lim.caps, start=1):
            node = self.expr(cap, f"limit.caps[{n}]", Type.NUMBER)
            if node is not None:
                self.a.limit_caps.append(node)
        line = lim.lines.get("min", lim.line)
        if lim.minimum < 0:
            self.problem(line, "bad_value", "limit.min must not be negative", rule="limit")
        if lim.maximum is not None and lim.maximum < lim.minimum:
            self.problem(
                lim.lines.get("max", lim.line),
                "bad_value",
                f"limit.max {lim.maximum} is below limit.min {lim.minimum}",
                rule="limit",
            )
        for key, value in (("min", lim.minimum), ("max", lim.maximum)):
            if value is not None and value % lim.multiple != 0:
                self.problem(
                    lim.lines.get(key, lim.line),
                    "bad_value",
                    f"limit.{key} {value} is not a multiple of limit.multiple {lim.multiple}",
                    rule="limit",
                )

    def price(self) -> None:
        grades = {b.grade for b in self.s.grades.bands} if self.s.grades else set()
        for grade, rate in self.s.price.items():
            line = self.s.price_lines.get(grade)
            if self.s.grades is not None and grade not in grades:
                self.problem(
                    line, "unknown_grade", f"price: grade {grade} is not in the grades table", rule="price"
                )
            if not 0 <= rate < 1:
                self.problem(
                    line,
                    "bad_value",
                    f"price.{grade}: {rate} is not an annual rate as a fraction (e.g. 0.0435 for 4.35%)",
                    rule="price",
                )
        for grade in sorted(grades - set(self.s.price)):
            self.problem(
                self.s.lines.get("price"), "missing_price", f"price: grade {grade} has no price", rule="price"
            )

    def expiry(self) -> None:
        if self.s.expiry_days is None:
            return
        t = self.a.env.get(AS_OF)
        if t != Type.DATE:
            self.problem(
                self.s.lines.get("expiry_days"),
                "unknown_column" if AS_OF not in self.a.env else "type_mismatch",
                f"expiry_days counts from the {AS_OF} column, which must be a date column in the schema",
                rule="expiry_days",
                column=AS_OF,
            )


_NOT_CONSTANT = object()


def _constant(node: Node) -> object:
    """The value of an expression that reads no column (TRUE, FALSE or None), else a marker."""
    if ir.columns(node):
        return _NOT_CONSTANT
    return compile_node(node)({})


def _n(x: float) -> str:
    return "−∞" if x == -float("inf") else "+∞" if x == float("inf") else f"{x:g}"


def _span(b: Band) -> str:
    return f"{_n(-float('inf') if b.lower is None else b.lower)} to {_n(float('inf') if b.upper is None else b.upper)}"


def analyse(strategy: Strategy, schema: Mapping[str, str]) -> Analysis:
    """Type every expression of ``strategy`` against ``schema`` and check the whole."""
    types, problems = schema_types(schema)
    checker = _Checker(strategy, types)
    checker.a.problems.extend(problems)
    for p in problems:  # known but unusable: expressions reading them are not reported again
        if p.column is not None:
            checker.a.env[p.column] = None
    return checker.run()
