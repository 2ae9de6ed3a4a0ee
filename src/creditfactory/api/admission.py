"""Admission: how many requests a server process works on at once.

A request's work runs on the thread pool (40 threads) and on a pooled database connection, and
Python runs one thread at a time. Let every request in at once and, past the cores' capacity,
each one's work is cut into slices among all the others: every request takes as long as the
whole crowd, holds its connection and its transaction's row locks that long, and past the
connection pool's ten the process opens and closes connections of its own. The process then
does less work than it would at its capacity, at the moment more is asked of it.

:class:`Admission` lets ``limit`` requests in at a time and keeps the others waiting at the
door in the order they came (a request waiting there holds no thread and no connection), so
that the process keeps working at its capacity under any load and the wait shows as a queue
before the work rather than as slower work. A request holds its place until its response has
been sent, across every hop to the thread pool, so a request let in can always finish.

* A request that has waited ``wait_seconds`` is answered ``503 server_busy`` with
  ``Retry-After`` instead of being let in: past that its client has most likely given up.
* A request whose client hung up while it waited is dropped when its turn comes, unanswered
  and undone (the server tells by the connection, before the request's work starts).
* ``GET /health`` does not wait: a load balancer's probe asks whether the process is alive,
  not how busy it is. Nor does batch work that runs inside its request for minutes
  (``POST /v1/ingestions``, ``POST /v1/eod``): it would hold a place that long.

**Alone in its process.** Under a limit of one (the default on SQLite, and in each of several
server processes, ``serve --workers N``), an admitted request is the only one at work in its process, and the
thread pool has nothing to run beside it: :func:`off_loop` then runs the request's blocking
work (its database calls) on the event loop itself, as a synchronous worker process would,
instead of handing it to a worker thread and back. Each hand-over costs a queue put, a wake-up
and the interpreter's lock passed between two threads. Nothing else waits on the loop
meanwhile but requests that are not admitted yet, ``GET /health`` (answered when the work
ends) and the exempt batch requests, whose work runs on the thread pool as before. While such a
batch request is at work in the process, admitted requests go to the thread pool too: the
batch takes SQLite's writer turn for each of its transactions, and row locks, that a request
may have to wait for, and that wait must not stop the loop. A request that waits long on the
database otherwise keeps the loop waiting as long: a row lock another process's transaction
holds, or a server that cannot be reached (a new PostgreSQL connection gives up after
``db.engine.CONNECT_TIMEOUT_SECONDS``, 10 s).

The request's body is read after admission: behind a proxy that buffers request bodies (nginx
by default) that costs nothing; a server facing slow clients directly wants a higher limit.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditfactory.api.problems import problem

log = logging.getLogger("creditfactory.api")

#: Requests that never wait: (method, path), method ``*`` for any.
EXEMPT = frozenset({("*", "/health"), ("POST", "/v1/ingestions"), ("POST", "/v1/eod")})


def exempt(method: str, path: str) -> bool:
    return ("*", path) in EXEMPT or (method, path) in EXEMPT


#: True while the current request works alone in its process (admitted under a limit of one).
_alone: ContextVar[bool] = ContextVar("creditfactory_admitted_alone", default=False)

T = TypeVar("T")


async def off_loop(func: Callable[..., T], *args: Any) -> T:
    """Run the request's blocking ``func(*args)``: on the event loop when the request works
    alone in its process, else on the thread pool, so that a call that waits (a lock, a round
    trip) does not stop the other requests at work."""
    if _alone.get():
        return func(*args)
    return await run_in_threadpool(func, *args)


class Admission:
    """At most ``limit`` HTTP requests at work at once in this process, the others admitted in
    the order they arrived, each for at most ``wait_seconds`` (``limit`` 0: no limit)."""

    def __init__(self, app: ASGIApp, *, limit: int, wait_seconds: float = 10.0) -> None:
        if limit < 0:
            raise ValueError("the admission limit is a number of requests, 0 for none")
        if wait_seconds <= 0:
            raise ValueError("the admission wait is a number of seconds above 0")
        self.app = app
        self.limit = limit
        self.wait_seconds = wait_seconds
        # One semaphore per event loop (a process serves on one; a test may run several)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.waiting = 0  # requests at the door now
        self.working = 0  # requests let in and not finished
        self.refused = 0  # answered 503 after waiting too long
        self.dropped = 0  # their clients gone before their turn
        self.past_door = 0  # requests exempt from the limit at work now (batch work, health)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        return slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        past = exempt(scope["method"], scope["path"])
        if not self.limit or past:
            self.past_door += past
            # Never alone, said here too: a request can start in a copy of the context of the
            # one before it on its connection (uvicorn starts a pipelined request from there).
            alone = _alone.set(False)
            try:
                await self.app(scope, receive, send)
            finally:
                _alone.reset(alone)
                self.past_door -= past
            return
        slots = self._semaphore()
        self.waiting += 1
        try:
            # FIFO: waiters are woken in the order they came
            await asyncio.wait_for(slots.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            self.refused += 1
            await _busy(scope, receive, send, self.wait_seconds)
            return
        finally:
            self.waiting -= 1
        self.working += 1
        # Alone unless batch work past the door is at work: it takes SQLite's writer turn and
        # row locks this request may have to wait for, which the event loop must not wait for.
        # None can start meanwhile: the loop is this request's until it ends.
        alone = _alone.set(self.limit == 1 and not self.past_door)
        try:
            first = await receive()
            if first["type"] == "http.disconnect":
                self.dropped += 1
                log.info("%s %s dropped: its client left while it waited", scope["method"], scope["path"])
                return
            await self.app(scope, _replaying(first, receive), send)
        finally:
            _alone.reset(alone)
            self.working -= 1
            slots.release()


def _replaying(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` (already taken from the connection) once, then reads on."""
    pending: list[Message] = [first]

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again


async def _busy(scope: Scope, receive: Receive, send: Send, waited: float) -> None:
    response = problem(
        503,
        "server_busy",
        "Server busy",
        f"the request waited {waited:g} s for its turn; send it again "
        "(with the same Idempotency-Key where it has one)",
        scope.get("state", {}).get("request_id", ""),
        headers={"Retry-After": "1"},
    )
    await response(scope, receive, send)
