"""Typed dependencies for routers: the container, a unit of work, the clock, the principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from creditfactory.bootstrap import Container
from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Unauthenticated
from creditfactory.security.roles import Principal


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    with UnitOfWork(get_container(request).sessions) as uow:
        yield uow


def get_clock(request: Request) -> Clock:
    return get_container(request).clock


def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send 'Authorization: Bearer <token>' (creditfactory auth token issues one)")
    container = get_container(request)
    token = token.strip()
    if container.bank_tokens is not None and not token.startswith("cf1."):
        return container.bank_tokens.verify(token)
    return container.tokens.verify(token)


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


ContainerDep = Annotated[Container, Depends(get_container)]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
RequestIdDep = Annotated[str, Depends(request_id)]
