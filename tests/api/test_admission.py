"""Admission: at most ``limit`` requests at work at once in a process, the others admitted in the
order they came, ``/health`` never kept waiting."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditfactory.api.admission import Admission
from creditfactory.api.app import create_app
from creditfactory.bootstrap import build
from creditfactory.config import Settings


class Gate:
    """An ASGI app that records when each request comes in and answers only when let go."""

    def __init__(self) -> None:
        self.inside: list[str] = []
        self.most = 0
        self.released: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        name = scope["path"].strip("/")
        self.inside.append(name)
        now = sum(1 for n in self.inside if not self.released.setdefault(n, asyncio.Event()).is_set())
        self.most = max(self.most, now)
        await self.released[name].wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_requests_beyond_the_limit_wait_and_are_let_in_in_the_order_they_came() -> None:
    gate = Gate()
    admission = Admission(gate, limit=2)

    async def go() -> list[str]:
        async with _client(admission) as client:
            names = [f"r{k}" for k in range(6)]
            tasks = []
            for name in names:  # one after the other, so their order of arrival is known
                tasks.append(asyncio.create_task(client.get(f"/{name}")))
                await _settle()
            assert gate.inside == ["r0", "r1"]
            assert (admission.working, admission.waiting) == (2, 4)
            # the first two finish in the opposite order: the next in line comes in each time
            gate.released["r1"].set()
            await _settle()
            assert gate.inside == ["r0", "r1", "r2"]
            gate.released["r0"].set()
            await _settle()
            assert gate.inside == ["r0", "r1", "r2", "r3"]
            for name in names[2:]:
                gate.released.setdefault(name, asyncio.Event()).set()
            answers = await asyncio.gather(*tasks)
            assert [a.text for a in answers] == names
            assert (admission.working, admission.waiting) == (0, 0)
            return gate.inside

    assert asyncio.run(go()) == [f"r{k}" for k in range(6)]
    assert gate.most == 2


def test_health_is_not_kept_waiting_and_no_limit_lets_every_request_in() -> None:
    gate = Gate()
    admission = Admission(gate, limit=1)

    async def go() -> None:
        async with _client(admission) as client:
            first = asyncio.create_task(client.get("/busy"))
            await _settle()
            probe = asyncio.create_task(client.get("/health"))
            await _settle()
            assert gate.inside == ["busy", "health"]  # the probe went past the full door
            gate.released["health"].set()
            assert (await probe).status_code == 200
            gate.released["busy"].set()
            await first

    asyncio.run(go())

    open_door = Gate()
    unlimited = Admission(open_door, limit=0)

    async def crowd() -> None:
        async with _client(unlimited) as client:
            tasks = [asyncio.create_task(client.get(f"/c{k}")) for k in range(5)]
            await _settle()
            assert len(open_door.inside) == 5
            for event in open_door.released.values():
                event.set()
            await asyncio.gather(*tasks)

    asyncio.run(crowd())
    assert open_door.most == 5


def test_a_request_given_up_while_waiting_leaves_no_place_taken() -> None:
    gate = Gate()
    admission = Admission(gate, limit=1)

    async def go() -> None:
        async with _client(admission) as client:
            first = asyncio.create_task(client.get("/a"))
            await _settle()
            gone = asyncio.create_task(client.get("/b"))
            await _settle()
            assert admission.waiting == 1
            gone.cancel()  # the client hung up before its turn
            await _settle()
            assert (admission.working, admission.waiting) == (1, 0)
            gate.released["a"].set()
            await first
            later = asyncio.create_task(client.get("/c"))
            await _settle()
            assert gate.inside == ["a", "c"]  # the place is free again, and /b never ran
            gate.released["c"].set()
            await later

    asyncio.run(go())


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="admission limit"):
        Admission(Gate(), limit=-1)


def test_the_app_admits_as_many_requests_as_its_settings_say(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    assert settings.api.concurrency == 2

    def admission_of(app: Any) -> Admission:
        layer = app.build_middleware_stack()
        while not isinstance(layer, Admission):
            layer = layer.app  # Starlette's and FastAPI's own layers first
        # outside the request ids: a request at the door has nothing yet
        assert type(layer.app).__name__ == "RequestIds"
        return layer

    c = build(Settings(data_dir=tmp_path / "var", api={"concurrency": 3}))
    try:
        assert admission_of(create_app(c)).limit == 3
    finally:
        c.close()
