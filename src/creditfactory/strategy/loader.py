"""Read a strategy file (YAML) into a :class:`~creditfactory.strategy.spec.Strategy`.

The YAML is composed into nodes first so that every value keeps its line. Reading never stops at
the first problem: a missing field, an unknown field (a typo such as ``cutofs``), a value of the
wrong kind or a key given twice is recorded as a :class:`Problem` and reading goes on, so that
one run reports everything. SQL stays text here; it is parsed by the checker.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from creditfactory.money import to_decimal
from creditfactory.strategy.errors import Problem, StrategyError
from creditfactory.strategy.spec import (
    Action,
    Band,
    Cutoffs,
    Grades,
    Kind,
    Limit,
    ModelRef,
    Reason,
    Rounding,
    Rule,
    SqlText,
    Stage,
    Strategy,
    Variable,
)

__all__ = ["load", "read_source"]

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class _Y:
    """A YAML value with its line: a dict of ``_Y``, a list of ``_Y``, or a scalar with its text."""

    value: Any
    line: int
    text: str | None = None
    block: bool = False


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    # ---------------------------------------------------------------- problems
    def problem(
        self, line: int | None, code: str, message: str, *, rule: str | None = None, column: str | None = None
    ) -> None:
        self.problems.append(Problem(self.file, line, rule, column, code, message))

    # ---------------------------------------------------------------- YAML nodes
    def node(self, node: Node) -> _Y:
        line = node.start_mark.line + 1
        if isinstance(node, MappingNode):
            out: dict[str, _Y] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
                if key in out:
                    self.problem(
                        key_node.start_mark.line + 1,
                        "duplicate_key",
                        f"key {key!r} appears twice (first on line {out[key].line}); YAML keeps only the last",
                        rule=key,
                    )
                out[key] = self.node(value_node)
                if key_node.start_mark.line + 1 != out[key].line and not isinstance(value_node, ScalarNode):
                    out[key] = _Y(out[key].value, key_node.start_mark.line + 1, out[key].text)
            return _Y(out, line)
        if isinstance(node, SequenceNode):
            return _Y([self.node(item) for item in node.value], line)
        assert isinstance(node, ScalarNode)
        value = self._constructor.construct_object(node, deep=True)
        block = node.style in ("|", ">")
        return _Y(value, line + (1 if block else 0), str(node.value), block)

    # ---------------------------------------------------------------- field readers
    def mapping(self, y: _Y | None, where: str, *, required: bool = True, line: int = 1) -> dict[str, _Y]:
        if y is None:
            if required:
                self.problem(line, "missing_field", f"{where} is required", rule=where)
            return {}
        if not isinstance(y.value, dict):
            self.problem(y.line, "bad_value", f"{where} must be a mapping (key: value lines)", rule=where)
            return {}
        return y.value  # type: ignore[no-any-return]

    def known(self, m: dict[str, _Y], allowed: tuple[str, ...], where: str) -> None:
        for key, y in m.items():
            if key not in allowed:
                self.problem(
                    y.line,
                    "unknown_field",
                    f"{where}: unknown field {key!r} (allowed: {', '.join(allowed)})",
                    rule=where,
                )

    def text(
        self, m: dict[str, _Y], key: str, where: str, *, line: int, required: bool = True, default: str = ""
    ) -> str:
        y = m.get(key)
        if y is None or y.value is None:
            if required:
                self.problem(
                    y.line if y else line, "missing_field", f"{where}: {key} is required", rule=where
                )
            return default
        if isinstance(y.value, dict | list):
            self.problem(y.line, "bad_value", f"{where}: {key} must be text", rule=where)
            return default
        value = y.text if y.text is not None else str(y.value)
        if required and not value.strip():
            self.problem(y.line, "missing_field", f"{where}: {key} is empty", rule=where)
        return value.strip()

    def integer(
        self, m: dict[str, _Y], key: str, where: str, *, line: int, required: bool, minimum: int = 1
    ) -> int | None:
        y = m.get(key)
        if y is None or y.value is None:
            if required:
                self.problem(
                    y.line if y else line, "missing_field", f"{where}: {key} is required", rule=where
                )
            return None
        if isinstance(y.value, bool) or not isinstance(y.value, int) or y.value < minimum:
            self.problem(
                y.line,
                "bad_value",
                f"{where}: {key} must be a whole number >= {minimum}, got {y.text}",
                rule=where,
            )
            return None
        return int(y.value)

    def number(self, y: _Y, where: str) -> float | None:
        if isinstance(y.value, bool) or not isinstance(y.value, int | float):
            self.problem(
                y.line, "bad_value", f"{where} must be a number, got {y.text or y.value!r}", rule=where
            )
            return None
        return float(y.value)

    def decimal(self, y: _Y | None, where: str, *, line: int, required: bool) -> Decimal | None:
        if y is None or y.value is None:
            if required:
                self.problem(y.line if y else line, "missing_field", f"{where} is required", rule=where)
            return None
        if isinstance(y.value, bool) or not isinstance(y.value, int | float) or y.text is None:
            self.problem(
                y.line, "bad_value", f"{where} must be a number, got {y.text or y.value!r}", rule=where
            )
            return None
        return to_decimal(y.text.replace("_", ""))

    def sql(
        self, m: dict[str, _Y], key: str, where: str, *, line: int, required: bool = True
    ) -> SqlText | None:
        y = m.get(key)
        if y is None or y.value is None:
            if required:
                self.problem(
                    y.line if y else line, "missing_field", f"{where}: {key} is required", rule=where
                )
            return None
        if isinstance(y.value, dict | list):
            self.problem(y.line, "bad_value", f"{where}: {key} must be a SQL expression", rule=where)
            return None
        text = y.text if y.text is not None else str(y.value)
        if isinstance(y.value, bool):  # YAML true / false / yes / no
            text = "TRUE" if y.value else "FALSE"
        if not text.strip():
            self.problem(y.line, "missing_field", f"{where}: {key} is empty", rule=where)
            return None
        return SqlText(text.strip(), y.line, y.block)

    def choice(
        self,
        m: dict[str, _Y],
        key: str,
        where: str,
        options: tuple[str, ...],
        *,
        line: int,
        default: str | None,
    ) -> str | None:
        y = m.get(key)
        if y is None or y.value is None:
            if default is None:
                self.problem(line, "missing_field", f"{where}: {key} is required", rule=where)
            return default
        value = str(y.text if y.text is not None else y.value).strip()
        if value not in options:
            self.problem(
                y.line,
                "bad_value",
                f"{where}: {key} must be one of {', '.join(options)}, got {value!r}",
                rule=where,
            )
            return None
        return value

    def reason(self, m: dict[str, _Y], where: str, *, line: int) -> Reason | None:
        y = m.get("reason")
        if y is None or y.value is None:
            self.problem(line, "missing_reason", f"{where} has no reason code", rule=where)
            return None
        r = self.mapping(y, f"{where}.reason")
        if not r:
            return None
        self.known(r, ("code", "en", "zh"), f"{where}.reason")
        code = self.text(r, "code", f"{where}.reason", line=y.line)
        en = self.text(r, "en", f"{where}.reason", line=y.line)
        zh = self.text(r, "zh", f"{where}.reason", line=y.line)
        if not code:
            return None
        if not _CODE.match(code):
            self.problem(
                r["code"].line,
                "bad_reason_code",
                f"{where}: reason code {code!r} must be upper-case letters, digits and _ (e.g. X_AGE)",
                rule=where,
            )
        if not en or not zh:
            return None
        return Reason(code, en, zh)

    def action(self, m: dict[str, _Y], where: str, *, line: int, required: bool) -> Action | None:
        value = self.choice(
            m, "action", where, tuple(a.value for a in Action), line=line, default=None if required else ""
        )
        return Action(value) if value else None


def read_source(source: str | Path) -> tuple[str, str]:
    """``(file label, text)`` for a path or YAML text.

    A :class:`~pathlib.Path`, or a one-line string that ends in ``.yaml``/``.yml`` or names an
    existing file, names a file; any other string is the YAML itself.
    """
    if isinstance(source, Path) or (
        "\n" not in source and (source.strip().lower().endswith((".yaml", ".yml")) or Path(source).is_file())
    ):
        path = Path(source)
        try:
            return str(path), path.read_text(encoding="utf-8")
        except OSError as exc:
            problem = Problem(
                str(path), None, None, None, "file_unreadable", f"cannot read: {exc.strerror or exc}"
            )
            raise StrategyError([problem], source=str(path)) from None
        except UnicodeDecodeError:
            problem = Problem(str(path), None, None, None, "file_unreadable", "not UTF-8 text")
            raise StrategyError([problem], source=str(path)) from None
    return "<text>", source


def load(source: str | Path, *, strict: bool = True, label: str | None = None) -> Strategy:
    """Read a strategy from a file or from YAML text.

    With ``strict`` (the default) any problem raises :class:`StrategyError` listing all of them.
    With ``strict=False`` the strategy comes back with ``problems`` filled in (parts that could not
    be read are ``None``), for :func:`creditfactory.strategy.check` to add its own findings.
    """
    file, text = read_source(source)
    file = label or file
    reader = _Reader(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        problem = Problem(file, line, None, None, "yaml_syntax", f"not valid YAML: {reason}")
        raise StrategyError([problem], source=file) from None
    top = reader.mapping(reader.node(root) if root is not None else None, "the strategy file")
    strategy = _strategy(reader, top, text)
    if strict and strategy.problems:
        raise StrategyError(strategy.problems, source=file)
    return strategy


_TOP = (
    "name",
    "kind",
    "version",
    "description",
    "owner",
    "segment_column",
    "models",
    "variables",
    "rules",
    "cutoffs",
    "grades",
    "limit",
    "price",
    "expiry_days",
)


def _strategy(r: _Reader, top: dict[str, _Y], text: str) -> Strategy:
    r.known(top, _TOP, "strategy")
    name = r.text(top, "name", "header", line=1)
    kind_text = r.choice(top, "kind", "header", tuple(k.value for k in Kind), line=1, default=None)
    kind = Kind(kind_text) if kind_text else None
    version = r.integer(top, "version", "header", line=1, required=True)
    description = r.text(top, "description", "header", line=1)
    owner = r.text(top, "owner", "header", line=1)
    segment_column = r.text(top, "segment_column", "header", line=1, required=False, default="segment")
    lines = {key: y.line for key, y in top.items()}
    return Strategy(
        source=r.file,
        name=name,
        kind=kind,
        version=version,
        description=description,
        owner=owner,
        segment_column=segment_column,
        models=_models(r, top.get("models")),
        variables=_variables(r, top.get("variables")),
        stages=_stages(r, top.get("rules")),
        cutoffs=_cutoffs(r, top.get("cutoffs")),
        grades=_grades(r, top.get("grades")),
        limit=_limit(r, top.get("limit")),
        price=(price := _price(r, top.get("price")))[0],
        price_lines=price[1],
        expiry_days=r.integer(top, "expiry_days", "expiry_days", line=1, required=False),
        fingerprint=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        problems=tuple(r.problems),
        lines=lines,
    )


def _models(r: _Reader, y: _Y | None) -> tuple[ModelRef, ...]:
    m = r.mapping(y, "models")
    if y is not None and m == {} and isinstance(y.value, dict):
        r.problem(y.line, "missing_field", "models: name the model of at least one segment", rule="models")
    out = []
    for segment, item in m.items():
        where = f"models.{segment}"
        if isinstance(item.value, str):
            out.append(ModelRef(segment, item.value.strip(), None, item.line))
            continue
        spec = r.mapping(item, where)
        if not spec:
            continue
        r.known(spec, ("name", "version"), where)
        model = r.text(spec, "name", where, line=item.line)
        version = r.integer(spec, "version", where, line=item.line, required=False)
        if model:
            out.append(ModelRef(segment, model, version, item.line))
    return tuple(out)


def _variables(r: _Reader, y: _Y | None) -> tuple[Variable, ...]:
    m = r.mapping(y, "variables", required=False)
    out = []
    for name, item in m.items():
        where = f"variables.{name}"
        if not _NAME.match(name):
            r.problem(
                item.line, "bad_name", f"variable {name!r}: use lower-case letters, digits and _", rule=name
            )
        if isinstance(item.value, dict):
            spec = item.value
            r.known(spec, ("expr", "description"), where)
            expr = r.sql(spec, "expr", where, line=item.line)
            description = r.text(spec, "description", where, line=item.line, required=False)
        else:
            expr = r.sql({"expr": item}, "expr", where, line=item.line)
            description = ""
        out.append(Variable(name, expr, item.line, description))
    return tuple(out)


_RULE_FIELDS = ("id", "when", "action", "reason", "description")


def _stages(r: _Reader, y: _Y | None) -> tuple[Stage, ...]:
    m = r.mapping(y, "rules")
    stages = []
    for stage_name, items in m.items():
        if not isinstance(items.value, list):
            r.problem(items.line, "bad_value", f"rules.{stage_name} must be a list of rules", rule=stage_name)
            continue
        rules = []
        for n, item in enumerate(items.value, start=1):
            spec = r.mapping(item, f"rules.{stage_name}[{n}]")
            if not spec:
                continue
            rule_id = r.text(spec, "id", f"rules.{stage_name}[{n}]", line=item.line)
            where = rule_id or f"rules.{stage_name}[{n}]"
            r.known(spec, _RULE_FIELDS, where)
            rules.append(
                Rule(
                    id=rule_id,
                    stage=stage_name,
                    when=r.sql(spec, "when", where, line=item.line),
                    action=r.action(spec, where, line=item.line, required=True),
                    reason=r.reason(spec, where, line=item.line),
                    line=item.line,
                    description=r.text(spec, "description", where, line=item.line, required=False),
                )
            )
        stages.append(Stage(stage_name, tuple(rules), items.line))
    return tuple(stages)


def _cutoffs(r: _Reader, y: _Y | None) -> Cutoffs | None:
    if y is None:
        return None
    m = r.mapping(y, "cutoffs")
    if not m:
        return None
    r.known(m, ("column", "pass", "segments", "reason", "action"), "cutoffs")
    column = r.text(m, "column", "cutoffs", line=y.line, required=False, default="score")
    direction = r.choice(m, "pass", "cutoffs", ("at_least", "at_most"), line=y.line, default="at_least")
    segments: dict[str, float] = {}
    segment_lines: dict[str, int] = {}
    for segment, item in r.mapping(m.get("segments"), "cutoffs.segments", line=y.line).items():
        value = r.number(item, f"cutoffs.segments.{segment}")
        if value is not None:
            segments[segment] = value
            segment_lines[segment] = item.line
    return Cutoffs(
        column=column,
        direction=direction or "at_least",
        segments=segments,
        segment_lines=segment_lines,
        reason=r.reason(m, "cutoffs", line=y.line),
        action=r.action(m, "cutoffs", line=y.line, required=False),
        line=y.line,
    )


def _grades(r: _Reader, y: _Y | None) -> Grades | None:
    m = r.mapping(y, "grades")
    if not m:
        return None
    assert y is not None
    r.known(m, ("column", "bands", "reason", "action"), "grades")
    column = r.text(m, "column", "grades", line=y.line, required=False, default="score")
    bands = []
    raw = m.get("bands")
    if raw is None or not isinstance(raw.value, list) or not raw.value:
        r.problem(
            raw.line if raw else y.line,
            "missing_field",
            "grades: bands must list at least one band",
            rule="grades",
        )
    else:
        for n, item in enumerate(raw.value, start=1):
            where = f"grades.bands[{n}]"
            spec = r.mapping(item, where)
            if not spec:
                continue
            r.known(spec, ("grade", "from", "to"), where)
            grade = r.text(spec, "grade", where, line=item.line)
            lower = r.number(spec["from"], f"{where}.from") if "from" in spec else None
            upper = r.number(spec["to"], f"{where}.to") if "to" in spec else None
            if grade:
                bands.append(Band(grade, lower, upper, item.line))
    return Grades(
        column=column,
        bands=tuple(bands),
        reason=r.reason(m, "grades", line=y.line),
        action=r.action(m, "grades", line=y.line, required=False),
        line=y.line,
    )


def _limit(r: _Reader, y: _Y | None) -> Limit | None:
    m = r.mapping(y, "limit")
    if not m:
        return None
    assert y is not None
    r.known(m, ("formula", "caps", "max", "min", "multiple", "rounding", "reason", "action"), "limit")
    caps: list[SqlText] = []
    raw_caps = m.get("caps")
    if raw_caps is not None:
        if not isinstance(raw_caps.value, list):
            r.problem(
                raw_caps.line, "bad_value", "limit.caps must be a list of SQL expressions", rule="limit.caps"
            )
        else:
            for n, item in enumerate(raw_caps.value, start=1):
                cap = r.sql({"cap": item}, "cap", f"limit.caps[{n}]", line=item.line)
                if cap is not None:
                    caps.append(cap)
    minimum = r.decimal(m.get("min"), "limit.min", line=y.line, required=True)
    rounding = r.choice(m, "rounding", "limit", tuple(x.value for x in Rounding), line=y.line, default="down")
    return Limit(
        formula=r.sql(m, "formula", "limit", line=y.line),
        caps=tuple(caps),
        maximum=r.decimal(m.get("max"), "limit.max", line=y.line, required=True),
        minimum=minimum if minimum is not None else Decimal(0),
        multiple=r.integer(m, "multiple", "limit", line=y.line, required=False) or 1,
        rounding=Rounding(rounding or "down"),
        reason=r.reason(m, "limit", line=y.line),
        action=r.action(m, "limit", line=y.line, required=False),
        line=y.line,
        lines={key: item.line for key, item in m.items()},
    )


def _price(r: _Reader, y: _Y | None) -> tuple[dict[str, Decimal], dict[str, int]]:
    prices: dict[str, Decimal] = {}
    lines: dict[str, int] = {}
    for grade, item in r.mapping(y, "price").items():
        rate = r.decimal(item, f"price.{grade}", line=item.line, required=True)
        if rate is not None:
            prices[grade] = rate
            lines[grade] = item.line
    return prices, lines
