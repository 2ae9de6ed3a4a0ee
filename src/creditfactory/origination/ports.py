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
    from sqlalchemy.orm import Session

__all__ = ["ProductCatalogue"]


class ProductCatalogue(Protocol):
    """Loan products by code: amount bounds, terms, repayment methods and the rate range."""

    def product_terms(self, session: Session, *, code: str) -> ProductTerms | None:
        """The product's terms, or ``None`` when no product has this code."""
        ...
