"""Admission: at most ``limit`` requests at work at once in a process, the others admitted in the
order they came, ``/health`` never kept waiting."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditfactory.api.admission import Admission, _alone, off_loop
from creditfactory.api.app import create_app
from creditfactory.bootstrap import build
from creditfactory.config import Settings


class Gate:
    """An ASGI app that records when each request comes in and answers only when let go."""

    def __init__(self) -> None:
        self.inside: list[str] = []
        self.most = 0
        self.released: dict[str, asyncio.Event] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def let_go(self, name: str) -> None:
        """Answer ``name`` from another thread than the server's (once it has come in)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.released.setdefault(name, asyncio.Event()).set)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
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


def test_a_request_that_waits_too_long_is_answered_busy_and_never_runs() -> None:
    gate = Gate()
    admission = Admission(gate, limit=1, wait_seconds=0.05)

    async def go() -> httpx.Response:
        async with _client(admission) as client:
            first = asyncio.create_task(client.get("/slow"))
            await _settle()
            late = await client.get("/late")  # waits 0.05 s behind /slow, then gives up
            gate.released["slow"].set()
            assert (await first).status_code == 200
            return late

    late = asyncio.run(go())
    assert late.status_code == 503 and late.headers["retry-after"] == "1"
    assert late.headers["content-type"] == "application/problem+json"
    assert late.json()["code"] == "server_busy"
    assert gate.inside == ["slow"] and admission.refused == 1
    assert (admission.working, admission.waiting) == (0, 0)


def test_a_request_whose_client_left_while_it_waited_is_dropped_unanswered() -> None:
    """The server's connection says so when the request's turn comes (uvicorn answers a
    ``receive`` of a closed connection with ``http.disconnect``): its work never starts."""
    gate = Gate()
    admission = Admission(gate, limit=1)
    sent: list[dict[str, Any]] = []

    async def left() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        async with _client(admission) as client:
            first = asyncio.create_task(client.get("/busy"))
            await _settle()
            scope = {"type": "http", "method": "GET", "path": "/gone", "headers": []}
            gone = asyncio.create_task(admission(scope, left, send))
            await _settle()
            assert admission.waiting == 1
            gate.released["busy"].set()
            await first
            try:
                await asyncio.wait_for(gone, 2)
            finally:
                for event in gate.released.values():
                    event.set()

    asyncio.run(go())
    assert gate.inside == ["busy"] and sent == [] and admission.dropped == 1
    assert (admission.working, admission.waiting) == (0, 0)


def test_the_body_read_at_the_door_reaches_the_app() -> None:
    """Admission takes the request's first message to see whether its client is still there;
    the app then receives it as if nothing had read it."""
    seen: list[bytes] = []

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def go() -> httpx.Response:
        async with _client(Admission(echo, limit=1)) as client:
            return await client.post("/v1/applications", content=b'{"amount": "20000.00"}')

    r = asyncio.run(go())
    assert r.status_code == 200 and r.content == seen[0] == b'{"amount": "20000.00"}'


def test_batch_work_in_a_request_does_not_take_a_place() -> None:
    """An end of day or an ingestion runs inside its request for minutes: it goes past the
    door, and the customers' requests keep their places."""
    gate = Gate()
    admission = Admission(gate, limit=1)

    async def go() -> None:
        async with _client(admission) as client:
            eod = asyncio.create_task(client.post("/v1/eod"))
            ingestion = asyncio.create_task(client.post("/v1/ingestions"))
            await _settle()
            customer = asyncio.create_task(client.get("/v1/applications/1"))
            await _settle()
            assert gate.inside == ["v1/eod", "v1/ingestions", "v1/applications/1"]
            assert admission.working == 1  # the customer's request only
            for event in gate.released.values():
                event.set()
            await asyncio.gather(eod, ingestion, customer)

    asyncio.run(go())


