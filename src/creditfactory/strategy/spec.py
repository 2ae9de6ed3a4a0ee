"""What a strategy file says, as frozen values with the YAML line of every part.

:func:`creditfactory.strategy.load` builds a :class:`Strategy`; nothing here parses SQL or knows a
schema. Expressions stay text (:class:`SqlText`) until :mod:`creditfactory.strategy.checker`
parses and types them. Parts that could not be read are ``None`` and the reason is in
``Strategy.problems``, so that checking can still report everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from creditfactory.strategy.errors import Problem

__all__ = [
    "Action",
    "Band",
    "Cutoffs",
    "Grades",
    "Kind",
    "Limit",
    "ModelRef",
    "Reason",
    "Rounding",
    "Rule",
    "SqlText",
    "Stage",
    "Strategy",
    "Variable",
]


class Kind(StrEnum):
    """A mining strategy builds the whitelist; a decision strategy decides one application."""

    MINING = "mining"
    DECISION = "decision"

    @property
    def actions(self) -> tuple[Action, ...]:
        """The rule actions this kind of strategy allows."""
        if self is Kind.MINING:
            return (Action.EXCLUDE, Action.FLAG)
        return (Action.DECLINE, Action.REFER, Action.FLAG)

    @property
    def hard_action(self) -> Action:
        """The action that ends the road: ``exclude`` for mining, ``decline`` for decisions."""
        return Action.EXCLUDE if self is Kind.MINING else Action.DECLINE

    @property
    def positive(self) -> str:
        """The outcome when nothing stops the customer."""
        return "eligible" if self is Kind.MINING else "approve"

    @property
    def outcomes(self) -> tuple[str, ...]:
        if self is Kind.MINING:
            return ("eligible", "excluded")
        return ("approve", "decline", "refer")


class Action(StrEnum):
    """What a rule does when its condition is TRUE."""

    EXCLUDE = "exclude"
    DECLINE = "decline"
    REFER = "refer"
    FLAG = "flag"

    @property
    def outcome(self) -> str | None:
        """The outcome the action leads to (``None`` for a flag, which changes nothing)."""
        return {"exclude": "excluded", "decline": "decline", "refer": "refer"}.get(self.value)

    @property
    def severity(self) -> int:
        """Higher wins: a decline beats a refer, which beats a flag."""
        return {"exclude": 2, "decline": 2, "refer": 1, "flag": 0}[self.value]


class Rounding(StrEnum):
    """How a limit is rounded to its multiple."""

    DOWN = "down"
    NEAREST = "nearest"
    UP = "up"


@dataclass(frozen=True, slots=True)
class SqlText:
    """A SQL expression as written, with the line it starts on.

    ``block`` is true for YAML block scalars (``|`` / ``>``), whose first SQL line is the line
    after the key; a parse error on SQL line ``n`` is then reported at ``line + n - 1``.
    """

    text: str
    line: int
    block: bool = False


@dataclass(frozen=True, slots=True)
class Reason:
    """A stable reason code with its text in English and Chinese."""

    code: str
    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The registered model that scores one segment (``version`` None: newest approved)."""

    segment: str
    name: str
    version: int | None
    line: int


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    expr: SqlText | None
    line: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    stage: str
    when: SqlText | None
    action: Action | None
    reason: Reason | None
    line: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    rules: tuple[Rule, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Per segment, the score a customer must reach (``at_least``) or stay within (``at_most``)."""

    column: str
    direction: str  # "at_least" | "at_most"
    segments: dict[str, float]
    segment_lines: dict[str, int]
    reason: Reason | None
    action: Action | None
    line: int


@dataclass(frozen=True, slots=True)
class Band:
    """A grade for ``lower <= value < upper``; ``None`` is an open end."""

    grade: str
    lower: float | None
    upper: float | None
    line: int


@dataclass(frozen=True, slots=True)
class Grades:
    column: str
    bands: tuple[Band, ...]
    reason: Reason | None
    action: Action | None
    line: int


@dataclass(frozen=True, slots=True)
class Limit:
    """``LEAST(formula, caps..., maximum)`` rounded to ``multiple`` yuan; below ``minimum`` stops."""

    formula: SqlText | None
    caps: tuple[SqlText, ...]
    maximum: Decimal | None
    minimum: Decimal
    multiple: int
    rounding: Rounding
    reason: Reason | None
    action: Action | None
    line: int
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Strategy:
    """A loaded strategy file. ``problems`` holds what could not be read (empty when loaded strictly)."""

    source: str
    name: str
    kind: Kind | None
    version: int | None
    description: str
    owner: str
    segment_column: str
    models: tuple[ModelRef, ...]
    variables: tuple[Variable, ...]
    stages: tuple[Stage, ...]
    cutoffs: Cutoffs | None
    grades: Grades | None
    limit: Limit | None
    price: dict[str, Decimal]
    price_lines: dict[str, int]
    expiry_days: int | None
    fingerprint: str
    problems: tuple[Problem, ...] = ()
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule, stage by stage, in the order written."""
        return tuple(rule for stage in self.stages for rule in stage.rules)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" if self.version is not None else self.name
