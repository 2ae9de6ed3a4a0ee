"""Health, version and the staff audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import text

from creditfactory import __version__
from creditfactory.api.deps import ContainerDep, PrincipalDep, UowDep
from creditfactory.api.params import PLAIN_TEXT
from creditfactory.db import migrate
from creditfactory.security.audit import list_access
from creditfactory.security.roles import Permission, require

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str
    database: str
    schema_revision: str | None
    schema_current: bool
    admitted: int = Field(
        description="Requests this server process works on at once (0: no limit); the others wait at the door"
    )


@router.get("/health", response_model=Health, tags=["system"])
def health(container: ContainerDep) -> Health:
    with container.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    revision = migrate.current(container.engine)
    return Health(
        status="ok",
        version=__version__,
        database=container.engine.dialect.name,
        schema_revision=revision,
        schema_current=revision == migrate.head(),
        admitted=container.settings.admitted,
    )


class AccessRead(BaseModel):
    at: datetime
    principal_id: str
    roles: str
    action: str
    subject_type: str
    subject_id: str
    fields: str
    unmasked: bool
    purpose: str
    request_id: str | None


@router.get("/v1/audit/access", response_model=list[AccessRead], tags=["security"])
def audit_access(
    uow: UowDep,
    principal: PrincipalDep,
    subject_id: Annotated[str | None, Query(max_length=64, pattern=PLAIN_TEXT)] = None,
    principal_id: Annotated[str | None, Query(max_length=64, pattern=PLAIN_TEXT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AccessRead]:
    """Who read which customer's data, when and why (auditors and administrators)."""
    require(principal, Permission.AUDIT_READ)
    rows = list_access(uow.session, subject_id=subject_id, principal_id=principal_id, limit=limit)
    return [AccessRead.model_validate(r, from_attributes=True) for r in rows]
