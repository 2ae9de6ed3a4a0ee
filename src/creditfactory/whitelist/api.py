"""HTTP routes of the whitelist: the customer's pre-approved offer and the list versions.

``GET /v1/customers/{id}/offer`` is what mobile banking calls to show the offer (a customer sees
only their own; staff need ``customer.read``). The versions are read by risk and operations
staff (``whitelist.mine`` or ``campaign.manage``).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Query

from creditfactory.api.deps import ClockDep, PrincipalDep, UowDep
from creditfactory.api.params import CustomerId, VersionId
from creditfactory.errors import PermissionDenied
from creditfactory.security.roles import Permission, PrincipalKind, require
from creditfactory.whitelist import service
from creditfactory.whitelist.schemas import OfferRead, VersionDetailRead, VersionPage, VersionRead
from creditfactory.whitelist.store import WhitelistVersion

router = APIRouter(prefix="/v1", tags=["whitelist"])


def offer_read(offer: service.Offer) -> OfferRead:
    rate_pct = f"{offer.annual_rate * 100:.2f}%"
    return OfferRead(
        customer_id=offer.customer_id,
        limit=offer.limit,
        annual_rate=offer.annual_rate,
        expiry_date=offer.expiry_date,
        status=offer.status.value,
        grade=offer.grade,
        version_id=offer.version_id,
        list_name=offer.list_name,
        as_of=offer.as_of,
        message_zh=(
            f"您已获得预授信额度 {offer.limit:,.2f} 元，年利率 {rate_pct}，"
            f"有效期至 {offer.expiry_date.isoformat()}。"
        ),
        message_en=(
            f"You are pre-approved for a credit line of CNY {offer.limit:,.2f} at {rate_pct} a year, "
            f"valid until {offer.expiry_date.isoformat()}."
        ),
    )


@router.get("/customers/{customer_id}/offer", response_model=OfferRead)
def get_offer(customer_id: CustomerId, uow: UowDep, clock: ClockDep, principal: PrincipalDep) -> OfferRead:
    """The customer's current pre-approved offer (404 ``no_offer`` when there is none)."""
    if principal.kind == PrincipalKind.CUSTOMER:
        if principal.customer_id != customer_id:
            raise PermissionDenied(
                f"customer principal {principal.id} may see only its own offer", principal_id=principal.id
            )
    else:
        require(principal, Permission.CUSTOMER_READ)
    on = service.offer_date(uow.session, clock=clock)
    return offer_read(service.current_offer(uow, customer_id=customer_id, on=on))


def _may_read_lists(principal: PrincipalDep) -> None:
    if not (principal.can(Permission.WHITELIST_MINE) or principal.can(Permission.CAMPAIGN_MANAGE)):
        raise PermissionDenied(
            f"{principal.id} may not read whitelists (needs whitelist.mine or campaign.manage)",
            principal_id=principal.id,
        )


def version_read(v: WhitelistVersion) -> VersionRead:
    return VersionRead(
        id=v.id,
        name=v.name,
        kind=v.kind,
        status=v.status.value,
        as_of=v.as_of,
        strategy_name=v.strategy_name,
        strategy_version=v.strategy_version,
        models=json.loads(v.models or "{}"),
        engine=v.engine,
        scored=v.scored,
        eligible=v.eligible,
        excluded=v.excluded,
        total_limit=v.total_limit,
        expiry_date=v.expiry_date,
        created_by=v.created_by,
        created_at=v.created_at,
        published_at=v.published_at,
        seconds=round(v.seconds, 3),
    )


@router.get("/whitelists", response_model=VersionPage)
def list_whitelists(
    uow: UowDep, principal: PrincipalDep, limit: int = Query(50, ge=1, le=500)
) -> VersionPage:
    """Whitelist versions, newest first."""
    _may_read_lists(principal)
    return VersionPage(items=[version_read(v) for v in service.list_versions(uow, limit=limit)])


@router.get("/whitelists/{version_id}", response_model=VersionDetailRead)
def get_whitelist(version_id: VersionId, uow: UowDep, principal: PrincipalDep) -> VersionDetailRead:
    """One version: counts and limits by segment, grade and branch, exclusions by reason, and
    how many of its offers are offered, applied, accepted, declined, exited or expired."""
    _may_read_lists(principal)
    v = service.get_version(uow, version_id=version_id)
    return VersionDetailRead(
        **version_read(v).model_dump(),
        summary=json.loads(v.summary or "{}"),
        entry_status=service.status_counts(uow, version_id=version_id),
    )
