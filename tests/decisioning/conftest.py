"""A small hand-made bank for the decision facts, and helpers to make applicants.

The lake (written in the at-rest format, tokens in place of ID numbers and phones) holds the
relationship graph drawn below; ``*`` marks what is on the negative list.

::

    A*                                  (A's own ID number is listed)
    B --device dB*                      (B's phone is clean, its device listed)
    E --contact--> pF <--phone-- F*     (E lists F's phone; F's ID number is listed)
    C --device dC-- D --phone pD*       (C and D share a tablet; D's phone is listed)
    G --device dC                       (G also uses the tablet)
    H                                   (nobody near)
    I --ip 10.0.0.9-- J --ip 10.0.0.8-- K --phone pK*   (5 hops from I)
    S1..S5 --ip 10.9.9.9 (shared by five; S5's ID number is listed)

Loans: F has a written-off loan; K had a loan 95 days past due. The database holds the branches
and the customers' home coordinates for the location facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from creditfactory.bootstrap import Container
from creditfactory.contract import store as contract_store
from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning import Applicant, Contact
from tests.portrait.lakes import customer, write_lake

#: The instant the applications of the tests are made, and their business date.
AT = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)
DAY = date(2025, 7, 1)

#: Home branch B01 and a customer's home, for the distance worked example (see test_model).
BRANCH = (30.0, 120.0)
HOME = (30.5, 120.5)

PEOPLE = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "S1", "S2", "S3", "S4", "S5"]


def token(kind: str, who: str) -> str:
    return f"{kind}-{who}"


def device(
    cid: str, fingerprint: str, ip: str | None = None, first_seen: str = "2024-01-10"
) -> dict[str, Any]:
    return {
        "device_id": f"D{cid}{fingerprint}",
        "customer_id": cid,
        "fingerprint": fingerprint,
        "os": "android",
        "is_emulator": False,
        "is_rooted": False,
        "ip_address": ip,
        "first_seen_date": first_seen,
    }


def listed(n: int, kind: str, value: str) -> dict[str, Any]:
    return {
        "entry_id": f"N{n:03d}",
        "kind": kind,
        "value_token": value,
        "reason": "fraud",
        "listed_date": "2025-01-01",
        "source": "internal",
    }


def world_tables() -> dict[str, list[dict[str, Any]]]:
    customers = [
        customer(
            c,
            id_number_token=token("id", c),
            phone_token=token("phone", c),
            opened_date="2020-01-01",
            lat=HOME[0],
            lon=HOME[1],
        )
        for c in PEOPLE
    ]
    devices = [
        device("B", "dB"),
        device("C", "dC", first_seen="2024-03-01"),
        device("D", "dC", first_seen="2024-02-01"),
        device("G", "dC", first_seen="2024-05-01"),
        device("I", "dI", ip="10.0.0.9"),
        device("J", "dJ1", ip="10.0.0.9"),
        device("J", "dJ2", ip="10.0.0.8"),
        device("K", "dK", ip="10.0.0.8"),
        *[device(s, f"d{s}", ip="10.9.9.9") for s in ("S1", "S2", "S3", "S4", "S5")],
    ]
    contacts = [{"customer_id": "E", "contact_phone_token": token("phone", "F"), "relation": "friend"}]
    negative = [
        listed(1, "id_number", token("id", "A")),
        listed(2, "device", "dB"),
        listed(3, "id_number", token("id", "F")),
        listed(4, "phone", token("phone", "D")),
        listed(5, "phone", token("phone", "K")),
        listed(6, "id_number", token("id", "S5")),
    ]
    loans = [
        {
            "loan_id": "L-F",
            "customer_id": "F",
            "product": "consumer",
            "open_date": "2022-01-01",
            "maturity_date": "2023-01-01",
            "principal": Decimal("1000"),
            "annual_rate": Decimal("0.1"),
            "guarantee_type": "credit",
            "status": "written_off",
            "close_date": "2023-09-01",
        },
        {
            "loan_id": "L-K",
            "customer_id": "K",
            "product": "consumer",
            "open_date": "2022-01-01",
            "maturity_date": "2024-01-01",
            "principal": Decimal("1000"),
            "annual_rate": Decimal("0.1"),
            "guarantee_type": "credit",
            "status": "settled",
            "close_date": "2024-01-01",
        },
    ]
    performance = [
        {
            "loan_id": "L-K",
            "month": "2023-05-01",
            "balance": Decimal("500"),
            "dpd": 95,
            "overdue_amount": Decimal("300"),
        }
    ]
    return {
        "customers": customers,
        "devices": devices,
        "contacts": contacts,
        "negative_list": negative,
        "loans": loans,
        "loan_performance": performance,
    }


def write_world(lake: Path) -> Path:
    return write_lake(lake, world_tables())


def load_customers_into_db(container: Container, people: list[str] = PEOPLE) -> None:
    """The branch and the customers in the operational tables (coordinates, tokens)."""
    branches = contract_store.OPERATIONAL["branches"]
    customers = contract_store.OPERATIONAL["customers"]
    book = {"batch_id": 1, "row_hash": "x", "loaded_at": AT}
    with container.uow() as uow:
        conn = uow.session.connection()
        conn.execute(
            insert(branches),
            [
                {
                    "branch_id": "B01",
                    "branch_name": "营业部",
                    "region_code": "341523",
                    "address": None,
                    "lat": BRANCH[0],
                    "lon": BRANCH[1],
                    "opened_date": date(2000, 1, 1),
                    **book,
                }
            ],
        )
        conn.execute(
            insert(customers),
            [
                {
                    "customer_id": c,
                    "id_number_token": token("id", c),
                    "id_number_enc": "v1.x",
                    "name_enc": "v1.x",
                    "gender": "M",
                    "birth_date": date(1980, 1, 1),
                    "phone_token": token("phone", c),
                    "phone_enc": "v1.x",
                    "segment": "other",
                    "branch_id": "B01",
                    "manager_id": None,
                    "address_enc": None,
                    "lat": None if c == "H" else HOME[0],
                    "lon": None if c == "H" else HOME[1],
                    "kyc_status": "complete",
                    "marital_status": None,
                    "education": None,
                    "opened_date": date(2020, 1, 1),
                    "marketing_consent": True,
                    **book,
                }
                for c in people
            ],
        )
        uow.commit()


def applicant(who: str = "X", **kw: Any) -> Applicant:
    """An application by customer ``who`` with its own tokens (override anything)."""
    values: dict[str, Any] = {
        "id_number_token": token("id", who),
        "phone_token": token("phone", who),
        "applied_at": AT,
        "business_date": DAY,
        "customer_id": who if who in PEOPLE else None,
    }
    values.update(kw)
    if "contacts" in values:
        values["contacts"] = tuple(
            c if isinstance(c, Contact) else Contact(c, "friend") for c in values["contacts"]
        )
    return Applicant(**values)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture
def world(container: Container) -> Iterator[Container]:
    """The hand-made bank in the container's lake and database, graph not built yet."""
    write_world(container.lake_dir)
    load_customers_into_db(container)
    yield container


def build(container: Container, **settings: Any) -> None:
    from creditfactory import decisioning

    with container.uow() as uow:
        decisioning.build_graph(
            uow, lake=container.lake_dir, clock=container.clock, settings=decisioning.FactSettings(**settings)
        )
        uow.commit()


def facts(container: Container, app: Applicant, **settings: Any) -> dict[str, Any]:
    from creditfactory import decisioning

    uow: UnitOfWork
    with container.uow() as uow:
        return decisioning.gather(
            uow, applicant=app, portrait_row=None, settings=decisioning.FactSettings(**settings)
        ).values


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The decision tests' scorecard, trained once per session (``deciding.train_once``)."""
    from tests.decisioning.deciding import train_once

    return train_once(tmp_path_factory.mktemp("trained"))
