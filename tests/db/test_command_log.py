"""The command log: a repeatable write runs once per (principal, operation, key)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import NoResultFound

from creditfactory.bootstrap import Container
from creditfactory.db import command_log
from creditfactory.db.append_only import write_now
from creditfactory.db.command_log import (
    CommandInProgress,
    CommandLog,
    CommandStatus,
    IdempotencyKeyReused,
    StoredResult,
)

BODY = {"directory": "2025-06-30"}
HASH = command_log.request_hash(BODY)


def claim(container: Container, *, key: str = "k-1", principal: str = "u-1", req_hash: str = HASH):
    """Claim a key in its own committed transaction; returns what ``begin`` returned."""
    with container.uow() as uow:
        stored = command_log.begin(
            uow.session,
            principal_id=principal,
            operation="contract.ingest",
            key=key,
            req_hash=req_hash,
            now=container.clock.now(),
        )
        uow.commit()
    return stored


def finish(
    container: Container,
    *,
    key: str = "k-1",
    status: int = 201,
    body: object = None,
    with_the_commit: bool = False,
) -> None:
    """Store the response at once (``write_now``), or as the commit's last write."""
    values: dict[str, Any] = dict(
        principal_id="u-1",
        operation="contract.ingest",
        key=key,
        status=status,
        body={"run_id": 7} if body is None else body,
        now=container.clock.now(),
    )
    with container.uow() as uow:
        if with_the_commit:
            uow.commit(last=command_log.completion(**values))
            return
        write_now(uow.session.connection(), command_log.completion(**values))
        uow.commit()


def rows(container: Container) -> list[CommandLog]:
    with container.uow() as uow:
        found = list(uow.session.scalars(select(CommandLog).order_by(CommandLog.id)))
        uow.session.expunge_all()  # keep the loaded values after the unit of work ends
        return found


class TestRequestHash:
    def test_same_json_in_another_order_or_spacing_is_the_same_request(self) -> None:
        assert command_log.request_hash(b'{"a": 1, "b": [1, 2]}') == command_log.request_hash(
            b'{"b":[1,2],"a":1}'
        )
        assert command_log.request_hash(b'{"a": 1}') == command_log.request_hash({"a": 1})

    def test_different_bodies_differ(self) -> None:
        assert command_log.request_hash(b'{"a": 1}') != command_log.request_hash(b'{"a": 2}')

    def test_an_empty_body_and_text_that_is_not_json(self) -> None:
        assert command_log.request_hash(b"") == command_log.request_hash(None)
        assert command_log.request_hash(b"not json") != command_log.request_hash(b"not json!")


class TestBegin:
    def test_first_claim_proceeds_and_is_recorded_as_running(self, container: Container) -> None:
        assert claim(container) is None
        [row] = rows(container)
        assert (row.principal_id, row.operation, row.idempotency_key) == ("u-1", "contract.ingest", "k-1")
        assert row.status is CommandStatus.RUNNING
        assert row.request_hash == HASH
        assert row.created_at == container.clock.now()

    def test_completed_repeat_returns_the_stored_result(self, container: Container) -> None:
        claim(container)
        finish(container, status=201, body={"run_id": 7, "tables": {"customers": {"loaded": 8}}})
        stored = claim(container)
        assert stored == StoredResult(status=201, body={"run_id": 7, "tables": {"customers": {"loaded": 8}}})
        assert len(rows(container)) == 1

    def test_same_key_with_a_different_body_is_refused(self, container: Container) -> None:
        claim(container)
        finish(container)
        with pytest.raises(IdempotencyKeyReused) as caught:
            claim(container, req_hash=command_log.request_hash({"directory": "other"}))
        assert caught.value.code == "idempotency_key_reused"
        assert caught.value.http_status == 422
        assert "'k-1'" in caught.value.message

    def test_repeat_while_the_first_is_running_is_a_conflict(self, container: Container) -> None:
        claim(container)
        with pytest.raises(CommandInProgress) as caught:
            claim(container)
        assert caught.value.http_status == 409
        assert caught.value.code == "idempotency_in_progress"

    def test_keys_belong_to_a_principal(self, container: Container) -> None:
        claim(container, principal="u-1")
        assert claim(container, principal="u-2") is None
        assert len(rows(container)) == 2

    def test_a_duplicate_racing_the_first_is_a_conflict(self, container: Container) -> None:
        outcome: list[BaseException | None] = []

        def second() -> None:
            try:
                claim(container)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        with container.uow() as first:
            command_log.begin(
                first.session,
                principal_id="u-1",
                operation="contract.ingest",
                key="k-1",
                req_hash=HASH,
                now=container.clock.now(),
            )
            racer = threading.Thread(target=second)
            racer.start()
            time.sleep(0.2)
            first.commit()
        racer.join(timeout=30)
        assert len(outcome) == 1
        assert isinstance(outcome[0], CommandInProgress)
        with container.uow() as uow:
            assert uow.session.scalar(select(func.count()).select_from(CommandLog)) == 1


@pytest.mark.parametrize("with_the_commit", [False, True], ids=["at once", "with the commit"])
class TestComplete:
    def test_stores_status_body_and_time(self, container: Container, with_the_commit: bool) -> None:
        claim(container)
        container.clock.advance(seconds=3)
        finish(
            container, status=201, body={"loaded": 59, "reject_dir": None}, with_the_commit=with_the_commit
        )
        [row] = rows(container)
        assert row.status is CommandStatus.COMPLETED
        assert row.response_status == 201
        assert row.completed_at == container.clock.now()
        assert (row.completed_at - row.created_at).total_seconds() == 3
        assert claim(container) == StoredResult(status=201, body={"loaded": 59, "reject_dir": None})

    def test_needs_a_claim(self, container: Container, with_the_commit: bool) -> None:
        with pytest.raises(NoResultFound):
            finish(container, key="never-claimed", with_the_commit=with_the_commit)


