"""The product catalogue origination reads (its ``ProductCatalogue`` port), served from the
products defined in servicing (``creditfactory products load``, ``PUT /v1/products/{code}``).

A product's YAML holds one list rate; the price a decision may set is the range
``[rate_floor, rate_cap]`` given to the adapter (by default 0 to 24% a year, the rate above
which Chinese courts do not protect interest), widened to include the list rate.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from creditfactory.db import reference
from creditfactory.origination import ProductTerms
from creditfactory.servicing.model.product import LoanProduct
from creditfactory.servicing.store import Product


class ServicingCatalogue:
    def __init__(self, *, rate_floor: Decimal = Decimal("0"), rate_cap: Decimal = Decimal("0.24")) -> None:
        if not Decimal(0) <= rate_floor <= rate_cap < Decimal(1):
            raise ValueError("the catalogue needs 0 <= rate_floor <= rate_cap < 1")
        self.rate_floor = rate_floor
        self.rate_cap = rate_cap

    def product_terms(self, session: Session, *, code: str) -> ProductTerms | None:
        """The terms of product ``code`` as stored now (one read of its definition; a definition
        already seen is not parsed again)."""
        session.flush()  # as an ORM query would (a Core one on the connection does not flush by itself)
        conn = session.connection()
        definition: str | None = reference.cached(
            conn,
            ("servicing.product_definition", code),
            lambda: conn.execute(_DEFINITION, {"code": code}).scalar(),
        )
        if definition is None:
            return None
        return _parsed_terms(definition, self.rate_floor, self.rate_cap)


_DEFINITION = select(Product.definition).where(Product.code == bindparam("code"))


@lru_cache(maxsize=256)
def _parsed_terms(definition: str, rate_floor: Decimal, rate_cap: Decimal) -> ProductTerms:
    """A stored definition's terms, parsed once per distinct definition (the terms are frozen)."""
    product = LoanProduct.model_validate(json.loads(definition))
    return ProductTerms(
        code=product.code,
        name=product.name,
        min_amount=product.min_amount,
        max_amount=product.line_limit if product.revolving and product.line_limit else product.max_amount,
        terms=tuple(range(product.min_term, product.max_term + 1)),
        methods=tuple(m.value for m in product.methods),
        min_annual_rate=min(rate_floor, product.annual_rate),
        max_annual_rate=max(rate_cap, product.annual_rate),
        list_annual_rate=product.annual_rate,
        revolving=product.revolving,
        method_labels={m.value: m.label for m in product.methods},
        # None when the product sets no penalty rate: 1.5 × the contract's own rate then applies.
        penalty_annual_rate=product.penalty_rate,
        day_count=product.day_count.value,
    )
