"""Admission: how many requests a server process works on at once.

A request's work runs on the thread pool (40 threads) and on a pooled database connection, and
Python runs one thread at a time. Let every request in at once and, past the cores' capacity,
each one's work is cut into slices among all the others: every request takes as long as the
whole crowd, holds its connection and its transaction's row locks that long, and past the
connection pool's ten the process opens and closes connections of its own. The process then
does less work than it would at its capacity, at the moment more is asked of it.

:class:`Admission` lets ``limit`` requests in at a time and keeps the others waiting at the
door in the order they came (a request waiting there holds nothing: no thread, no connection),
so that the process keeps working at its capacity under any load and the wait shows as a queue
before the work rather than as slower work. A request holds its place until its response has
been sent, across every hop to the thread pool, so a request in can always finish.
``GET /health`` does not wait: a load balancer's probe asks whether the process is alive,
not how busy it is.

The request's body is read after admission: behind a proxy that buffers request bodies (nginx
by default) that costs nothing; a server facing slow clients directly wants a higher limit.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths that are never kept waiting.
EXEMPT = frozenset({"/health"})


class Admission:
    """At most ``limit`` HTTP requests at work at once in this process, the others admitted in
    the order they arrived (``limit`` 0: no limit)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        if limit < 0:
            raise ValueError("the admission limit is a number of requests, 0 for none")
        self.app = app
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waiting = 0  # requests at the door now
        self.working = 0  # requests admitted and not finished

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: a test client runs each session on a loop of its own.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.limit), loop
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        slots = self._semaphore()
        self.waiting += 1
        try:
            await slots.acquire()  # FIFO: waiters are woken in the order they came
        finally:
            self.waiting -= 1
        self.working += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.working -= 1
            slots.release()