class TestRelease:
    def test_a_released_claim_can_be_claimed_again(self, container: Container) -> None:
        claim(container)
        with container.uow() as uow:
            command_log.release(uow.session, principal_id="u-1", operation="contract.ingest", key="k-1")
            uow.commit()
        assert rows(container) == []
        assert claim(container) is None

    def test_a_completed_command_is_kept(self, container: Container) -> None:
        claim(container)
        finish(container)
        with container.uow() as uow:
            command_log.release(uow.session, principal_id="u-1", operation="contract.ingest", key="k-1")
            uow.commit()
        assert claim(container) == StoredResult(status=201, body={"run_id": 7})


class TestClaimWithTheBusinessDate:
    """``begin(along=business_date_ahead())``: on PostgreSQL the claim's statement brings the
    business date, which the transaction's first ask then takes without a statement of its own;
    elsewhere, and for any later ask, the date is read as before."""

    @staticmethod
    def _statements(container: Container) -> tuple[list[str], Any]:
        from sqlalchemy import event

        sent: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if not statement.startswith("BEGIN"):
                sent.append(statement)

        event.listen(container.engine, "before_cursor_execute", seen)
        return sent, lambda: event.remove(container.engine, "before_cursor_execute", seen)

    def _open(self, container: Container) -> Any:
        from datetime import date

        from creditfactory.jobs import open_business_date

        with container.uow() as uow:
            open_business_date(uow.session, on=date(2025, 7, 1), clock=container.clock)
            uow.commit()
        return date(2025, 7, 1)

    def _begin(self, uow: Any, container: Container, key: str) -> StoredResult | None:
        from creditfactory.jobs import business_date_ahead

        return command_log.begin(
            uow.session,
            principal_id="u-1",
            operation="origination.application.submit",
            key=key,
            req_hash=HASH,
            now=container.clock.now(),
            along=business_date_ahead(),
        )

    def test_the_first_ask_is_answered_by_the_claims_statement(self, container: Container) -> None:
        from creditfactory.jobs import current_business_date

        day = self._open(container)
        sent, stop = self._statements(container)
        try:
            with container.uow() as uow:
                assert self._begin(uow, container, "k-date") is None
                claimed = len(sent)
                assert current_business_date(uow.session) == day
                first = len(sent) - claimed
                assert current_business_date(uow.session) == day  # a later ask reads
                later = len(sent) - claimed - first
                uow.commit()
        finally:
            stop()
        assert claimed == 1
        assert (first, later) == ((0, 1) if container.engine.dialect.name == "postgresql" else (1, 1))
        assert [(r.idempotency_key, r.status) for r in rows(container)] == [("k-date", CommandStatus.RUNNING)]

    def test_a_repeat_gets_its_stored_answer_and_the_date_as_well(self, container: Container) -> None:
        from creditfactory.jobs import current_business_date

        day = self._open(container)
        with container.uow() as uow:
            self._begin(uow, container, "k-again")
            uow.commit(
                last=command_log.completion(
                    principal_id="u-1",
                    operation="origination.application.submit",
                    key="k-again",
                    status=201,
                    body={"id": 1},
                    now=container.clock.now(),
                )
            )
        with container.uow() as uow:
            assert self._begin(uow, container, "k-again") == StoredResult(status=201, body={"id": 1})
            assert current_business_date(uow.session) == day

    def test_a_date_read_ahead_is_not_taken_by_another_transaction(self, container: Container) -> None:
        from datetime import date

        from sqlalchemy import update

        from creditfactory.jobs import current_business_date
        from creditfactory.jobs.store import BusinessDateRow

        self._open(container)
        with container.uow() as uow:
            self._begin(uow, container, "k-tx")
            first = uow.session.connection().connection.dbapi_connection
            uow.rollback()  # the date read ahead belonged to that transaction, never asked
            with container.engine.begin() as conn:  # moved by someone else meanwhile
                conn.execute(update(BusinessDateRow).values(business_date=date(2025, 7, 2)))
            # the same connection again, a new transaction without a claim: the date as it is now
            assert uow.session.connection().connection.dbapi_connection is first
            assert current_business_date(uow.session) == date(2025, 7, 2)

    def test_a_date_read_ahead_is_not_taken_over_a_change_of_the_transaction(
        self, container: Container
    ) -> None:
        from datetime import date

        from creditfactory.jobs import close_and_open, current_business_date
        from creditfactory.jobs.store import BusinessDateRow

        day = self._open(container)
        with container.uow() as uow:
            self._begin(uow, container, "k-held")
            row = uow.session.get(BusinessDateRow, "default")
            assert row is not None
            row.business_date = date(2025, 7, 9)  # held in the session, not yet written
            assert current_business_date(uow.session) == date(2025, 7, 9)
            uow.rollback()
        with container.uow() as uow:
            self._begin(uow, container, "k-moved")
            close_and_open(uow.session, closing=day, clock=container.clock)  # written by the transaction
            assert current_business_date(uow.session) == date(2025, 7, 2)
            uow.rollback()
        with container.uow() as uow:
            assert current_business_date(uow.session) == day
