"""The outbox: events are stored with the state change and delivered after commit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from creditfactory.bootstrap import Container
from creditfactory.events import (
    Dispatcher,
    DispatchReport,
    Event,
    OutboxMessage,
    OutboxStatus,
    append,
    pending_count,
)

DISBURSED = Event("servicing.loan.disbursed", {"loan_id": "L0001", "amount": "5000.00"})


def commit_events(container: Container, *events: Event) -> list[str]:
    """Append ``events`` in one committed unit of work; returns their event ids."""
    with container.uow() as uow:
        ids = [append(uow.session, e, now=container.clock.now()).event_id for e in events]
        uow.commit()
    return ids


def messages(container: Container) -> list[OutboxMessage]:
    with container.uow() as uow:
        found = list(uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        uow.session.expunge_all()
        return found


def pending(container: Container) -> int:
    with container.uow() as uow:
        return pending_count(uow.session)


class Recorder:
    """A handler that records what it was given and fails its first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_id: str, payload: Mapping[str, Any]) -> None:
        self.calls.append((event_id, dict(payload)))
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"channel down (call {len(self.calls)})")


@pytest.fixture
def dispatcher(container: Container) -> Dispatcher:
    return Dispatcher(container.sessions, container.clock, max_attempts=3, base_delay=timedelta(seconds=5))


class TestEvent:
    @pytest.mark.parametrize(
        "name",
        [
            "loan",
            "servicing.loan",
            "servicing..disbursed",
            "servicing.loan.disbursed.",
            ".servicing.loan.disbursed",
            "servicing.loan.dis-bursed",
            "servicing.loan.dis bursed",
            " servicing.loan.disbursed",
            "Servicing.Loan.Disbursed",
            "servicing.贷款.disbursed",
            "servicing.loan.disbursed\n",
        ],
    )
    def test_refuses_names_that_are_not_dotted_lowercase(self, name: str) -> None:
        with pytest.raises(ValueError, match="dotted"):
            Event(name)

    @pytest.mark.parametrize(
        "name", ["servicing.loan.disbursed", "contract.ingest_run.completed", "a.b2.c.d"]
    )
    def test_accepts_dotted_names(self, name: str) -> None:
        assert Event(name).name == name

    def test_refuses_payload_objects(self) -> None:
        with pytest.raises(TypeError, match="JSON-plain"):
            Event("servicing.loan.disbursed", {"amount": Decimal("5000.00")})

    def test_the_payload_is_encoded_once_as_the_outbox_stores_it(self, container: Container) -> None:
        event = Event("servicing.loan.disbursed", {"loan_id": "L0001", "名": "张三", "amount": "5000.00"})
        assert event.encoded == '{"amount": "5000.00", "loan_id": "L0001", "名": "张三"}'
        assert event == Event(
            "servicing.loan.disbursed", {"名": "张三", "amount": "5000.00", "loan_id": "L0001"}
        )
        commit_events(container, event)
        [msg] = messages(container)
        assert msg.payload == event.encoded

    def test_dates_travel_as_iso_text(self, container: Container) -> None:
        commit_events(container, Event("servicing.loan.disbursed", {"value_date": date(2025, 7, 1)}))
        [msg] = messages(container)
        assert json.loads(msg.payload) == {"value_date": "2025-07-01"}


class TestAppend:
    def test_stores_a_pending_message_with_the_transaction(self, container: Container) -> None:
        [event_id] = commit_events(container, DISBURSED)
        [msg] = messages(container)
        assert msg.event_id == event_id
        assert msg.name == "servicing.loan.disbursed"
        assert json.loads(msg.payload) == {"loan_id": "L0001", "amount": "5000.00"}
        assert msg.status is OutboxStatus.PENDING
        assert msg.attempts == 0
        assert msg.created_at == msg.available_at == container.clock.now()
        assert pending(container) == 1

    def test_leaves_nothing_when_the_unit_of_work_rolls_back(self, container: Container) -> None:
        with container.uow() as uow:
            append(uow.session, DISBURSED, now=container.clock.now())
            assert pending_count(uow.session) == 1
        with pytest.raises(RuntimeError), container.uow() as uow:
            append(uow.session, DISBURSED, now=container.clock.now())
            raise RuntimeError("the state change failed")
        assert messages(container) == []

    def test_same_dedup_key_stores_one_message(self, container: Container) -> None:
        keyed = Event("servicing.loan.disbursed", {"loan_id": "L0001"}, key="disburse:L0001")
        first = commit_events(container, keyed, keyed)
        again = commit_events(container, keyed)
        assert first[0] == first[1] == again[0]
        assert len(messages(container)) == 1

    def test_events_without_a_key_are_all_kept(self, container: Container) -> None:
        ids = commit_events(container, DISBURSED, DISBURSED)
        assert len(set(ids)) == 2
        assert pending(container) == 2


