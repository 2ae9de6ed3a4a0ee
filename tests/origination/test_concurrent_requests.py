"""Concurrent submissions through one app: the idempotent write path waits for the database
on the event loop only when the request works alone in its process (admitted one at a time,
api.admission), so on SQLite the writer holding the lock gets back to commit while the others
wait their turn."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from creditfactory.api import create_app
from creditfactory.bootstrap import Container
from creditfactory.origination import service
from tests.origination.conftest import CUSTOMERS, World
from tests.origination.test_api import body, customer


def _admitting(container: Container, admitted: int) -> Container:
    """The container with its API admitting ``admitted`` requests at once in a process."""
    api = container.settings.api.model_copy(update={"concurrency": admitted})
    return dataclasses.replace(container, settings=container.settings.model_copy(update={"api": api}))


@pytest.mark.parametrize("admitted", [1, 2])
def test_concurrent_submissions_all_commit_promptly(world: World, admitted: int, monkeypatch: Any) -> None:
    """Admitted two at a time, each submission's work runs on the thread pool; one at a time
    (each of several server processes), on the event loop. Either way all commit."""
    ids = list(CUSTOMERS)[:6]
    for cid in ids:
        world.consent(cid)
    app = create_app(_admitting(world.container, admitted))
    tokens = {cid: world.container.tokens.issue(customer(cid)) for cid in ids}
    submitted_on: list[int] = []
    submit = service.submit_application

    def recording(*args: Any, **kwargs: Any) -> Any:
        submitted_on.append(threading.get_ident())
        return submit(*args, **kwargs)

    monkeypatch.setattr(service, "submit_application", recording)
    loop_thread: list[int] = []

    async def go() -> list[httpx.Response]:
        loop_thread.append(threading.get_ident())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://creditfactory.test") as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/applications",
                        json=body(cid),
                        headers={
                            "Authorization": f"Bearer {tokens[cid]}",
                            "Idempotency-Key": uuid.uuid4().hex,
                        },
                    )
                    for cid in ids
                )
            )

    t0 = time.perf_counter()
    responses = asyncio.run(go())
    elapsed = time.perf_counter() - t0
    assert [r.status_code for r in responses] == [201] * len(ids), [r.text[:200] for r in responses]
    assert sorted(r.json()["customer_id"] for r in responses) == sorted(ids)
    assert world.counts()["applications"] == len(ids)
    assert elapsed < 10, elapsed  # a lock held across the event loop waits out the 30 s busy timeout
    on_loop = [thread == loop_thread[0] for thread in submitted_on]
    assert on_loop == [admitted == 1] * len(ids)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("admitted", [1, 2])
def test_a_replay_ends_its_transaction_before_it_answers(world: World, admitted: int) -> None:
    """On SQLite every transaction takes the write lock: a replayed submission must give it
    back before its answer goes out, not when the request's unit of work is torn down after it."""
    import sqlite3

    from sqlalchemy.engine import make_url

    cid = next(iter(CUSTOMERS))
    world.consent(cid)
    database = make_url(str(world.container.engine.url)).database
    assert database, "a SQLite file database"
    app = create_app(_admitting(world.container, admitted))
    locked_when_answering: list[bool] = []

    async def probing(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        async def probe(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                other = sqlite3.connect(database, timeout=0)
                try:
                    other.execute("BEGIN IMMEDIATE")
                    other.rollback()
                    locked_when_answering.append(False)
                except sqlite3.OperationalError:
                    locked_when_answering.append(True)
                finally:
                    other.close()
            await send(message)  # type: ignore[operator]

        await app(scope, receive, probe)

    headers = {
        "Authorization": f"Bearer {world.container.tokens.issue(customer(cid))}",
        "Idempotency-Key": uuid.uuid4().hex,
    }

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=probing)
        async with httpx.AsyncClient(transport=transport, base_url="http://creditfactory.test") as client:
            first = await client.post("/v1/applications", json=body(cid), headers=headers)
            again = await client.post("/v1/applications", json=body(cid), headers=headers)
            return [first, again]

    first, again = asyncio.run(go())
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert locked_when_answering == [False, False]
