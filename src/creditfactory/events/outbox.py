"""Outbox table, writer and dispatcher.

A service appends an :class:`Event` with :func:`append` inside its unit of work, so the event
is stored in the same transaction as the state change. After commit the :class:`Dispatcher`
hands each pending message to the handlers registered for its name (channel adapters, other
domains' reactions). A failing message is retried with exponential back-off and moves to
``dead`` after ``max_attempts``; handlers receive the event id so they can be idempotent.

A handler that writes to the database registers with :meth:`Dispatcher.register_in_transaction`:
it receives the dispatcher's session and runs in a savepoint of the message's transaction, so
its writes and the message's ``delivered`` mark commit together (or its writes are rolled back
and the failure recorded), and it never waits on a second connection for the database's lock.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from creditfactory.clock import Clock
from creditfactory.db import append_only
from creditfactory.db.append_only import AppendOnly
from creditfactory.db.base import Base
from creditfactory.db.types import UTCDateTime, enum_column

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,}", re.ASCII)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Event:
    """A fact that happened: a dotted name (``servicing.loan.disbursed``) and a small payload.

    Payload values are ids, ISO dates, strings and numbers (amounts as strings), never objects.
    """

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    """Optional deduplication key: appending the same key twice stores one message."""
    encoded: str = field(init=False, repr=False, compare=False)
    """The payload as the outbox stores it, encoded once when the event is made (which also
    refuses a payload that is not JSON-plain)."""

    def __post_init__(self) -> None:
        # Lower-case ASCII only: handlers are registered and matched by the exact name.
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"event name must be dotted <domain>.<entity>.<past_tense>, got {self.name!r}")
        encoded = json.dumps(dict(self.payload), default=_reject, ensure_ascii=False, sort_keys=True)
        object.__setattr__(self, "encoded", encoded)


def _reject(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"event payload values must be JSON-plain, got {type(value).__name__}")


class OutboxMessage(AppendOnly, Base):
    __tablename__ = "events_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus, 16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def append(session: Session, event: Event, *, now: datetime) -> OutboxMessage:
    """Store ``event`` in the outbox within the caller's transaction (no commit).

    The message is written with the session's next flush (any query of the session, or the
    commit), so that the events of one unit of work go out in as few INSERTs as possible."""
    if event.key is not None:
        existing = session.scalars(select(OutboxMessage).where(OutboxMessage.dedup_key == event.key)).first()
        if existing is not None:
            return existing
    return append_only.add(
        session,
        OutboxMessage,
        event_id=str(uuid.uuid4()),
        dedup_key=event.key,
        name=event.name,
        payload=event.encoded,
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=now,
        available_at=now,
    )


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        or 0
    )


Handler = Callable[[str, Mapping[str, Any]], None]
"""``handler(event_id, payload)``; must be idempotent on ``event_id``."""

SessionHandler = Callable[[Session, str, Mapping[str, Any]], None]
"""``handler(session, event_id, payload)``: writes in the message's transaction (flush, no commit)."""


@dataclass
class DispatchReport:
    delivered: int = 0
    retried: int = 0
    dead: int = 0


class Dispatcher:
    """Delivers pending outbox messages to registered handlers, one message per transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        max_attempts: int = 5,
        base_delay: timedelta = timedelta(seconds=5),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._session_handlers: dict[str, list[SessionHandler]] = defaultdict(list)
        self.max_attempts = max_attempts
        self.base_delay = base_delay

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name].append(handler)

    def register_in_transaction(self, name: str, handler: SessionHandler) -> None:
        """Subscribe a handler that writes through the dispatcher's session (see the module)."""
        if handler not in self._session_handlers[name]:
            self._session_handlers[name].append(handler)

    def session_handlers_for(self, name: str) -> list[SessionHandler]:
        return list(self._session_handlers.get(name, []))

    def handlers_for(self, name: str) -> list[Handler]:
        domain_wide = f"{name.split('.', 1)[0]}.*"
        return [
            *self._handlers.get(name, []),
            *self._handlers.get(domain_wide, []),
            *self._handlers.get("*", []),
        ]

    def run_once(self, *, limit: int = 500) -> DispatchReport:
        report = DispatchReport()
        now = self._clock.now()
        with self._sessions() as session:
            ids = list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.available_at <= now)
                    .order_by(OutboxMessage.id)
                    .limit(limit)
                )
            )
        for msg_id in ids:
            with self._sessions() as session, session.begin():
                msg = session.get(OutboxMessage, msg_id)
                if msg is None or msg.status is not OutboxStatus.PENDING:
                    continue
                payload = json.loads(msg.payload)
                try:
                    for in_transaction in self.session_handlers_for(msg.name):
                        with session.begin_nested():
                            in_transaction(session, msg.event_id, payload)
                    for handler in self.handlers_for(msg.name):
                        handler(msg.event_id, payload)
                except Exception as exc:  # a handler's failure is recorded, never lost
                    msg.attempts += 1
                    msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    if msg.attempts >= self.max_attempts:
                        msg.status = OutboxStatus.DEAD
                        report.dead += 1
                    else:
                        msg.available_at = now + self.base_delay * (2 ** (msg.attempts - 1))
                        report.retried += 1
                else:
                    msg.attempts += 1
                    msg.status = OutboxStatus.DELIVERED
                    msg.delivered_at = now
                    report.delivered += 1
        return report
