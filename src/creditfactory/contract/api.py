"""HTTP routes of the contract domain: declarations, ingestion runs, customer records."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request

from creditfactory.api.deps import ContainerDep, PrincipalDep, RequestIdDep, UowDep
from creditfactory.api.idempotency import run_idempotent
from creditfactory.api.params import PLAIN_TEXT, CustomerId, RunId
from creditfactory.contract import service
from creditfactory.contract.ingest import IngestSettings
from creditfactory.contract.schemas import (
    ColumnRead,
    CustomerRead,
    IngestFileRead,
    IngestionCreate,
    IngestionResultRead,
    IngestRunRead,
    TableRead,
)
from creditfactory.contract.tables import TABLES
from creditfactory.errors import InvalidInput
from creditfactory.security.roles import Permission, require

router = APIRouter(prefix="/v1", tags=["contract"])


@router.get("/contract/tables", response_model=list[TableRead])
def list_tables() -> list[TableRead]:
    """The data contract: every extract table a bank hands over, with its columns and checks."""
    return [
        TableRead(
            name=t.name,
            description=t.description,
            key=list(t.key),
            operational=t.operational,
            large=t.large,
            columns=[
                ColumnRead(
                    name=c.name,
                    type=str(c.type),
                    description=c.description,
                    required=c.required,
                    codes=list(c.codes),
                    pii=c.pii,
                )
                for c in t.columns
            ],
        )
        for t in TABLES
    ]


@router.post("/ingestions", response_model=IngestionResultRead, status_code=201)
async def create_ingestion(
    body: IngestionCreate, request: Request, container: ContainerDep, uow: UowDep, principal: PrincipalDep
):  # type: ignore[no-untyped-def]
    """Validate and load the extract files in a folder of the server's inbox.

    Needs an ``Idempotency-Key``: a retry returns the first result.
    """
    require(principal, Permission.CONTRACT_INGEST)
    inbox = (container.data_dir / "inbox").resolve()
    target = (inbox / body.directory).resolve()
    if not target.is_relative_to(inbox):
        raise InvalidInput(f"directory must lie inside the inbox {inbox}", directory=body.directory)

    def work() -> tuple[int, object]:
        result = service.ingest_directory(
            directory=Path(target),
            uow_factory=container.sessions,
            clock=container.clock,
            vault=container.vault,
            settings=IngestSettings(
                lake=container.lake_dir,
                reject_root=container.reject_dir,
                batch_rows=container.settings.ingest.batch_rows,
                timezone=container.settings.timezone,
            ),
        )
        return 201, result.to_json()

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation="contract.ingest",
        now=container.clock.now(),
        work=work,
    )


@router.get("/ingestions", response_model=list[IngestRunRead])
def list_ingestions(
    uow: UowDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[IngestRunRead]:
    require(principal, Permission.CONTRACT_INGEST)
    return [
        IngestRunRead.model_validate(r, from_attributes=True) for r in service.list_runs(uow, limit=limit)
    ]


@router.get("/ingestions/{run_id}", response_model=IngestRunRead)
def get_ingestion(run_id: RunId, uow: UowDep, principal: PrincipalDep) -> IngestRunRead:
    require(principal, Permission.CONTRACT_INGEST)
    run, files = service.get_run(uow, run_id=run_id)
    read = IngestRunRead.model_validate(run, from_attributes=True)
    read.files = [IngestFileRead.model_validate(f, from_attributes=True) for f in files]
    return read


@router.get("/customers/{customer_id}", response_model=CustomerRead, tags=["customers"])
def get_customer(
    customer_id: CustomerId,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    purpose: Annotated[str, Query(max_length=200, pattern=PLAIN_TEXT)] = "service",
) -> CustomerRead:
    """A customer's record. Personal data is masked unless the role may see it; every read is audited."""
    view = service.view_customer(
        uow,
        vault=container.vault,
        principal=principal,
        customer_id=customer_id,
        purpose=purpose,
        now=container.clock.now(),
        request_id=request_id,
    )
    uow.commit()
    return CustomerRead(**dataclasses.asdict(view))
