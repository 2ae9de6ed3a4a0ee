"""Typed dependencies for routers: the container, a unit of work, the clock, the principal.

They are ``async def``: none of them waits on anything (the unit of work opens no connection
until first used), so FastAPI calls them on the event loop instead of handing each to the
thread pool and back, which under load costs more than the dependency itself."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError

from creditfactory.api.admission import off_loop
from creditfactory.bootstrap import Container
from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Unauthenticated
from creditfactory.security.roles import Principal

log = logging.getLogger("creditfactory.api")


async def get_container(request: Request) -> Container:
    return _container(request)


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


#: Requests that change nothing (RFC 9110 §9.2.1): a read that ends well ends with a COMMIT.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work; left without a commit, it rolls back. A read (``GET``) that
    ends without an error and without a change held in the session commits instead: the same
    for the data, but psycopg forgets every statement prepared on the connection at a
    ``ROLLBACK``, and the next request there (a decision) would plan them all again. A read
    that writes (the staff-access audit) commits its writes itself, as it did: what a read
    leaves uncommitted is not expected to be thrown away."""
    uow = UnitOfWork(_container(request).sessions).__enter__()
    ended = False
    try:
        yield uow
        ended = True
    finally:
        session = uow.session
        if session.in_transaction():  # a round trip: off the loop unless alone (api.admission)
            read = ended and request.method in SAFE_METHODS
            if read and not (session.new or session.dirty or session.deleted):
                await off_loop(_commit_and_close, uow)
            else:
                await off_loop(uow.__exit__, None, None, None)
        else:
            uow.__exit__(None, None, None)


def _commit_and_close(uow: UnitOfWork) -> None:
    """End a read: its answer may be on its way already (FastAPI ends a request's dependencies
    after the response), and a read loses nothing when its COMMIT fails, so a database error
    here is logged, not raised."""
    try:
        uow.commit()
    except DBAPIError:
        log.warning("the COMMIT that ends a read failed; nothing was written", exc_info=True)
    finally:
        uow.__exit__(None, None, None)


async def get_clock(request: Request) -> Clock:
    return _container(request).clock


async def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send 'Authorization: Bearer <token>' (creditfactory auth token issues one)")
    container = _container(request)
    token = token.strip()
    if container.bank_tokens is not None and not token.startswith("cf1."):
        return container.bank_tokens.verify(token)
    return container.tokens.verify(token)


async def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


ContainerDep = Annotated[Container, Depends(get_container)]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
RequestIdDep = Annotated[str, Depends(request_id)]
