"""End-of-day steps of the whitelist, registered with :mod:`creditfactory.jobs`."""

from __future__ import annotations

from creditfactory.jobs import EodStep, StepContext, StepResult, registry
from creditfactory.whitelist import service


def expire_offers(ctx: StepContext) -> StepResult:
    """Offers past their expiry date on the business date become ``expired`` (set-based)."""
    with ctx.uow() as uow:
        n = service.expire_offers(uow.session, on=ctx.business_date)
        uow.commit()
    return StepResult(items=n)


STEPS = (EodStep("whitelist.expire_offers", 60, expire_offers, "Pre-approved offers past expiry"),)


def register() -> None:
    for step in STEPS:
        registry.register(step)
