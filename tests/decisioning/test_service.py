"""``gather``: every fact of the schema, with its type, for known and unknown applicants; the
person and location facts; the income cross-check through a portrait row; timings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from creditfactory import decisioning
from creditfactory.bootstrap import Container
from creditfactory.decisioning import fact_schema
from creditfactory.decisioning.model import haversine_km
from tests.decisioning.conftest import BRANCH, HOME, applicant, build

TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float),
    "string": (str,),
    "bool": (bool,),
    "date": (date,),
}


def gather(
    container: Container, app: decisioning.Applicant, row: dict[str, Any] | None = None
) -> decisioning.Facts:
    with container.uow() as uow:
        return decisioning.gather(uow, applicant=app, portrait_row=row)


def assert_typed(values: dict[str, Any]) -> None:
    schema = fact_schema()
    assert list(values) == list(schema)
    for name, value in values.items():
        if value is not None:
            assert isinstance(value, TYPES[schema[name]]), (name, value)
            if schema[name] == "number":
                assert not isinstance(value, bool), name


class TestGather:
    def test_a_known_customer(self, world: Container) -> None:
        build(world)
        app = applicant(
            "C",
            device_fingerprint="dC",
            ip_address="10.3.3.3",
            lat=31.0,
            lon=121.0,
            is_rooted=True,
            declared_annual_income=Decimal("90000"),
        )
        row = {
            "as_of": date(2025, 6, 30),
            "payroll_avg_12m": 3000.0,
            "payroll_months_12m": 12,
            "annual_income_est": 40000.0,
        }
        result = gather(world, app, row)
        values = result.values
        assert_typed(values)
        assert values["customer_known"] is True
        assert values["phone_matches_customer"] is True
        assert values["id_matches_customer"] is True
        assert values["location_given"] is True
        # branch at 30N 120E, application at 31N 121E: the worked example of test_model
        assert values["distance_home_branch_km"] == pytest.approx(146.776, abs=0.001)
        assert values["distance_home_km"] == pytest.approx(haversine_km(31.0, 121.0, *HOME), abs=0.001)
        assert values["device_is_rooted"] is True and values["device_is_emulator"] is False
        assert values["graph_hops_to_negative"] == 3
        assert values["income_observed"] == 40000.0
        assert values["income_observed_source"] == "flows"
        assert values["income_overstated"] is True
        assert set(result.timings_ms) == {"velocity", "customer", "graph", "income", "total"}
        assert all(t >= 0 for t in result.timings_ms.values())
        assert result.timings_ms["total"] >= result.timings_ms["graph"]
        assert result.to_json()["facts"]["device_first_seen_date"] == "2024-02-01"

    def test_an_unknown_applicant_without_graph_or_location(self, container: Container) -> None:
        values = gather(container, applicant("Q")).values
        assert_typed(values)
        assert values["customer_known"] is False
        for name in (
            "phone_matches_customer",
            "id_matches_customer",
            "distance_home_branch_km",
            "distance_home_km",
        ):
            assert values[name] is None, name
        assert values["location_given"] is False
        assert values["graph_hops_to_negative"] is None
        assert values["graph_component_size"] == 1
        assert values["income_observed"] is None and values["income_declared"] is None
        assert values["device_negative"] is None

    def test_someone_else_s_phone_on_a_customer_s_application(self, world: Container) -> None:
        values = gather(world, applicant("C", phone_token="phone-D", lat=30.0, lon=120.0)).values
        assert values["phone_matches_customer"] is False
        assert values["id_matches_customer"] is True
        assert values["distance_home_branch_km"] == 0.0

    def test_missing_location_is_null_not_zero(self, world: Container) -> None:
        values = gather(world, applicant("C")).values
        assert values["distance_home_branch_km"] is None
        assert values["distance_home_km"] is None

    def test_no_home_coordinates_on_file(self, world: Container) -> None:
        values = gather(world, applicant("H", lat=BRANCH[0], lon=BRANCH[1])).values
        assert values["distance_home_branch_km"] == 0.0
        assert values["distance_home_km"] is None

    def test_a_customer_id_the_bank_does_not_hold(self, world: Container) -> None:
        values = gather(world, applicant("Q", customer_id="C-NOBODY", lat=30.0, lon=120.0)).values
        assert values["customer_known"] is False
        assert values["distance_home_branch_km"] is None

    def test_refuses_anything_but_an_applicant(self, container: Container) -> None:
        with container.uow() as uow, pytest.raises(decisioning.InvalidApplicant):
            decisioning.gather(uow, applicant={"id": "x"}, portrait_row=None)  # type: ignore[arg-type]


class TestRemember:
    def test_one_decision_transaction_keeps_application_and_graph(self, world: Container) -> None:
        build(world)
        app = applicant("Q", device_fingerprint="dC")
        with world.uow() as uow:
            decisioning.gather(uow, applicant=app, portrait_row=None)
            decisioning.record_seen(uow, applicant=app, application_ref="APP-1")
            decisioning.add_applicant(uow, applicant=app)
            # not committed: rolled back
        assert (
            gather(world, applicant("R", device_fingerprint="dC")).values["graph_shared_device_customers"]
            == 3
        )
        with world.uow() as uow:
            decisioning.record_seen(uow, applicant=app, application_ref="APP-1")
            decisioning.add_applicant(uow, applicant=app)
            uow.commit()
        values = gather(world, applicant("R", device_fingerprint="dC")).values
        assert values["graph_shared_device_customers"] == 4
        assert values["device_applicants_30d"] == 0  # Q applied at the same instant: not earlier


def test_one_read_of_the_customer_answers_the_record_and_the_home(world: Container) -> None:
    """``contract.customer_record`` gives the identity ``customer_identities`` gives and
    answers ``customer_home`` for the rest of the transaction; a new transaction reads again."""
    from sqlalchemy import event

    from creditfactory import contract

    statements: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN IMMEDIATE
            statements.append(args[2])

    with world.uow() as uow:
        expected_identity = contract.customer_identities(uow, customer_ids=["A"])[0]
        expected_home = contract.customer_home(uow, customer_id="A")
    event.listen(world.engine, "before_cursor_execute", count)
    try:
        with world.uow() as uow:
            assert contract.customer_record(uow, customer_id="A") == expected_identity
            assert contract.customer_record(uow, customer_id="nobody") is None
            read = len(statements)
            assert contract.customer_home(uow, customer_id="A") == expected_home
            assert contract.customer_home(uow, customer_id="nobody") is None
            assert len(statements) == read
            uow.commit()
            assert contract.customer_home(uow, customer_id="A") == expected_home
            assert len(statements) == read + 1
    finally:
        event.remove(world.engine, "before_cursor_execute", count)
