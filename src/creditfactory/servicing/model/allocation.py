"""Repayment allocation: which amounts due a payment pays, in which order.

Two strategies:

- ``oldest_first`` (the default; Apache Fineract's ordinary repayment processing): the oldest
  instalment first, and within it the components in the product's order (penalty, fee,
  interest, principal by default); the next instalment only once the older one is fully paid.
- ``component_first``: the first component across all instalments, oldest first, before the
  next component, e.g. every penalty and interest before any principal (先息后本 allocation,
  which some collections policies ask for). Fineract's advanced payment allocation offers both
  kinds of choice, under the names horizontal and vertical; here they are named for what they do.

No component is ever paid more than is due, and the lines plus ``excess`` always add up to the
payment exactly: no rounding happens here, the amounts are subtracted as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from creditfactory.errors import InvalidInput
from creditfactory.servicing.model.product import DEFAULT_ALLOCATION_ORDER, Component

__all__ = [
    "Allocation",
    "AllocationError",
    "AllocationLine",
    "AllocationStrategy",
    "Due",
    "allocate_repayment",
    "outstanding_after",
]

_ZERO = Decimal(0)


class AllocationError(InvalidInput):
    """A repayment or the amounts due handed to the allocation are invalid."""

    code = "invalid_allocation"
    title = "Invalid repayment allocation"


def _non_negative(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise AllocationError(f"{what} must be zero or more, got {number}", field=what)
    return number


@dataclass(frozen=True, slots=True)
class Due:
    """What is still unpaid of one instalment, by component."""

    number: int
    due_date: date
    principal: Decimal = _ZERO
    interest: Decimal = _ZERO
    fee: Decimal = _ZERO
    penalty: Decimal = _ZERO

    def __post_init__(self) -> None:
        if isinstance(self.due_date, datetime) or not isinstance(self.due_date, date):
            raise TypeError(f"due_date must be a datetime.date, got {type(self.due_date).__name__}")
        for component in Component:
            object.__setattr__(
                self, component.value, _non_negative(getattr(self, component.value), f"{component.value}")
            )

    @classmethod
    def of(cls, number: int, due_date: date, amounts: Mapping[Component | str, Decimal]) -> Due:
        """A due from a mapping of component to amount (missing components are zero)."""
        return cls(number, due_date, **{Component(k).value: v for k, v in amounts.items()})

    def amount(self, component: Component | str) -> Decimal:
        return getattr(self, Component(component).value)  # type: ignore[no-any-return]

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty


@dataclass(frozen=True, slots=True)
class AllocationLine:
    """An amount of a payment applied to one component of one instalment."""

    number: int
    component: Component
    amount: Decimal


class AllocationStrategy(StrEnum):
    OLDEST_FIRST = "oldest_first"
    COMPONENT_FIRST = "component_first"


@dataclass(frozen=True, slots=True)
class Allocation:
    """How a payment was applied: the lines, in the order they were paid, and what was left over."""

    lines: tuple[AllocationLine, ...]
    excess: Decimal

    @property
    def allocated(self) -> Decimal:
        return sum((line.amount for line in self.lines), _ZERO)

    @property
    def total(self) -> Decimal:
        """Allocated plus excess: always the payment."""
        return self.allocated + self.excess

    def by_component(self) -> dict[Component, Decimal]:
        totals = {c: _ZERO for c in Component}
        for line in self.lines:
            totals[line.component] += line.amount
        return totals

    def paid(self, number: int, component: Component | str) -> Decimal:
        wanted = Component(component)
        return sum(
            (line.amount for line in self.lines if line.number == number and line.component is wanted), _ZERO
        )


def _check_order(order: Sequence[Component | str]) -> tuple[Component, ...]:
    try:
        components = tuple(Component(c) for c in order)
    except ValueError as exc:
        raise AllocationError(f"allocation order: {exc}", field="order") from None
    if sorted(components) != sorted(Component):
        names = ", ".join(c.value for c in components)
        raise AllocationError(
            f"allocation order must name each of penalty, fee, interest, principal once, got {names}",
            field="order",
        )
    return components


def allocate_repayment(
    amount: Decimal,
    dues: Sequence[Due],
    *,
    order: Sequence[Component | str] = DEFAULT_ALLOCATION_ORDER,
    strategy: AllocationStrategy | str = AllocationStrategy.OLDEST_FIRST,
) -> Allocation:
    """Apply a payment of ``amount`` to ``dues``; what no due can take is ``excess``.

    Instalments are taken oldest first (by due date, then number) whatever order they come in.
    Raises :class:`AllocationError` for a negative amount, an order that does not name each
    component once, an unknown strategy, or two dues with the same instalment number.
    """
    remaining = _non_negative(amount, "amount")
    components = _check_order(order)
    try:
        chosen = AllocationStrategy(strategy)
    except ValueError:
        raise AllocationError(f"unknown allocation strategy {strategy!r}", field="strategy") from None
    numbers = [d.number for d in dues]
    if len(set(numbers)) != len(numbers):
        raise AllocationError("two dues have the same instalment number", field="dues")
    ordered = sorted(dues, key=lambda d: (d.due_date, d.number))
    if chosen is AllocationStrategy.OLDEST_FIRST:
        steps = [(due, c) for due in ordered for c in components]
    else:
        steps = [(due, c) for c in components for due in ordered]

    lines: list[AllocationLine] = []
    for due, component in steps:
        if remaining == 0:
            break
        pay = min(remaining, due.amount(component))
        if pay > 0:
            lines.append(AllocationLine(due.number, component, pay))
            remaining -= pay
    return Allocation(lines=tuple(lines), excess=remaining)


def outstanding_after(dues: Sequence[Due], allocation: Allocation) -> list[Due]:
    """The dues left unpaid once ``allocation`` is applied (same order as ``dues``)."""
    result = []
    for due in dues:
        left = {c.value: due.amount(c) - allocation.paid(due.number, c) for c in Component}
        result.append(replace(due, **left))
    return result
