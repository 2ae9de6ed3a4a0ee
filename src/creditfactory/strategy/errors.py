"""Problems found in a strategy file, and the errors that carry them.

A :class:`Problem` says what is wrong and where: the file, the YAML line, the rule (or the section,
such as ``limit.formula``) and the column involved. Problems are values: loading and checking
collect every one of them, and only then does :class:`StrategyError` raise them all at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from creditfactory.errors import DomainError, InvalidInput

__all__ = ["FactsError", "Problem", "StrategyError"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a strategy.

    ``code`` is stable (documented in ``docs/strategy.md``); ``message`` is for people.
    ``rule`` is a rule id, a variable name or a section path (``limit.formula``, ``grades``).
    """

    file: str
    line: int | None
    rule: str | None
    column: str | None
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f"{self.rule}: " if self.rule and self.rule not in self.message else ""
        column = f" (column {self.column})" if self.column and self.column not in self.message else ""
        return f"{where}: {rule}{self.message}{column} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StrategyError(DomainError):
    """A strategy that cannot be loaded or compiled; ``problems`` lists every reason."""

    code = "strategy_invalid"
    http_status = 422
    title = "Strategy has problems"

    def __init__(self, problems: Sequence[Problem], *, source: str) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''}\n{lines}",
            source=source,
            problems=[p.to_dict() for p in self.problems],
        )


class FactsError(InvalidInput):
    """The facts handed to :meth:`Plan.evaluate_one` or the frame handed to :meth:`Plan.apply` do not
    fit the plan: a missing column, or a value of the wrong type. ``problems`` names each one."""

    code = "strategy_facts_invalid"
    title = "Facts do not fit the strategy"

    def __init__(self, problems: Sequence[str], *, strategy: str) -> None:
        self.problems = tuple(problems)
        super().__init__(
            f"strategy {strategy}: " + "; ".join(self.problems), strategy=strategy, problems=list(problems)
        )
