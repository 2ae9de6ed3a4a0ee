"""Idempotent writes over HTTP: the ``Idempotency-Key`` header and the command log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from creditfactory.api.admission import off_loop
from creditfactory.db import command_log
from creditfactory.db.reads import Along
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import InvalidInput
from creditfactory.security.roles import Principal


class MissingIdempotencyKey(InvalidInput):
    code = "idempotency_key_missing"
    http_status = 400
    title = "Idempotency-Key header required"


async def run_idempotent(
    request: Request,
    *,
    uow: UnitOfWork,
    principal: Principal,
    operation: str,
    now: Any,
    work: Callable[[], tuple[int, Any]],
    claim_apart: bool = True,
    along: Along | None = None,
) -> JSONResponse:
    """Run ``work`` once per (principal, operation, key); repeats get the stored response.

    With ``claim_apart`` the claim commits first, so that a duplicate sent meanwhile gets a
    conflict (409 ``idempotency_in_progress``) and work that commits through units of work of
    its own (an ingestion) does not wait on the claim's transaction. ``work`` then runs inside
    ``uow`` and returns (status, body); its writes in ``uow`` and the stored response commit
    together. If ``work`` raises, its writes are rolled back and the claim is released, so that
    a retry with the same key runs it again.

    Without ``claim_apart`` (for work that writes only in ``uow`` and is short: submitting an
    application and deciding it) the claim is the first write of the work's own transaction:
    one commit a request instead of two. A duplicate sent meanwhile waits on the claim's key
    until that transaction ends and then gets the stored response (or, when the first failed,
    runs the work itself); if ``work`` raises, the rollback takes the claim with it. ``along``
    is a read ``work`` asks first, sent with that claim (``command_log.begin``).
    """
    key = request.headers.get("idempotency-key")
    if not key:
        raise MissingIdempotencyKey(f"{operation} needs an Idempotency-Key header so that a retry is safe")
    if len(key) > 128:
        raise InvalidInput("Idempotency-Key is longer than 128 characters")
    req_hash = command_log.request_hash(await request.body())

    # Every database call runs in the thread pool, not on the event loop: a call that waits
    # (SQLite's write lock, a PostgreSQL row lock, a round trip) would stop every other request
    # meanwhile, and on SQLite the holder of the lock could never get back to commit. Unless
    # the request works alone in its process, with no other request to stop (api.admission).
    def claim() -> command_log.StoredResult | None:
        try:
            stored = claim_only()
        except BaseException:
            uow.rollback()  # a refused claim (in progress, key reused) ends its transaction here
            raise
        if stored is None:
            uow.commit()
        else:
            uow.rollback()  # a replay: nothing was written; SQLite's turn is not held while sending
        return stored

    def run() -> tuple[int, Any]:
        try:
            status, body = work()
            # storing the response writes the work's last rows and commits: a failure there
            # releases the claim as well, or every retry would find it running
            return finish(status, body)
        except BaseException:
            uow.rollback()
            command_log.release(uow.session, principal_id=principal.id, operation=operation, key=key)
            uow.commit()
            raise

    def finish(status: int, body: Any) -> tuple[int, Any]:
        # rendered once, as JSONResponse would: the same text is stored and sent
        rendered = json.dumps(
            body, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=jsonable_encoder
        )
        # the commit writes the stored response with the work's last rows: one statement
        uow.commit(
            last=command_log.completion(
                principal_id=principal.id,
                operation=operation,
                key=key,
                status=status,
                body=None,
                rendered=rendered,
                now=now,
            )
        )
        return status, rendered

    def claim_only(along: Along | None = None) -> command_log.StoredResult | None:
        return command_log.begin(
            uow.session,
            principal_id=principal.id,
            operation=operation,
            key=key,
            req_hash=req_hash,
            now=now,
            along=along,
        )

    def claim_and_run() -> tuple[int, Any, bool]:
        stored = claim()
        if stored is not None:
            return stored.status, stored.body, True
        return (*run(), False)

    def claim_within_and_run() -> tuple[int, Any, bool]:
        try:
            stored = claim_only(along)
            if stored is not None:
                uow.rollback()
                return stored.status, stored.body, True
            status, body = work()
        except BaseException:
            uow.rollback()  # the claim goes with the work's writes
            raise
        return (*finish(status, body), False)

    # At most one hand-over to the thread pool per request: each costs the event loop a queue
    # put and a wake-up, which shows under load.
    status, encoded, replayed = await off_loop(claim_and_run if claim_apart else claim_within_and_run)
    if replayed:
        return JSONResponse(encoded, status_code=status, headers={"Idempotent-Replayed": "true"})
    return _Rendered(encoded.encode("utf-8"), status_code=status)


class _Rendered(JSONResponse):
    """A JSON response whose body is already rendered."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes)
        return content
