"""Lifecycles of credit lines and loans: explicit state machines, one transition table each.

Each machine has a status enum, an event enum and one table ``(status, event) → status``.
:meth:`StateMachine.next_state` raises :class:`IllegalTransition` (naming the status, the event
and what is allowed) on any move not in the table; :func:`dry_run` answers "what would this
event do?" without raising, for the console; :meth:`StateMachine.apply` returns the
:class:`Transition` record a service stores (actor, business date, reason) and the dotted name
of the event it emits (``servicing.loan.disbursed``).

Credit line (授信额度)::

    pending  --activate-->  active     --freeze-->    frozen
    frozen   --unfreeze-->  active
    active | frozen         --expire-->  expired     (no more drawdowns; repayments go on)
    pending | active | frozen | expired  --close-->  closed   (final)

Loan (借据)::

    approved --disburse--> active   --fall_overdue--> overdue  --cure--> active
    approved --cancel-->   cancelled                                     (final)
    active | overdue       --restructure-->          restructured
    restructured           --fall_overdue--> overdue;  --complete_observation--> active
    active | overdue | restructured  --settle-->     settled             (final)
    overdue | restructured           --write_off-->  written_off         (final)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Generic, TypeVar

from creditfactory.errors import Conflict

__all__ = [
    "CREDIT_LINE",
    "LOAN",
    "CreditLineEvent",
    "CreditLineStatus",
    "DryRun",
    "IllegalTransition",
    "LoanEvent",
    "LoanStatus",
    "StateMachine",
    "Transition",
    "dry_run",
    "next_state",
]


class IllegalTransition(Conflict):
    """An event that the current status does not allow."""

    code = "illegal_transition"
    title = "Illegal status transition"

    def __init__(self, machine: str, state: StrEnum, event: StrEnum, allowed: tuple[StrEnum, ...]) -> None:
        allowed_text = ", ".join(e.value for e in allowed) or "nothing (final status)"
        super().__init__(
            f"cannot {event.value} a {machine.replace('_', ' ')} that is {state.value}; "
            f"from {state.value} the allowed events are: {allowed_text}",
            machine=machine,
            state=state.value,
            event=event.value,
            allowed=[e.value for e in allowed],
        )
        self.state = state
        self.event = event


S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class DryRun(Generic[S, E]):
    """What an event would do from a status: the target status, or why it is refused."""

    state: S
    event: E
    allowed: bool
    target: S | None
    message: str


@dataclass(frozen=True, slots=True)
class Transition(Generic[S, E]):
    """A move that happened: from, to, event, who, on which business date, why, and the event name."""

    source: S
    target: S
    event: E
    actor: str
    business_date: date
    reason: str
    event_name: str


@dataclass(frozen=True)
class StateMachine(Generic[S, E]):
    """One lifecycle: its name, its status and event enums, the table and the emitted event names."""

    name: str
    status_type: type[S]
    event_type: type[E]
    table: Mapping[tuple[S, E], S]
    emitted: Mapping[E, str]

    def __post_init__(self) -> None:
        missing = [e.value for e in self.event_type if e not in self.emitted]
        if missing:
            raise ValueError(f"{self.name}: no event name for {', '.join(missing)}")

    def _check(self, state: object, event: object) -> tuple[S, E]:
        if not isinstance(state, self.status_type):
            raise TypeError(f"{self.name} status must be a {self.status_type.__name__}, got {state!r}")
        if not isinstance(event, self.event_type):
            raise TypeError(f"{self.name} event must be a {self.event_type.__name__}, got {event!r}")
        return state, event

    def allowed_events(self, state: S) -> tuple[E, ...]:
        """The events the table allows from ``state``, in declaration order."""
        return tuple(e for e in self.event_type if (state, e) in self.table)

    @property
    def final_states(self) -> tuple[S, ...]:
        return tuple(s for s in self.status_type if not self.allowed_events(s))

    def next_state(self, state: S, event: E) -> S:
        """The status after ``event``; raises :class:`IllegalTransition` if the table has no such move."""
        state, event = self._check(state, event)
        try:
            return self.table[(state, event)]
        except KeyError:
            raise IllegalTransition(self.name, state, event, self.allowed_events(state)) from None

    def dry_run(self, state: S, event: E) -> DryRun[S, E]:
        """What ``event`` would do from ``state``, without raising."""
        try:
            target = self.next_state(state, event)
        except IllegalTransition as exc:
            return DryRun(state, event, False, None, exc.message)
        return DryRun(state, event, True, target, f"{event.value}: {state.value} → {target.value}")

    def apply(
        self, state: S, event: E, *, actor: str, business_date: date, reason: str = ""
    ) -> Transition[S, E]:
        """The :class:`Transition` record of ``event`` from ``state`` (raises if illegal)."""
        if not actor:
            raise ValueError("a transition needs an actor")
        if isinstance(business_date, datetime) or not isinstance(business_date, date):
            raise TypeError(f"business_date must be a datetime.date, got {type(business_date).__name__}")
        target = self.next_state(state, event)
        return Transition(
            source=state,
            target=target,
            event=event,
            actor=actor,
            business_date=business_date,
            reason=reason,
            event_name=f"servicing.{self.name}.{self.emitted[event]}",
        )


# --------------------------------------------------------------------------------------------
# Credit line


class CreditLineStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    FROZEN = "frozen"
    EXPIRED = "expired"
    CLOSED = "closed"


class CreditLineEvent(StrEnum):
    ACTIVATE = "activate"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    EXPIRE = "expire"
    CLOSE = "close"


_L, _LE = CreditLineStatus, CreditLineEvent

CREDIT_LINE: StateMachine[CreditLineStatus, CreditLineEvent] = StateMachine(
    name="credit_line",
    status_type=CreditLineStatus,
    event_type=CreditLineEvent,
    table={
        (_L.PENDING, _LE.ACTIVATE): _L.ACTIVE,
        (_L.PENDING, _LE.CLOSE): _L.CLOSED,
        (_L.ACTIVE, _LE.FREEZE): _L.FROZEN,
        (_L.ACTIVE, _LE.EXPIRE): _L.EXPIRED,
        (_L.ACTIVE, _LE.CLOSE): _L.CLOSED,
        (_L.FROZEN, _LE.UNFREEZE): _L.ACTIVE,
        (_L.FROZEN, _LE.EXPIRE): _L.EXPIRED,
        (_L.FROZEN, _LE.CLOSE): _L.CLOSED,
        (_L.EXPIRED, _LE.CLOSE): _L.CLOSED,
    },
    emitted={
        _LE.ACTIVATE: "activated",
        _LE.FREEZE: "frozen",
        _LE.UNFREEZE: "unfrozen",
        _LE.EXPIRE: "expired",
        _LE.CLOSE: "closed",
    },
)


# --------------------------------------------------------------------------------------------
# Loan


class LoanStatus(StrEnum):
    APPROVED = "approved"
    ACTIVE = "active"
    OVERDUE = "overdue"
    RESTRUCTURED = "restructured"
    SETTLED = "settled"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


class LoanEvent(StrEnum):
    DISBURSE = "disburse"
    CANCEL = "cancel"
    FALL_OVERDUE = "fall_overdue"
    CURE = "cure"
    RESTRUCTURE = "restructure"
    COMPLETE_OBSERVATION = "complete_observation"
    SETTLE = "settle"
    WRITE_OFF = "write_off"


_S, _E = LoanStatus, LoanEvent

LOAN: StateMachine[LoanStatus, LoanEvent] = StateMachine(
    name="loan",
    status_type=LoanStatus,
    event_type=LoanEvent,
    table={
        (_S.APPROVED, _E.DISBURSE): _S.ACTIVE,
        (_S.APPROVED, _E.CANCEL): _S.CANCELLED,
        (_S.ACTIVE, _E.FALL_OVERDUE): _S.OVERDUE,
        (_S.ACTIVE, _E.RESTRUCTURE): _S.RESTRUCTURED,
        (_S.ACTIVE, _E.SETTLE): _S.SETTLED,
        (_S.OVERDUE, _E.CURE): _S.ACTIVE,
        (_S.OVERDUE, _E.RESTRUCTURE): _S.RESTRUCTURED,
        (_S.OVERDUE, _E.SETTLE): _S.SETTLED,
        (_S.OVERDUE, _E.WRITE_OFF): _S.WRITTEN_OFF,
        (_S.RESTRUCTURED, _E.FALL_OVERDUE): _S.OVERDUE,
        (_S.RESTRUCTURED, _E.COMPLETE_OBSERVATION): _S.ACTIVE,
        (_S.RESTRUCTURED, _E.SETTLE): _S.SETTLED,
        (_S.RESTRUCTURED, _E.WRITE_OFF): _S.WRITTEN_OFF,
    },
    emitted={
        _E.DISBURSE: "disbursed",
        _E.CANCEL: "cancelled",
        _E.FALL_OVERDUE: "fell_overdue",
        _E.CURE: "cured",
        _E.RESTRUCTURE: "restructured",
        _E.COMPLETE_OBSERVATION: "observation_completed",
        _E.SETTLE: "settled",
        _E.WRITE_OFF: "written_off",
    },
)

_MACHINES: dict[type[StrEnum], StateMachine] = {  # type: ignore[type-arg]
    CreditLineStatus: CREDIT_LINE,
    LoanStatus: LOAN,
}


def _machine_for(state: object) -> StateMachine:  # type: ignore[type-arg]
    for status_type, machine in _MACHINES.items():
        if isinstance(state, status_type):
            return machine
    raise TypeError(f"no lifecycle for status {state!r}; expected a CreditLineStatus or LoanStatus")


def next_state(state: CreditLineStatus | LoanStatus, event: CreditLineEvent | LoanEvent) -> StrEnum:
    """The status after ``event`` in the lifecycle ``state`` belongs to (raises if illegal)."""
    return _machine_for(state).next_state(state, event)  # type: ignore[no-any-return]


def dry_run(state: CreditLineStatus | LoanStatus, event: CreditLineEvent | LoanEvent) -> DryRun:  # type: ignore[type-arg]
    """What ``event`` would do from ``state``, for the lifecycle ``state`` belongs to."""
    return _machine_for(state).dry_run(state, event)  # type: ignore[no-any-return]
