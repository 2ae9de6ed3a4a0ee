"""Concurrent submissions through one app: the idempotent write path never waits for the
database on the event loop, so on SQLite the writer holding the lock gets back to commit while
the others wait their turn in the thread pool."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from creditfactory.api import create_app
from tests.origination.conftest import CUSTOMERS, World
from tests.origination.test_api import body, customer


def test_concurrent_submissions_all_commit_promptly(world: World) -> None:
    ids = list(CUSTOMERS)[:6]
    for cid in ids:
        world.consent(cid)
    app = create_app(world.container)
    tokens = {cid: world.container.tokens.issue(customer(cid)) for cid in ids}

    async def go() -> list[httpx.Response]:
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
