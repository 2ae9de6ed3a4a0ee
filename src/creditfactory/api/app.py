"""The HTTP API: ``create_app(container)``.

Middleware gives every request an id (``X-Request-ID``, echoed back and written into audit
rows); every anticipated error becomes problem-details JSON (RFC 9457) with a stable ``code``;
a database that cannot be reached, or a connection to it lost mid-request, a 503
``database_unavailable`` with ``Retry-After`` (the request may be sent again, with its
idempotency key); an unexpected error a 500 problem naming the request id, never a stack trace.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditfactory import __version__
from creditfactory.api.admission import Admission
from creditfactory.api.problems import PROBLEM, problem
from creditfactory.bootstrap import Container
from creditfactory.errors import DomainError

log = logging.getLogger("creditfactory.api")


class RequestIds:
    """Gives every request an id (the caller's ``X-Request-ID`` when it is 1 to 64 characters),
    in ``request.state.request_id`` and the response's ``X-Request-ID``; an unexpected error
    becomes a 500 problem naming the id, logged with it.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs the rest of the request
    in a task of its own and streams the response through it, which costs every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if 0 < len(incoming) <= 64 else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # anything not mapped below: a 500 problem, logged with the id
            log.exception(
                "unhandled error in request %s %s (%s)", scope.get("method"), scope.get("path"), rid
            )
            if started:  # the response is on its way: nothing else can be sent
                raise
            response = problem(
                500, "internal_error", "Internal error", f"unexpected error; quote request id {rid}", rid
            )
            await response(scope, receive, send_with_id)


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="creditfactory",
        version=__version__,
        description="Digital lending for every bank: extracts, customers, decisions, loans.",
        docs_url="/docs" if container.settings.api.docs else None,
    )
    app.state.container = container

    # Inside the request ids (a request refused at the door is answered with its id), outside
    # everything else: a request waiting to be admitted holds nothing yet (see api.admission).
    api = container.settings.api
    app.add_middleware(Admission, limit=container.settings.admitted, wait_seconds=api.admission_wait_seconds)
    app.add_middleware(RequestIds)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        body = exc.to_problem()
        body["request_id"] = getattr(request.state, "request_id", "")
        # A 401 must say how to authenticate (RFC 9110 §15.5.2).
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(body, status_code=exc.http_status, media_type=PROBLEM, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(
            422,
            "invalid_request",
            "Invalid request",
            detail,
            getattr(request.state, "request_id", ""),
            errors=errors,
        )

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A connection lost (or renewed, see db.engine) mid-request: the transaction was rolled
        # back, or, lost in its COMMIT, may have been written, which the same idempotency key
        # answers. No connection to be had at all (the server down or refusing): nothing was
        # done. Any other database error is a 500.
        unreachable = isinstance(exc, OperationalError) and exc.statement is None
        if not (exc.connection_invalidated or unreachable):
            raise exc
        rid = getattr(request.state, "request_id", "")
        log.warning(
            "database unavailable in request %s %s (%s): %s", request.method, request.url.path, rid, exc
        )
        return problem(
            503,
            "database_unavailable",
            "Database unavailable",
            "the database could not be reached, or the connection to it was lost or renewed during "
            "the request; send it again (with the same Idempotency-Key where it has one)",
            rid,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(
            exc.status_code, code, str(exc.detail), str(exc.detail), getattr(request.state, "request_id", "")
        )

    from creditfactory.api import system
    from creditfactory.console import decisions as console_decisions
    from creditfactory.contract import api as contract_api
    from creditfactory.decisioning import api as decisioning_api
    from creditfactory.origination import api as origination_api
    from creditfactory.servicing import api as servicing_api
    from creditfactory.whitelist import api as whitelist_api

    # Routers are matched in the order included, each route's pattern tried in turn: the
    # customers' API first, where the traffic is (no two routers have paths that overlap, so
    # the order changes no route's meaning).
    app.include_router(origination_api.router)
    app.include_router(system.router)
    app.include_router(contract_api.router)
    app.include_router(servicing_api.router)
    app.include_router(whitelist_api.router)
    app.include_router(decisioning_api.router)
    app.include_router(console_decisions.router)
    return app
