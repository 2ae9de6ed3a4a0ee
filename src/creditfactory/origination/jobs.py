"""End-of-day steps of origination, registered with :mod:`creditfactory.jobs`."""

from __future__ import annotations

from creditfactory.jobs import EodStep, StepContext, StepResult, registry
from creditfactory.origination import service


def expire_approvals(ctx: StepContext) -> StepResult:
    """Approvals not signed by their expiry date become ``expired`` (one transaction)."""
    with ctx.uow() as uow:
        n = service.expire_approvals(uow, business_date=ctx.business_date, now=ctx.clock.now())
        uow.commit()
    return StepResult(items=n)


STEPS = (EodStep("origination.expire_approvals", 55, expire_approvals, "Approvals not signed in time"),)


def register() -> None:
    for step in STEPS:
        registry.register(step)
