"""Fixtures of the origination tests: products, consents, offers, and a helper that applies.

The applicants are the factory bank's customers (``tests/factories.py``): C0001 张伟 born
1980-05-17, mobile 13812345678, and so on. Tests that need the bank's record of them take the
``bank`` fixture (the extract ingested); the others apply as customers the bank does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from creditfactory import origination
from creditfactory.bootstrap import Container
from creditfactory.db.uow import UnitOfWork
from creditfactory.events import OutboxMessage
from creditfactory.origination import consents, service
from creditfactory.origination.store import Application, ApplicationContact, ApplicationTransition, Consent
from creditfactory.security import idcard
from creditfactory.servicing import service as servicing
from creditfactory.servicing.model import load_products, sample_products_dir
from creditfactory.whitelist.store import WhitelistEntry
from tests.factories import bank_extract
from tests.whitelist.conftest import ON, bank, lines, publish  # noqa: F401  (fixtures)

D = Decimal

#: The factory bank's customers by id: (name, ID number, phone).
CUSTOMERS: dict[str, tuple[str, str, str]] = {
    row["customer_id"]: (row["name"], row["id_number"], row["phone"]) for row in bank_extract()["customers"]
}

#: A valid ID number of a 17-year-old on :data:`ON`.
MINOR_ID = idcard.make("330521", date(2008, 7, 2), 15)


def applicant(customer_id: str, **changes: str) -> service.Applicant:
    name, number, mobile = CUSTOMERS[customer_id]
    return replace(service.Applicant(name=name, id_number=number, phone=mobile), **changes)


def request(customer_id: str = "C0001", **changes: Any) -> service.ApplicationRequest:
    base = service.ApplicationRequest(
        customer_id=customer_id,
        channel=origination.Channel.APP,
        product_code="consumer_equal_installment",
        amount=D("20000.00"),
        term_months=12,
        purpose=origination.Purpose.HOME_RENOVATION,
        applicant=applicant(customer_id),
        device=service.Device(fingerprint=f"dev-{customer_id}", os="Android 14", model="HUAWEI P60"),
        ip="10.20.30.40",
        declared_annual_income=D("96000.00"),
        lat=30.55,
        lon=119.98,
        contacts=(service.Contact(name="王芳", phone="13900001111", relation=origination.Relation.SPOUSE),),
    )
    return replace(base, **changes)


@dataclass
class World:
    """The container with the sample products defined, and shortcuts for what tests do."""

    container: Container
    now_calls: list[Any] = field(default_factory=list)

    @property
    def now(self) -> Any:
        return self.container.clock.now()

    def consent(self, customer_id: str, *kinds: origination.ConsentKind) -> None:
        with self.container.uow() as uow:
            for kind in kinds or origination.REQUIRED_CONSENTS:
                text = consents.consent_text(kind, language="zh")
                consents.give_consent(
                    uow,
                    customer_id=customer_id,
                    kind=kind,
                    version=text.version,
                    language="zh",
                    text_sha256=text.sha256,
                    channel="app",
                    actor=f"cust-{customer_id}",
                    business_date=ON,
                    now=self.now,
                )
            uow.commit()

    def submit_in(
        self, uow: UnitOfWork, customer_id: str = "C0001", **changes: Any
    ) -> service.ApplicationView:
        """Submit the customer's application within ``uow``, left to the caller to commit."""
        return service.submit_application(
            uow,
            request=request(customer_id, **changes),
            catalogue=self.container.catalogue,
            vault=self.container.vault,
            actor=f"cust-{customer_id}",
            business_date=ON,
            now=self.now,
        )

    def submit(self, customer_id: str = "C0001", **changes: Any) -> service.ApplicationView:
        with self.container.uow() as uow:
            view = self.submit_in(uow, customer_id, **changes)
            uow.commit()
        return view

    def decide(self, application_id: int, outcome: str, **changes: Any) -> service.ApplicationView:
        args: dict[str, Any] = {
            "limit": D("30000.00") if outcome == "approve" else None,
            "annual_rate": D("0.0435") if outcome == "approve" else None,
            "reasons": ["A_GRADE_B"] if outcome == "approve" else ["D_SCORE_LOW"],
            "decision_id": f"dec-{application_id}-{outcome}",
            "decided_by": "decisioning",
            "business_date": ON,
            "now": self.now,
        }
        args.update(changes)
        with self.container.uow() as uow:
            view = service.record_decision(uow, application_id=application_id, outcome=outcome, **args)
            uow.commit()
        return view

    def application(self, application_id: int) -> service.ApplicationView:
        with self.container.uow() as uow:
            return service.get_application(uow, application_id=application_id)

    def events(self, prefix: str = "origination.") -> list[tuple[str, dict[str, Any]]]:
        import json

        with self.container.uow() as uow:
            rows = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.name.like(f"{prefix}%")).order_by(OutboxMessage.id)
            ).all()
            return [(r.name, json.loads(r.payload)) for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows in every table a request of origination may write."""
        from creditfactory.db.command_log import CommandLog
        from creditfactory.security.audit import AccessRecord

        tables = {
            "applications": Application,
            "contacts": ApplicationContact,
            "transitions": ApplicationTransition,
            "consents": Consent,
            "outbox": OutboxMessage,
            "command_log": CommandLog,
            "audit": AccessRecord,
        }
        with self.container.uow() as uow:
            out = {
                k: int(uow.session.scalar(select(func.count()).select_from(t)) or 0)
                for k, t in tables.items()
            }
            out["entries_not_offered"] = int(
                uow.session.scalar(
                    select(func.count()).select_from(WhitelistEntry).where(WhitelistEntry.status != "offered")
                )
                or 0
            )
            return out

    def entry_status(self, customer_id: str) -> str:
        with self.container.uow() as uow:
            status = uow.session.scalar(
                select(WhitelistEntry.status).where(WhitelistEntry.customer_id == customer_id)
            )
            return str(getattr(status, "value", status))


@pytest.fixture
def world(container: Container) -> World:
    with container.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            servicing.define_product(uow.session, product, clock=container.clock)
        uow.commit()
    return World(container)


@pytest.fixture
def offered(world: World, publish: Any) -> World:  # noqa: F811
    """C0001 and C0002 hold pre-approved offers of 50,000 at 4.35% (whitelist version published)."""
    publish(
        lines(
            [
                ("C0001", "eligible", "A", 50_000, 435),
                ("C0002", "eligible", "B", 30_000, 650),
                ("C0003", "excluded", "X_KYC", None, None),
            ]
        )
    )
    return world