class TestDispatcher:
    def test_delivers_each_pending_message_once(self, container: Container, dispatcher: Dispatcher) -> None:
        handler = Recorder()
        dispatcher.register("servicing.loan.disbursed", handler)
        [event_id] = commit_events(container, DISBURSED)

        assert dispatcher.run_once() == DispatchReport(delivered=1)
        assert dispatcher.run_once() == DispatchReport()
        assert handler.calls == [(event_id, {"loan_id": "L0001", "amount": "5000.00"})]
        [msg] = messages(container)
        assert (msg.status, msg.attempts, msg.delivered_at) == (
            OutboxStatus.DELIVERED,
            1,
            container.clock.now(),
        )
        assert pending(container) == 0

    def test_domain_and_catch_all_handlers_get_the_event(
        self, container: Container, dispatcher: Dispatcher
    ) -> None:
        exact, domain, everything, other = Recorder(), Recorder(), Recorder(), Recorder()
        dispatcher.register("servicing.loan.disbursed", exact)
        dispatcher.register("servicing.*", domain)
        dispatcher.register("*", everything)
        dispatcher.register("servicing.loan.repaid", other)
        commit_events(container, DISBURSED)
        dispatcher.run_once()
        assert [len(h.calls) for h in (exact, domain, everything, other)] == [1, 1, 1, 0]

    def test_retries_with_exponential_back_off(self, container: Container, dispatcher: Dispatcher) -> None:
        clock = container.clock
        handler = Recorder(failures=2)
        dispatcher.register("servicing.loan.disbursed", handler)
        commit_events(container, DISBURSED)
        start = clock.now()

        assert dispatcher.run_once() == DispatchReport(retried=1)
        [msg] = messages(container)
        assert (msg.status, msg.attempts) == (OutboxStatus.PENDING, 1)
        assert msg.available_at == start + timedelta(seconds=5)
        assert msg.last_error == "RuntimeError: channel down (call 1)"

        clock.advance(seconds=4)
        assert dispatcher.run_once() == DispatchReport()  # not due yet
        clock.advance(seconds=1)
        assert dispatcher.run_once() == DispatchReport(retried=1)
        [msg] = messages(container)
        assert msg.attempts == 2
        assert msg.available_at == start + timedelta(seconds=5 + 10)

        clock.advance(seconds=9)
        assert dispatcher.run_once() == DispatchReport()
        clock.advance(seconds=1)
        assert dispatcher.run_once() == DispatchReport(delivered=1)
        assert len(handler.calls) == 3
        assert len({event_id for event_id, _ in handler.calls}) == 1  # the same id every time
        [msg] = messages(container)
        assert (msg.status, msg.attempts) == (OutboxStatus.DELIVERED, 3)

    def test_dead_letters_after_max_attempts(self, container: Container, dispatcher: Dispatcher) -> None:
        handler = Recorder(failures=99)
        dispatcher.register("servicing.loan.disbursed", handler)
        commit_events(container, DISBURSED)
        reports = []
        for _ in range(3):
            reports.append(dispatcher.run_once())
            container.clock.advance(hours=1)
        assert reports == [DispatchReport(retried=1), DispatchReport(retried=1), DispatchReport(dead=1)]
        [msg] = messages(container)
        assert (msg.status, msg.attempts) == (OutboxStatus.DEAD, 3)
        assert msg.last_error == "RuntimeError: channel down (call 3)"
        container.clock.advance(days=30)
        assert dispatcher.run_once() == DispatchReport()
        assert len(handler.calls) == 3
        assert pending(container) == 0

    def test_a_failing_message_does_not_hold_up_the_others(
        self, container: Container, dispatcher: Dispatcher
    ) -> None:
        broken, working = Recorder(failures=99), Recorder()
        dispatcher.register("servicing.loan.disbursed", broken)
        dispatcher.register("servicing.loan.repaid", working)
        commit_events(container, DISBURSED, Event("servicing.loan.repaid", {"loan_id": "L0001"}))
        assert dispatcher.run_once() == DispatchReport(delivered=1, retried=1)
        assert len(working.calls) == 1
        assert [m.status for m in messages(container)] == [OutboxStatus.PENDING, OutboxStatus.DELIVERED]

    def test_delivers_in_the_order_appended(self, container: Container, dispatcher: Dispatcher) -> None:
        handler = Recorder()
        dispatcher.register("servicing.*", handler)
        ids = commit_events(
            container, *(Event("servicing.loan.disbursed", {"loan_id": f"L{i}"}) for i in range(5))
        )
        assert dispatcher.run_once(limit=3) == DispatchReport(delivered=3)
        assert dispatcher.run_once(limit=3) == DispatchReport(delivered=2)
        assert [event_id for event_id, _ in handler.calls] == ids