def test_two_event_loops_each_admit_their_own_requests() -> None:
    """A process serves on one loop; a test may run the same app on two at once (threads)."""
    import threading

    gate_app = Gate()
    admission = Admission(gate_app, limit=1)
    answers: list[int] = []

    async def one(name: str) -> None:
        async with _client(admission) as client:
            task = asyncio.create_task(client.get(f"/{name}"))
            await _settle()
            gate_app.released[name].set()
            answers.append((await task).status_code)

    threads = [threading.Thread(target=lambda n=n: asyncio.run(one(n))) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert answers == [200, 200]


async def _where_work_runs(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering where :func:`off_loop` ran its work: ``loop`` or ``pool``."""
    ran_on = await off_loop(threading.get_ident)
    where = b"loop" if ran_on == threading.get_ident() else b"pool"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": where})


def test_a_request_alone_in_its_process_works_on_the_event_loop() -> None:
    """Under a limit of one nothing else is at work in the process: the request's blocking
    work runs where the request is, with no hand-over to a worker thread and back. Under any
    other limit, and for what goes past the door, it runs on the thread pool."""

    async def where(limit: int, method: str, path: str) -> str:
        async with _client(Admission(_where_work_runs, limit=limit)) as client:
            return (await client.request(method, path)).text

    def ask(limit: int, method: str = "POST", path: str = "/v1/applications") -> str:
        return asyncio.run(where(limit, method, path))

    assert ask(1) == "loop"
    assert ask(2) == "pool"  # a request waiting on the database leaves the loop to the other
    assert ask(0) == "pool"
    assert ask(1, "POST", "/v1/eod") == "pool"  # batch work past the door: minutes long
    assert ask(1, "GET", "/health") == "pool"
    assert asyncio.run(off_loop(threading.get_ident)) != threading.get_ident()  # outside a request


def test_a_request_past_the_door_is_never_alone_whatever_context_it_starts_in() -> None:
    """A request may start in a copy of the context of the one before it on its connection
    (uvicorn starts a pipelined request from the previous one's last send): an end of day
    started from an admitted request's context still works on the thread pool."""

    async def go() -> list[str]:
        async with _client(Admission(_where_work_runs, limit=1)) as client:
            _alone.set(True)  # as the admitted request before it left it
            return [(await client.post(path)).text for path in ("/v1/eod", "/v1/ingestions", "/health")]

    assert asyncio.run(go()) == ["pool", "pool", "pool"]


def test_while_batch_work_is_at_work_a_request_alone_goes_to_the_thread_pool() -> None:
    """An end of day over the API takes SQLite's writer turn for each of its transactions: a
    customer's request let in meanwhile waits for it on a worker thread, not on the loop (which
    would stop the end of day's own answers and the health checks)."""
    eod_may_end = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/v1/eod":
            await eod_may_end.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"eod"})
            return
        await _where_work_runs(scope, receive, send)

    admission = Admission(app, limit=1)

    async def go() -> list[str]:
        async with _client(admission) as client:
            before = (await client.post("/v1/applications")).text
            eod = asyncio.create_task(client.post("/v1/eod"))
            await _settle()
            during = (await client.post("/v1/applications")).text
            eod_may_end.set()
            await eod
            after = (await client.post("/v1/applications")).text
            return [before, during, after]

    assert asyncio.run(go()) == ["loop", "pool", "loop"]
    assert admission.past_door == 0


def test_requests_alone_in_turn_each_work_on_the_loop_and_all_get_through() -> None:
    """Eight requests at once under a limit of one: each in its turn, each on the loop."""

    async def go() -> list[str]:
        async with _client(Admission(_where_work_runs, limit=1)) as client:
            answers = await asyncio.gather(*(client.post(f"/r{k}") for k in range(8)))
            return [a.text for a in answers]

    assert asyncio.run(go()) == ["loop"] * 8


def test_a_negative_limit_or_no_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="admission limit"):
        Admission(Gate(), limit=-1)
    with pytest.raises(ValueError, match="admission wait"):
        Admission(Gate(), limit=1, wait_seconds=0)


