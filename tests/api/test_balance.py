"""Connection balance among server processes (``creditfactory.api.balance``); the processes of
``creditfactory serve --workers`` settling their connections is in ``tests/cli/test_cli.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from creditfactory.api.balance import ConnectionBalance, over_share


@pytest.mark.parametrize(
    ("counts", "own", "over"),
    [
        ([6, 2], 6, True),
        ([2, 6], 2, False),
        ([5, 3], 5, True),  # share 4
        ([4, 4], 4, False),
        ([4, 3], 4, False),  # share 4 (7 rounded up): the odd one rests anywhere
        ([5, 2], 5, True),
        ([3, 3, 3], 3, False),
        ([4, 3, 2], 4, True),  # share 3
        ([6, -1], 6, False),  # the other process does not serve: nowhere to go
        ([6, -1, 0], 6, True),  # one serves with none: share 3
        ([1, 0], 1, False),  # share 1
    ],
)
def test_a_process_is_over_its_share_past_the_connections_divided_among_the_serving(
    counts: list[int], own: int, over: bool
) -> None:
    assert over_share(counts, own) is over


async def _answer(scope: dict[str, Any], _receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"Connection", b"keep-alive")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


def _served(balance: ConnectionBalance, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(balance(scope, receive, send))
    return sent


HTTP = {"type": "http", "http_version": "1.1", "method": "GET", "path": "/health", "headers": []}


class TestConnectionBalance:
    def test_a_process_over_its_share_closes_the_connection_it_answers(self) -> None:
        counts = [5, 2]
        held = [6]
        balance = ConnectionBalance(_answer, counts=counts, slot=0, connections=lambda: held[0])
        start, body = _served(balance, HTTP)
        assert start["status"] == 201
        # one connection header, close, in place of the app's keep-alive; the rest kept
        assert [(k, v) for k, v in start["headers"] if k.lower() == b"connection"] == [
            (b"connection", b"close")
        ]
        assert (b"content-type", b"application/json") in start["headers"]
        assert body == {"type": "http.response.body", "body": b"{}"}
        assert balance.closed == 1

    def test_a_process_at_its_share_keeps_its_connections_and_writes_its_count(self) -> None:
        counts = [3, 4]
        held = [3]
        balance = ConnectionBalance(_answer, counts=counts, slot=0, connections=lambda: held[0])
        held[0] = 4  # one more came since: counted at the answer
        start, _ = _served(balance, HTTP)
        assert counts == [4, 4]
        assert (b"Connection", b"keep-alive") in start["headers"]
        assert balance.closed == 0

    def test_a_request_answered_before_its_body_was_read_keeps_its_connection(self) -> None:
        """As a 503 at the admission door is: closing then could reset the connection before
        the client reads the answer."""
        counts = [6, 2]
        balance = ConnectionBalance(_answer, counts=counts, slot=0, connections=lambda: 6)
        with_body = {**HTTP, "headers": [(b"content-length", b"120")]}
        start, _ = _served(balance, with_body)
        assert (b"Connection", b"keep-alive") in start["headers"]
        assert balance.closed == 0

        async def reads_then_answers(scope: dict[str, Any], receive: Any, send: Any) -> None:
            while (await receive()).get("more_body"):
                pass
            await _answer(scope, receive, send)

        balance = ConnectionBalance(reads_then_answers, counts=counts, slot=0, connections=lambda: 6)
        start, _ = _served(balance, with_body)
        assert (b"connection", b"close") in start["headers"]
        chunked = {**HTTP, "headers": [(b"transfer-encoding", b"chunked")]}
        start, _ = _served(ConnectionBalance(_answer, counts=counts, slot=0, connections=lambda: 6), chunked)
        assert (b"Connection", b"keep-alive") in start["headers"]

    @pytest.mark.parametrize("version", ["1.0", "2"])
    def test_an_http_1_0_or_2_request_or_another_scope_passes_untouched(self, version: str) -> None:
        counts = [6, 2]
        balance = ConnectionBalance(_answer, counts=counts, slot=0, connections=lambda: 6)
        start, _ = _served(balance, {**HTTP, "http_version": version})
        assert (b"Connection", b"keep-alive") in start["headers"]
        seen: list[str] = []

        async def lifespan(scope: dict[str, Any], _receive: Any, _send: Any) -> None:
            seen.append(scope["type"])

        asyncio.run(
            ConnectionBalance(lifespan, counts=counts, slot=0, connections=lambda: 6)(
                {"type": "lifespan"}, None, None
            )
        )
        assert seen == ["lifespan"]
        assert balance.closed == 0
