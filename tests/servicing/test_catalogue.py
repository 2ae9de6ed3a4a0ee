"""The product catalogue origination reads: the stored definition as it is now, parsed once."""

from __future__ import annotations

from decimal import Decimal

from creditfactory.bootstrap import Container
from creditfactory.servicing import service
from creditfactory.servicing.catalogue import ServicingCatalogue
from creditfactory.servicing.model import load_products, sample_products_dir


def test_terms_follow_the_stored_definition_and_a_definition_is_parsed_once(container: Container) -> None:
    product = load_products(sample_products_dir())["farmer_revolving_line"]
    catalogue = ServicingCatalogue()
    with container.uow() as uow:
        assert catalogue.product_terms(uow.session, code=product.code) is None
        service.define_product(uow.session, product, clock=container.clock)
        first = catalogue.product_terms(uow.session, code=product.code)
        assert first is not None and first.list_annual_rate == product.annual_rate
        assert catalogue.product_terms(uow.session, code=product.code) is first  # not parsed again
        dearer = product.model_copy(update={"annual_rate": product.annual_rate + Decimal("0.01")})
        service.define_product(uow.session, dearer, clock=container.clock)
        changed = catalogue.product_terms(uow.session, code=product.code)
        assert changed is not None and changed.list_annual_rate == dearer.annual_rate
        # another catalogue's price range is its own
        wide = ServicingCatalogue(rate_cap=Decimal("0.30")).product_terms(uow.session, code=product.code)
        assert wide is not None and wide.max_annual_rate == Decimal("0.30")
        uow.rollback()
