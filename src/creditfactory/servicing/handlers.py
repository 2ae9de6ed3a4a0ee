"""Servicing's reactions to other domains' events (outbox handlers, wired in the bootstrap).

``origination.contract.accepted`` → :class:`LineOpener`: the customer accepted the e-contract,
so servicing opens the credit line with the contract's limit, rate, term and repayment method,
then tells origination through its public service (``origination.application.line_opened``).
It runs in the dispatcher's transaction: the line, the application's move and the message's
delivered mark commit together. A redelivered event finds the line by its application id and
opens no second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.jobs import BusinessDateNotOpen, current_business_date
from creditfactory.origination import service as origination
from creditfactory.servicing import service


class _Joined(UnitOfWork):
    """The dispatcher's session seen as a unit of work: the dispatcher commits, not us."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __enter__(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("a joined unit of work is already open")


class LineOpener:
    """Open the credit line of an accepted contract (idempotent per application)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self, session: Session, event_id: str, payload: Mapping[str, Any]) -> None:
        application_id = int(payload["application_id"])
        try:
            on = current_business_date(session)
        except BusinessDateNotOpen:
            on = date.fromisoformat(str(payload["business_date"]))
        line, _ = service.open_line_for_contract(
            session,
            application_id=application_id,
            customer_id=str(payload["customer_id"]),
            product_code=str(payload["product_code"]),
            limit=Decimal(str(payload["limit"])),
            annual_rate=Decimal(str(payload["annual_rate"])),
            term_months=int(payload["term_months"]),
            repayment_method=str(payload["repayment_method"]),
            business_date=on,
            clock=self.clock,
        )
        origination.record_line_opened(
            _Joined(session),
            application_id=application_id,
            line_id=line.id,
            business_date=on,
            now=self.clock.now(),
        )
