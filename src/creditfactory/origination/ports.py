"""What origination needs from outside systems, as protocols.

Origination sits upstream of servicing in the lifecycle and never imports it, yet an
application must fit a loan product. The product catalogue is therefore a port: servicing
provides the adapter (:class:`creditfactory.servicing.catalogue.ServicingCatalogue`), the
composition root wires it into the container, and tests may pass any object with this method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from creditfactory.origination.model import ProductTerms

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from creditfactory.db.uow import UnitOfWork

__all__ = ["ApplicationDecider", "ProductCatalogue"]


class ProductCatalogue(Protocol):
    """Loan products by code: amount bounds, terms, repayment methods and the rate range."""

    def product_terms(self, session: Session, *, code: str) -> ProductTerms | None:
        """The product's terms, or ``None`` when no product has this code."""
        ...


class ApplicationDecider(Protocol):
    """Decides a just-submitted application in the submission's transaction, so that the
    customer gets the answer in the response. Decisioning provides it (downstream of origination,
    which never imports it); the composition root wires it. It records the outcome through
    :func:`creditfactory.origination.record_decision`, or leaves the application ``submitted``
    when no automated decision can be made (e.g. no strategy is published)."""

    def __call__(self, uow: UnitOfWork, *, application_id: int, now: datetime) -> None: ...
