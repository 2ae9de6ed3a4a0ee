"""Submissions and decisions racing each other: one wins, the other is refused cleanly."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from creditfactory import origination
from creditfactory.api import create_app
from creditfactory.origination import service, store
from creditfactory.origination.store import Application
from tests.origination.conftest import ON, World
from tests.origination.test_api import body, customer

D = Decimal
postgres_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def applications(world: World) -> int:
    with world.container.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Application)) or 0)


def test_two_submissions_over_http_one_wins(world: World) -> None:
    world.consent("C0001")
    app = create_app(world.container)
    token = world.container.tokens.issue(customer("C0001"))
    statuses: list[int] = []
    codes: list[str] = []
    start = threading.Barrier(2, timeout=30)

    def one(amount: str) -> None:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                start.wait()
                return await client.post(
                    "/v1/applications",
                    json=body(amount=amount),
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                )

        r = asyncio.run(go())
        statuses.append(r.status_code)
        if r.status_code != 201:
            codes.append(r.json()["code"])

    threads = [threading.Thread(target=one, args=(a,)) for a in ("20000.00", "30000.00")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409] and codes == ["application_in_progress"]
    assert applications(world) == 1


@postgres_only
def test_the_database_refuses_a_second_application_when_the_inserts_race(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both submissions reach the insert together (a barrier holds them before it): the unique
    constraint lets exactly one write; the other waits for it, writes nothing and is told the
    winner's application."""
    world.consent("C0001")
    ready = threading.Barrier(2, timeout=30)
    original = store.insert_new

    def racing(*args: Any) -> Any:
        ready.wait()
        return original(*args)

    monkeypatch.setattr(store, "insert_new", racing)
    outcomes: list[str] = []
    refused: list[service.ApplicationInProgress] = []

    def one(amount: str) -> None:
        try:
            world.submit("C0001", amount=D(amount))
            outcomes.append("submitted")
        except service.ApplicationInProgress as exc:
            outcomes.append("in_progress")
            refused.append(exc)

    threads = [threading.Thread(target=one, args=(a,)) for a in ("20000.00", "30000.00")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["in_progress", "submitted"]
    assert applications(world) == 1
    with world.container.uow() as uow:
        events = world.events("origination.application.submitted")
        assert len(events) == 1 and len(service.list_applications(uow)) == 1
        winner = service.list_applications(uow)[0].id
    assert refused[0].details == {"application_id": winner}


@postgres_only
def test_a_decision_on_an_application_withdrawn_meanwhile_is_refused(world: World) -> None:
    """Optimistic locking: the decision read the application before the withdrawal committed."""
    world.consent("C0001")
    app = world.submit("C0001")
    with world.container.uow() as deciding:
        stale = deciding.session.get(Application, app.id)
        assert stale is not None and stale.status is origination.ApplicationStatus.SUBMITTED
        with world.container.uow() as withdrawing:
            service.withdraw_application(
                withdrawing, application_id=app.id, actor="cust-C0001", business_date=ON, now=world.now
            )
            withdrawing.commit()
        with pytest.raises(service.ApplicationChanged) as caught:
            service.record_decision(
                deciding,
                application_id=app.id,
                outcome="approve",
                limit=D("20000.00"),
                annual_rate=D("0.05"),
                reasons=[],
                decision_id="d-1",
                decided_by="engine",
                business_date=ON,
                now=world.now,
            )
        assert caught.value.code == "application_changed" and caught.value.http_status == 409
    assert world.application(app.id).status is origination.ApplicationStatus.WITHDRAWN


def test_a_duplicate_sent_while_the_first_is_decided_gets_its_response(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim of the key is the first write of the submission's own transaction: a duplicate
    sent meanwhile waits on the key and gets the first response back, replayed, and nothing is
    written twice."""
    world.consent("C0001")
    app = create_app(world.container)
    token = world.container.tokens.issue(customer("C0001"))
    key = uuid.uuid4().hex
    inside = threading.Event()
    original = service.submit_application

    def slow(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        view = original(*args, **kwargs)
        time.sleep(0.5)  # the second request arrives and waits on the key meanwhile
        return view

    monkeypatch.setattr(service, "submit_application", slow)
    responses: dict[str, httpx.Response] = {}

    def one(name: str) -> None:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.post(
                    "/v1/applications",
                    json=body(amount="20000.00"),
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )

        responses[name] = asyncio.run(go())

    first = threading.Thread(target=one, args=("first",))
    first.start()
    assert inside.wait(timeout=30)
    second = threading.Thread(target=one, args=("second",))
    second.start()
    first.join()
    second.join()
    a, b = responses["first"], responses["second"]
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in a.headers and b.headers["idempotent-replayed"] == "true"
    assert a.json() == b.json()
    assert applications(world) == 1


def test_a_refused_submission_leaves_its_key_free_for_a_retry(world: World) -> None:
    """A submission refused inside its transaction takes the claim of its key with it."""
    app = create_app(world.container)
    token = world.container.tokens.issue(customer("C0001"))
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            refused = await client.post("/v1/applications", json=body(amount="20000.00"), headers=headers)
            world.consent("C0001")
            retried = await client.post("/v1/applications", json=body(amount="20000.00"), headers=headers)
            return [refused, retried]

    refused, retried = asyncio.run(go())
    assert refused.status_code == 409 and refused.json()["code"] == "consent_required"
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert applications(world) == 1


@pytest.mark.parametrize("failing", ["building the write", "the commit"])
def test_a_failure_while_the_response_is_stored_leaves_the_key_free(
    world: World, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """A write whose claim commits apart (giving a consent): when storing its response fails,
    before the commit or in the commit's own statement (the write finding other than its one
    row), the claim is released with the work's rows, so that a retry with the same key runs
    again rather than finding it running for ever."""
    import dataclasses

    from creditfactory.api import idempotency
    from creditfactory.origination import consents

    app = create_app(world.container)
    token = world.container.tokens.issue(customer("C0001"))
    text = consents.consent_text(origination.ConsentKind.BUREAU_INQUIRY, language="zh")
    give = {
        "kind": "bureau_inquiry",
        "version": text.version,
        "language": "zh",
        "text_sha256": text.sha256,
        "channel": "h5",
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    original = idempotency.command_log.completion
    calls: list[int] = []

    def fails_once(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            if failing == "the commit":
                return dataclasses.replace(original(**kwargs), rows=2)
            raise RuntimeError("the response could not be stored")
        return original(**kwargs)

    monkeypatch.setattr(idempotency.command_log, "completion", fails_once)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            path = "/v1/customers/C0001/consents"
            return [await client.post(path, json=give, headers=headers) for _ in range(2)]

    failed, retried = asyncio.run(go())
    assert failed.status_code == 500
    assert retried.status_code == 201 and retried.json()["status"] == "given"
    assert "idempotent-replayed" not in retried.headers