def test_the_app_admits_as_many_requests_as_its_settings_say(tmp_path: Path) -> None:
    server = "postgresql+psycopg://cf@db.bank.internal/creditfactory"
    # one process on a database server: a request's wait on the database leaves it work
    assert Settings(data_dir=tmp_path / "var", database_url=server).admitted == 2
    # the others fill the cores meanwhile
    assert Settings(data_dir=tmp_path / "var", database_url=server, api={"processes": 2}).admitted == 1
    # SQLite (the default): nothing to wait on but the disk, one writer at a time
    assert Settings(data_dir=tmp_path / "var").admitted == 1
    assert Settings(data_dir=tmp_path / "var", api={"processes": 2, "concurrency": 3}).admitted == 3
    assert Settings(data_dir=tmp_path / "var", api={"concurrency": 0}).admitted == 0
    assert Settings(data_dir=tmp_path / "var", database_url=server, api={"concurrency": 4}).admitted == 4

    def admission_of(app: Any) -> tuple[Admission, list[str]]:
        layer, outside = app.build_middleware_stack(), []
        while not isinstance(layer, Admission):
            outside.append(type(layer).__name__)
            layer = layer.app  # Starlette's and FastAPI's own layers first
        return layer, outside

    c = build(Settings(data_dir=tmp_path / "var", api={"concurrency": 3, "admission_wait_seconds": 4}))
    try:
        admission, outside = admission_of(create_app(c))
        assert (admission.limit, admission.wait_seconds) == (3, 4)
        # inside the request ids (a 503 at the door names the request), outside the rest
        assert outside[-1] == "RequestIds"
    finally:
        c.close()


def test_a_request_refused_at_the_door_is_answered_with_its_request_id(tmp_path: Path) -> None:
    c = build(Settings(data_dir=tmp_path / "var", api={"concurrency": 1, "admission_wait_seconds": 0.05}))
    app = create_app(c)
    release = asyncio.Event()

    @app.get("/bench/slow")
    async def slow() -> dict[str, int]:
        await release.wait()
        return {"ok": 1}

    async def go() -> httpx.Response:
        async with _client(app) as client:
            first = asyncio.create_task(client.get("/bench/slow"))
            await _settle()
            late = await client.get("/bench/slow", headers={"X-Request-ID": "req-42"})
            release.set()
            await first
            return late

    try:
        late = asyncio.run(go())
    finally:
        c.close()
    assert late.status_code == 503 and late.headers["x-request-id"] == "req-42"
    assert late.json()["request_id"] == "req-42" and late.json()["code"] == "server_busy"


def test_behind_uvicorn_a_client_that_hangs_up_while_waiting_is_never_served() -> None:
    """The real server: a request waits behind a slow one, its client closes the connection,
    and when its turn comes the app is not called for it; the next client is served."""
    import socket
    import threading
    import time

    import uvicorn

    gate = Gate()
    admission = Admission(gate, limit=1)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))  # bound here and handed over: no port to race for
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(admission, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "the server did not start"

        def ask(path: str) -> socket.socket:
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(f"GET /{path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            return conn

        def until(check: Any) -> None:
            for _ in range(100):
                if check():
                    return
                time.sleep(0.02)
            raise AssertionError("the server did not get there")

        slow = ask("slow")
        until(lambda: gate.inside == ["slow"])
        gone = ask("gone")
        until(lambda: admission.waiting == 1)
        gone.close()  # hangs up while it waits
        time.sleep(0.2)  # the server sees the connection closed
        gate.let_go("slow")
        assert slow.recv(1024).startswith(b"HTTP/1.1 200")
        slow.close()
        until(lambda: admission.dropped == 1)
        later = ask("later")
        until(lambda: "later" in gate.inside)
        gate.let_go("later")
        assert later.recv(1024).startswith(b"HTTP/1.1 200")
        later.close()
        assert gate.inside == ["slow", "later"]  # /gone never reached the app
    finally:
        for name in list(gate.released):  # nothing left waiting: the server can stop
            gate.let_go(name)
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()
