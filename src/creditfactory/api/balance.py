"""Connection balance: the keep-alive connections spread evenly over the server processes.

``creditfactory serve --workers N`` listens with one ``SO_REUSEPORT`` socket a process, and the
kernel hands each new connection to a process by a hash of its addresses: at random, not by
load. A gateway or load balancer in front keeps a handful of connections open for hours, and a
handful falls unevenly: eight connections on two processes split four and four in only 70 of
256 draws, and six and two or worse in 74. The process with six then has three times the queue
of the other, and its requests wait three times as long, while the other has no more to do.

:class:`ConnectionBalance` evens them out. Each process writes how many connections it holds
into a slot of a small array the supervisor shares with every process (``-1`` for a process that
is not serving); when a process answers a request while it holds more than its fair share (the
connections of all the serving processes divided among them, rounded up), it asks the client to
close that connection (``Connection: close`` on the response, after which the server closes it).
The client opens a new one for its next request, which the kernel hands out again, to either
process; a process at or under its share keeps its connections. The spread settles within a few
requests a connection and then holds: with eight connections on two processes, at four and four
neither process is over its share. A connection closed so costs its client a new TCP handshake:
the answer is sent in full first, and only on a connection whose request was read to its end (a
request answered before its body was read, as a ``503 server_busy`` at the door is, keeps its
connection: closing it then could reset it before the client reads the answer). A client that
pipelines requests loses those it sent after the closing answer, as with any server that closes;
HTTP clients do not pipeline by default, and the API's writes carry idempotency keys.

HTTP/1.1 only: HTTP/1.0 connections close after each answer anyway, and HTTP/2 has no
``Connection`` header. A connection counts while it is open, whether or not a request is on it;
the API holds none open without requests (no WebSockets, no streams that last).
"""

from __future__ import annotations

from collections.abc import Callable, MutableSequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def over_share(counts: MutableSequence[int], own: int) -> bool:
    """Whether a process holding ``own`` connections holds more than its fair share, with
    ``counts`` the connections of every process (``-1``: not serving)."""
    serving = [n for n in counts if n >= 0]
    if len(serving) < 2:
        return False
    share = -(-sum(serving) // len(serving))  # rounded up: a remainder may rest anywhere
    return own > share


class ConnectionBalance:
    """ASGI middleware of one server process among several: ``counts[slot]`` is this process's
    connections (``connections()`` tells how many it holds now; the process writes it first once
    it listens), kept current at each answer; an answer of a process over its share closes its
    connection."""

    def __init__(
        self, app: ASGIApp, *, counts: MutableSequence[int], slot: int, connections: Callable[[], int]
    ) -> None:
        self.app = app
        self.counts = counts
        self.slot = slot
        self.connections = connections
        self.closed = 0  # connections this process asked its clients to close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("http_version") != "1.1":
            await self.app(scope, receive, send)
            return
        read = _bodiless(scope)  # the request read to its end

        async def receiving() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                read = True
            return message

        async def send_closing_when_over(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = self.connections()
                self.counts[self.slot] = own
                if read and over_share(self.counts, own):
                    self.closed += 1
                    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receiving, send_closing_when_over)


def _bodiless(scope: Scope) -> bool:
    """Whether the request has no body (no length or a length of 0, and not chunked)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return False
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return False
    return True
