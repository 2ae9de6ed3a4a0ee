"""Events and the outbox: side effects leave after commit, with retries and a dead letter."""

from creditfactory.events.outbox import (
    Dispatcher,
    DispatchReport,
    Event,
    OutboxMessage,
    OutboxStatus,
    append,
    pending_count,
)

__all__ = [
    "DispatchReport",
    "Dispatcher",
    "Event",
    "OutboxMessage",
    "OutboxStatus",
    "append",
    "pending_count",
]
