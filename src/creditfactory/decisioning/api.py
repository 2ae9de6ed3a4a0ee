"""HTTP routes of the decision records (staff only: ``application.review``).

``GET /v1/decisions/{id}`` is one record as JSON: inputs (application fields, portrait row and
its as-of, facts), strategy and model versions, scores, rule hits with reasons in Chinese and
English, outcome, grade, limit, price, role and timings. ``GET /v1/applications/{id}/decision``
gives the record that decided an application and any shadow record beside it. Customers never
see these (403): what they are told is on their application.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from creditfactory.api.deps import PrincipalDep, UowDep
from creditfactory.decisioning import engine
from creditfactory.errors import PermissionDenied
from creditfactory.security.roles import Permission, Principal, PrincipalKind, require

router = APIRouter(prefix="/v1", tags=["decisioning"])

MAX_ID = 2**53
DecisionId = Annotated[int, Path(ge=1, le=MAX_ID, description="Decision id.")]
ApplicationId = Annotated[int, Path(ge=1, le=MAX_ID, description="Application id.")]


def staff_only(principal: Principal) -> None:
    if principal.kind == PrincipalKind.CUSTOMER:
        raise PermissionDenied(
            "decision records are for staff; a customer sees the outcome on the application",
            principal_id=principal.id,
        )
    require(principal, Permission.APPLICATION_REVIEW)


@router.get("/decisions/{decision_id}")
def get_decision(decision_id: DecisionId, uow: UowDep, principal: PrincipalDep) -> dict[str, Any]:
    """One decision record (staff with ``application.review``; 404 ``decision_not_found``)."""
    staff_only(principal)
    return engine.get_decision(uow, decision_id=decision_id).to_json()


@router.get("/applications/{application_id}/decision")
def get_application_decision(
    application_id: ApplicationId, uow: UowDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The record that decided the application (``decision``) and the other records of it
    (``shadow``: a challenger's or a champion's that did not move it)."""
    staff_only(principal)
    views = engine.decisions_of_application(uow, application_id=application_id)
    applied = next((v for v in views if v.applied), None)
    if applied is None:
        raise engine.DecisionNotFound(
            f"application {application_id} has no automated decision", application_id=application_id
        )
    return {"decision": applied.to_json(), "shadow": [v.to_json() for v in views if not v.applied]}


@router.get("/decisions")
def list_decisions(
    uow: UowDep,
    principal: PrincipalDep,
    role: Annotated[str | None, Query(pattern="^(champion|challenger)$")] = None,
    outcome: Annotated[str | None, Query(pattern="^(approve|decline|refer)$")] = None,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Decision summaries in id order (``after_id`` pages on)."""
    staff_only(principal)
    items = engine.list_decisions(uow, role=role, outcome=outcome, after_id=after_id, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_after_id": items[-1]["id"] if more and items else None}
