"""The servicing API through httpx's ASGI transport, on SQLite and PostgreSQL: products, the loan
calculator, credit lines, drawdowns, loans, repayments, write-offs, the portfolio and the end of day.

The book opens on 15 January 2025 with the sample products and the ledger chart. A drawdown of
12,000.00 over 12 months, equal instalments (等额本息), on ``farmer_revolving_line`` (3.95% a
year, actual/360, 3 grace days) has this schedule:

    no  due         days  principal  interest
     1  2025-02-15    31     980.70     40.82
     2  2025-03-15    28     987.67     33.85
    ...
    12  2026-01-15    31   1,020.69      3.47
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from creditfactory import ledger
from creditfactory.api import create_app
from creditfactory.bootstrap import Container
from creditfactory.clock import DayCount
from creditfactory.jobs import current_business_date, open_business_date, run_eod
from creditfactory.money import RoundingMode, RoundingPolicy
from creditfactory.security.roles import Principal, PrincipalKind, Role
from creditfactory.servicing import service
from creditfactory.servicing.model import generate_schedule, load_products, sample_products_dir
from creditfactory.servicing.store import Loan, LoanTransaction

START = date(2025, 1, 15)
FIRST_DUE = date(2025, 2, 15)
PROBLEM = "application/problem+json"
OWNER = "C0000001"
D = Decimal


class Api:
    """A synchronous face for an httpx client on the ASGI app, with tokens for each kind of caller."""

    def __init__(self, container: Container) -> None:
        self.app = create_app(container)
        self.tokens = tokens = container.tokens
        self.staff = tokens.issue(Principal("ops-1", frozenset({Role.OPERATIONS})))
        self.it = tokens.issue(Principal("it-1", frozenset({Role.IT_OPERATIONS})))
        self.auditor = tokens.issue(Principal("au-1", frozenset({Role.AUDITOR})))
        self.owner = self.customer(OWNER)
        self.stranger = self.customer("C0000002")

    def customer(self, customer_id: str) -> str:
        return self.tokens.issue(
            Principal(
                f"cust-{customer_id}",
                frozenset({Role.CUSTOMER}),
                kind=PrincipalKind.CUSTOMER,
                customer_id=customer_id,
            )
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is not None:
            sent["Idempotency-Key"] = key

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://creditfactory.test") as client:
                return await client.request(method, url, headers=sent, **kw)

        return asyncio.run(go())

    def get(self, url: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", url, token=self.staff if token is None else token, **kw)

    def post(
        self, url: str, *, token: str | None = None, key: str | None = "k-1", **kw: Any
    ) -> httpx.Response:
        return self.request("POST", url, token=self.staff if token is None else token, key=key, **kw)

    def put(
        self, url: str, *, token: str | None = None, key: str | None = "k-1", **kw: Any
    ) -> httpx.Response:
        return self.request("PUT", url, token=self.staff if token is None else token, key=key, **kw)

    # the usual steps
    def open_line(self, *, customer_id: str = OWNER, limit: str = "50000.00", key: str = "line-1") -> int:
        body = {"customer_id": customer_id, "product_code": "farmer_revolving_line", "limit": limit}
        response = self.post("/v1/lines", json=body, key=key)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def draw(
        self, line_id: int, *, amount: str = "12000.00", term: int = 12, key: str = "draw-1", **kw: Any
    ) -> httpx.Response:
        body = {"amount": amount, "term": term, "method": "equal_installment"}
        return self.post(f"/v1/lines/{line_id}/drawdowns", json=body, key=key, **kw)

    def loan(self, *, key: str = "draw-1") -> dict[str, Any]:
        line_id = self.open_line()
        response = self.draw(line_id, key=key)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def book(container: Container) -> Container:
    """Sample products, the ledger chart and the business date 15 January 2025 (the container's
    bootstrap has registered every domain's end-of-day steps)."""
    with container.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=container.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=START, clock=container.clock)
        uow.commit()
    return container


@pytest.fixture
def api(book: Container) -> Api:
    return Api(book)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


def eod_until(c: Container, last: date) -> None:
    """Close business dates up to and including ``last``."""
    while True:
        with c.uow() as uow:
            if current_business_date(uow.session) > last:
                return
        run_eod(sessions=c.sessions, clock=c.clock)


def count(c: Container, entity: type[Any]) -> int:
    with c.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(entity)) or 0)


class TestProducts:
    def test_lists_the_products(self, api: Api) -> None:
        response = api.get("/v1/products", token=api.owner)
        assert response.status_code == 200
        assert [p["code"] for p in response.json()] == [
            "consumer_equal_installment",
            "farmer_revolving_line",
            "merchant_interest_only",
            "seasonal_bullet",
        ]

    def test_reads_one_with_amounts_and_rates_as_text(self, api: Api) -> None:
        body = api.get("/v1/products/farmer_revolving_line").json()
        assert (body["min_amount"], body["max_amount"], body["line_limit"]) == (
            "1000.00",
            "300000.00",
            "300000.00",
        )
        assert (body["annual_rate"], body["penalty_rate"], body["day_count"]) == (
            "0.0395",
            "0.05925",
            "actual/360",
        )
        assert body["methods"] == ["interest_only", "equal_installment", "bullet"]

    def test_an_unknown_product_is_404(self, api: Api) -> None:
        problem(api.get("/v1/products/nothing"), 404, "not_found")

    def test_defines_then_updates_a_product(self, api: Api) -> None:
        product = api.get("/v1/products/seasonal_bullet").json() | {"code": "spring_bullet", "name": "春耕贷"}
        first = api.put("/v1/products/spring_bullet", json=product, key="p-1")
        assert first.status_code == 200, first.text
        assert (first.json()["version"], first.json()["product"]["annual_rate"]) == (1, "0.0385")
        cheaper = product | {"annual_rate": "0.0350", "penalty_rate": "0.0525"}
        second = api.put("/v1/products/spring_bullet", json=cheaper, key="p-2")
        assert (second.json()["version"], second.json()["product"]["annual_rate"]) == (2, "0.0350")
        assert api.get("/v1/products/spring_bullet").json()["annual_rate"] == "0.0350"

    def test_path_and_body_must_name_the_same_product(self, api: Api) -> None:
        product = api.get("/v1/products/seasonal_bullet").json()
        body = problem(api.put("/v1/products/other", json=product), 422, "invalid_input")
        assert body["details"] == {"field": "code"}

    def test_an_invalid_definition_names_the_field(self, api: Api) -> None:
        product = api.get("/v1/products/seasonal_bullet").json() | {"annual_rate": 0.0385}
        body = problem(api.put("/v1/products/seasonal_bullet", json=product), 422, "invalid_request")
        assert fields(body) == ["body.annual_rate"]

    def test_only_staff_who_manage_loans_define_products(self, api: Api) -> None:
        product = api.get("/v1/products/seasonal_bullet").json()
        problem(
            api.put("/v1/products/seasonal_bullet", json=product, token=api.owner), 403, "permission_denied"
        )
        problem(api.put("/v1/products/seasonal_bullet", json=product, token=api.it), 403, "permission_denied")


class TestCalculator:
    def test_matches_generate_schedule(self, api: Api) -> None:
        params = {
            "amount": "100000.00",
            "rate": "0.0435",
            "term": "12",
            "method": "equal_installment",
            "day_count": "30/360",
            "start": "2025-01-15",
            "rounding": "half_up",
        }
        response = api.request("GET", "/v1/schedule", params=params)  # no token needed
        assert response.status_code == 200, response.text
        body = response.json()
        expected = generate_schedule(
            principal=D("100000.00"),
            annual_rate=D("0.0435"),
            term=12,
            method="equal_installment",
            start=START,
            day_count=DayCount.THIRTY_E_360,
            policy=RoundingPolicy(RoundingMode.HALF_UP),
        )
        assert [
            (
                i["number"],
                i["due_date"],
                i["days"],
                i["principal"],
                i["interest"],
                i["total"],
                i["balance_after"],
            )
            for i in body["instalments"]
        ] == [
            (
                i.number,
                i.due_date.isoformat(),
                i.days,
                str(i.principal),
                str(i.interest),
                str(i.total),
                str(i.balance_after),
            )
            for i in expected.instalments
        ]
        assert (body["level_instalment"], body["method_label"]) == ("8530.99", "等额本息")
        assert body["totals"] == {"principal": "100000.00", "interest": "2371.90", "total": "102371.90"}

    def test_defaults_and_other_methods(self, api: Api) -> None:
        params = {
            "amount": "100000",
            "rate": "0.0435",
            "term": "12",
            "start": "2025-01-15",
            "method": "equal_principal",
        }
        body = api.request("GET", "/v1/schedule", params=params).json()
        principals = [i["principal"] for i in body["instalments"]]
        assert principals == ["8333.33"] * 11 + ["8333.37"]
        assert (body["principal"], body["day_count"], body["level_instalment"]) == (
            "100000.00",
            "30/360",
            None,
        )

    @pytest.mark.parametrize(
        ("amount", "message"), [("12.345", "2 decimal places"), ("-1", "greater than 0")]
    )
    def test_an_invalid_amount_names_the_parameter(self, api: Api, amount: str, message: str) -> None:
        params = {"amount": amount, "rate": "0.0435", "term": "12", "start": "2025-01-15"}
        body = problem(api.request("GET", "/v1/schedule", params=params), 422, "invalid_request")
        assert fields(body) == ["query.amount"]
        assert message in body["errors"][0]["message"]

    def test_an_unknown_method_is_refused(self, api: Api) -> None:
        params = {
            "amount": "1000",
            "rate": "0.0435",
            "term": "12",
            "start": "2025-01-15",
            "method": "balloon",
        }
        body = problem(api.request("GET", "/v1/schedule", params=params), 422, "invalid_request")
        assert fields(body) == ["query.method"]


class TestLines:
    def test_opens_a_line_on_the_business_date(self, api: Api) -> None:
        response = api.post(
            "/v1/lines",
            json={"customer_id": OWNER, "product_code": "farmer_revolving_line", "limit": "50000.00"},
        )
        assert response.status_code == 201, response.text
        line = response.json()
        assert (line["limit"], line["used"], line["available"], line["annual_rate"]) == (
            "50000.00",
            "0.00",
            "50000.00",
            "0.0395",
        )
        assert (line["status"], line["opened_date"], line["expiry_date"]) == (
            "active",
            "2025-01-15",
            "2028-01-15",
        )
        assert api.get(f"/v1/lines/{line['id']}").json() == line

    def test_a_line_with_contract_terms_lends_on_them(self, api: Api) -> None:
        body = {
            "customer_id": OWNER,
            "product_code": "farmer_revolving_line",
            "limit": "50000.00",
            "term_months": 6,
            "repayment_method": "equal_installment",
        }
        response = api.post("/v1/lines", json=body, key="terms-1")
        assert response.status_code == 201, response.text
        line = response.json()
        assert (line["term_months"], line["repayment_method"]) == (6, "equal_installment")
        drawn = api.post(f"/v1/lines/{line['id']}/drawdowns", json={"amount": "6000.00"}, key="terms-d")
        assert drawn.status_code == 201, drawn.text
        loan = drawn.json()
        assert (loan["term"], loan["method"]) == (6, "equal_installment")
        bad = dict(body, term_months=999)
        assert problem(api.post("/v1/lines", json=bad, key="terms-2"), 422, "invalid_request")
        plain = api.open_line()
        body = problem(
            api.post(f"/v1/lines/{plain}/drawdowns", json={"amount": "6000.00"}, key="terms-p"),
            422,
            "invalid_input",
        )
        assert "a term is needed" in body["detail"]

    def test_used_and_available_follow_drawdowns(self, api: Api) -> None:
        line_id = api.open_line()
        api.draw(line_id, amount="12000.00")
        line = api.get(f"/v1/lines/{line_id}").json()
        assert (line["limit"], line["used"], line["available"]) == ("50000.00", "12000.00", "38000.00")

    def test_freeze_refuses_drawdowns_until_unfrozen(self, api: Api) -> None:
        line_id = api.open_line()
        frozen = api.post(f"/v1/lines/{line_id}/freeze", key="f-1")
        assert (frozen.status_code, frozen.json()["status"]) == (200, "frozen")
        body = problem(api.draw(line_id, key="d-frozen"), 409, "line_not_usable")
        assert body["detail"] == f"line {line_id} is frozen; only an active line can be drawn"
        body = problem(api.post(f"/v1/lines/{line_id}/freeze", key="f-2"), 409, "illegal_transition")
        assert body["details"]["allowed"] == ["unfreeze", "expire", "close"]
        assert api.post(f"/v1/lines/{line_id}/unfreeze", key="u-1").json()["status"] == "active"
        assert api.draw(line_id, key="d-after").status_code == 201

    def test_a_line_with_drawn_principal_cannot_close(self, api: Api) -> None:
        line_id = api.open_line()
        api.draw(line_id)
        body = problem(api.post(f"/v1/lines/{line_id}/close", key="c-1"), 409, "conflict")
        assert "12000.00 drawn" in body["detail"]
        empty = api.open_line(key="line-2")
        closed = api.post(f"/v1/lines/{empty}/close", key="c-2").json()
        assert (closed["status"], closed["closed_date"]) == ("closed", "2025-01-15")

    def test_an_unknown_action_or_line(self, api: Api) -> None:
        line_id = api.open_line()
        problem(api.post(f"/v1/lines/{line_id}/explode"), 422, "invalid_request")
        problem(api.post("/v1/lines/999/freeze"), 404, "not_found")
        problem(api.get("/v1/lines/999"), 404, "not_found")

    def test_a_limit_outside_the_product_is_refused(self, api: Api) -> None:
        body = {"customer_id": OWNER, "product_code": "farmer_revolving_line", "limit": "300000.01"}
        problem(api.post("/v1/lines", json=body), 422, "invalid_input")
        body = {"customer_id": OWNER, "product_code": "no_such_product", "limit": "1000.00"}
        problem(api.post("/v1/lines", json=body, key="k-2"), 404, "not_found")

    def test_customers_read_their_own_lines_only(self, api: Api) -> None:
        line_id = api.open_line()
        assert api.get(f"/v1/lines/{line_id}", token=api.owner).status_code == 200
        problem(api.get(f"/v1/lines/{line_id}", token=api.stranger), 403, "permission_denied")
        problem(api.get(f"/v1/lines/{line_id}", token=api.auditor), 403, "permission_denied")
        problem(api.post(f"/v1/lines/{line_id}/freeze", token=api.owner), 403, "permission_denied")
        body = {"customer_id": OWNER, "product_code": "farmer_revolving_line", "limit": "1000.00"}
        problem(api.post("/v1/lines", json=body, token=api.owner), 403, "permission_denied")


class TestDrawdowns:
    def test_a_drawdown_is_a_loan_with_its_schedule(self, api: Api) -> None:
        line_id = api.open_line()
        response = api.draw(line_id)
        assert response.status_code == 201, response.text
        loan = response.json()
        assert (loan["line_id"], loan["customer_id"], loan["product_code"]) == (
            line_id,
            OWNER,
            "farmer_revolving_line",
        )
        assert (loan["principal"], loan["term"], loan["method"], loan["method_label"]) == (
            "12000.00",
            12,
            "equal_installment",
            "等额本息",
        )
        assert (loan["start_date"], loan["maturity_date"], loan["status"]) == (
            "2025-01-15",
            "2026-01-15",
            "active",
        )
        assert (loan["annual_rate"], loan["penalty_rate"], loan["day_count"]) == (
            "0.0395",
            "0.05925",
            "actual/360",
        )
        assert loan["balances"] == {"principal": "12000.00", "interest": "0.00", "penalty": "0.00"}
        assert (loan["dpd"], loan["bucket"], loan["tier"], loan["tier_label"]) == (
            0,
            "current",
            "normal",
            "正常",
        )
        instalments = loan["instalments"]
        assert len(instalments) == 12
        assert sum(D(i["principal"]) for i in instalments) == D("12000.00")
        first, last = instalments[0], instalments[-1]
        assert (first["due_date"], first["days"], first["principal"], first["interest"], first["total"]) == (
            "2025-02-15",
            31,
            "980.70",
            "40.82",
            "1021.52",
        )
        assert (last["due_date"], last["principal"], last["interest"]) == ("2026-01-15", "1020.69", "3.47")
        assert {i["status"] for i in instalments} == {"pending"}
        assert api.get(f"/v1/loans/{loan['id']}").json() == loan

    def test_a_retry_returns_the_first_loan(self, api: Api, book: Container) -> None:
        line_id = api.open_line()
        first = api.draw(line_id, key="same")
        again = api.draw(line_id, key="same")
        assert (first.status_code, again.status_code) == (201, 201)
        assert "idempotent-replayed" not in first.headers
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert count(book, Loan) == 1
        assert api.get(f"/v1/lines/{line_id}").json()["used"] == "12000.00"

    def test_the_same_key_with_another_body_is_refused(self, api: Api, book: Container) -> None:
        line_id = api.open_line()
        api.draw(line_id, key="same")
        body = problem(api.draw(line_id, key="same", amount="5000.00"), 422, "idempotency_key_reused")
        assert "'same'" in body["detail"]
        assert count(book, Loan) == 1

    def test_a_key_is_scoped_to_its_line(self, api: Api, book: Container) -> None:
        first = api.open_line()
        second = api.open_line(key="line-2")
        made = api.draw(first, key="same").json()
        other = api.draw(second, key="same")
        assert other.status_code == 201
        assert other.json()["id"] != made["id"]
        assert count(book, Loan) == 2
        assert api.get(f"/v1/lines/{second}").json()["used"] == made["principal"]

    def test_beyond_the_available_limit_is_refused(self, api: Api) -> None:
        line_id = api.open_line(limit="50000.00")
        api.draw(line_id, amount="40000.00", key="d-1")
        body = problem(api.draw(line_id, amount="10000.01", key="d-2"), 409, "limit_exceeded")
        assert body["details"] == {"available": "10000.00"}
        assert api.draw(line_id, amount="10000.00", key="d-3").status_code == 201

    @pytest.mark.parametrize(
        ("amount", "message"), [("12.345", "2 decimal places"), ("-1", "greater than 0")]
    )
    def test_an_invalid_amount_names_the_field(self, api: Api, amount: str, message: str) -> None:
        line_id = api.open_line()
        body = problem(api.draw(line_id, amount=amount), 422, "invalid_request")
        assert fields(body) == ["body.amount"]
        assert message in body["errors"][0]["message"]

    def test_an_amount_must_be_text(self, api: Api) -> None:
        line_id = api.open_line()
        response = api.post(f"/v1/lines/{line_id}/drawdowns", json={"amount": 12000.0, "term": 12})
        body = problem(response, 422, "invalid_request")
        assert fields(body) == ["body.amount"]
        assert '"12000.00"' in body["detail"]

    def test_amount_term_and_method_must_fit_the_product(self, api: Api) -> None:
        line_id = api.open_line()
        body = problem(api.draw(line_id, amount="999.99", key="d-1"), 422, "invalid_product")
        assert body["details"] == {"field": "amount"}
        body = problem(api.draw(line_id, term=13, key="d-2"), 422, "invalid_product")
        assert body["details"] == {"field": "term"}
        response = api.post(
            f"/v1/lines/{line_id}/drawdowns",
            json={"amount": "1000.00", "term": 6, "method": "equal_principal"},
            key="d-3",
        )
        assert problem(response, 422, "invalid_product")["details"] == {"field": "method"}

    def test_a_drawdown_needs_a_short_idempotency_key(self, api: Api) -> None:
        line_id = api.open_line()
        problem(api.draw(line_id, key=None), 400, "idempotency_key_missing")
        body = problem(api.draw(line_id, key="k" * 101), 422, "invalid_request")
        assert fields(body) == ["header.Idempotency-Key"]
        assert api.draw(line_id, key="k" * 100).status_code == 201

    def test_customers_draw_on_their_own_lines_only(self, api: Api, book: Container) -> None:
        line_id = api.open_line()
        problem(api.draw(line_id, token=api.stranger), 403, "permission_denied")
        response = api.draw(line_id, token=api.owner)
        assert response.status_code == 201
        assert response.json()["customer_id"] == OWNER
        problem(api.draw(999, key="d-9"), 404, "not_found")


class TestLoans:
    def test_customers_read_their_own_loans_only(self, api: Api) -> None:
        loan = api.loan()
        assert api.get(f"/v1/loans/{loan['id']}", token=api.owner).json() == loan
        body = problem(api.get(f"/v1/loans/{loan['id']}", token=api.stranger), 403, "permission_denied")
        assert "own lines and loans" in body["detail"]
        problem(api.get(f"/v1/loans/{loan['id']}/payoff", token=api.stranger), 403, "permission_denied")
        problem(api.get(f"/v1/loans/{loan['id']}", token=api.it), 403, "permission_denied")
        problem(api.request("GET", f"/v1/loans/{loan['id']}"), 401, "unauthenticated")
        problem(api.get("/v1/loans/999"), 404, "not_found")

    def test_payoff_is_principal_plus_what_has_accrued(self, api: Api, book: Container) -> None:
        loan = api.loan()
        payoff = api.get(f"/v1/loans/{loan['id']}/payoff", token=api.owner).json()
        assert payoff == {
            "loan_id": loan["id"],
            "status": "active",
            "amount": "12000.00",
            "balances": {"principal": "12000.00", "interest": "0.00", "penalty": "0.00"},
        }
        eod_until(book, FIRST_DUE - timedelta(days=1))  # the first period has accrued in full
        payoff = api.get(f"/v1/loans/{loan['id']}/payoff").json()
        assert (payoff["amount"], payoff["balances"]["interest"]) == ("12040.82", "40.82")

    def test_a_repayment_on_the_due_date_pays_the_instalment(self, api: Api, book: Container) -> None:
        loan = api.loan()
        eod_until(book, FIRST_DUE - timedelta(days=1))
        response = api.post(f"/v1/loans/{loan['id']}/repayments", json={"amount": "1021.52"}, key="r-1")
        assert response.status_code == 201, response.text
        paid = response.json()
        assert paid == {
            "loan_id": loan["id"],
            "transaction_id": paid["transaction_id"],
            "value_date": "2025-02-15",
            "amount": "1021.52",
            "principal": "980.70",
            "interest": "40.82",
            "penalty": "0.00",
            "excess": "0.00",
            "settled": False,
            "loan_status": "active",
            "outstanding_principal": "11019.30",
        }
        after = api.get(f"/v1/loans/{loan['id']}").json()
        assert after["balances"] == {"principal": "11019.30", "interest": "0.00", "penalty": "0.00"}
        first = after["instalments"][0]
        assert (first["status"], first["paid_principal"], first["paid_interest"], first["paid_date"]) == (
            "paid",
            "980.70",
            "40.82",
            "2025-02-15",
        )
        assert api.get(f"/v1/lines/{loan['line_id']}").json()["used"] == "11019.30"

    def test_a_repayment_retry_applies_once(self, api: Api, book: Container) -> None:
        loan = api.loan()
        url = f"/v1/loans/{loan['id']}/repayments"
        first = api.post(url, json={"amount": "100.00"}, key="r-1", token=api.owner)
        again = api.post(url, json={"amount": "100.00"}, key="r-1", token=api.owner)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert (first.json()["principal"], first.json()["outstanding_principal"]) == ("100.00", "11900.00")
        assert api.get(f"/v1/loans/{loan['id']}").json()["balances"]["principal"] == "11900.00"
        assert count(book, LoanTransaction) == 2  # the disbursement and one repayment
        problem(
            api.post(url, json={"amount": "200.00"}, key="r-1", token=api.owner),
            422,
            "idempotency_key_reused",
        )

    def test_paying_the_payoff_settles_the_loan_and_frees_the_line(self, api: Api, book: Container) -> None:
        loan = api.loan()
        eod_until(book, START + timedelta(days=9))
        payoff = api.get(f"/v1/loans/{loan['id']}/payoff").json()["amount"]
        assert payoff == "12013.16"  # ten days of the first period's 40.82 over 31 days, floored to the fen
        paid = api.post(f"/v1/loans/{loan['id']}/repayments", json={"amount": payoff}).json()
        assert (paid["principal"], paid["interest"], paid["excess"]) == ("12000.00", "13.16", "0.00")
        assert (paid["settled"], paid["loan_status"], paid["outstanding_principal"]) == (
            True,
            "settled",
            "0.00",
        )
        assert api.get(f"/v1/lines/{loan['line_id']}").json()["available"] == "50000.00"
        body = problem(
            api.post(f"/v1/loans/{loan['id']}/repayments", json={"amount": "1.00"}, key="r-2"),
            409,
            "conflict",
        )
        assert "settled" in body["detail"]

    @pytest.mark.parametrize(
        ("amount", "message"), [("12.345", "2 decimal places"), ("-1", "greater than 0")]
    )
    def test_an_invalid_repayment_names_the_field(self, api: Api, amount: str, message: str) -> None:
        loan = api.loan()
        response = api.post(f"/v1/loans/{loan['id']}/repayments", json={"amount": amount}, key="r-1")
        body = problem(response, 422, "invalid_request")
        assert fields(body) == ["body.amount"]
        assert message in body["errors"][0]["message"]

    def test_an_overdue_loan_is_written_off(self, api: Api, book: Container) -> None:
        loan = api.loan()
        url = f"/v1/loans/{loan['id']}/write-off"
        body = problem(api.post(url, json={"reason": "fraud"}, key="w-1"), 409, "illegal_transition")
        assert body["details"]["state"] == "active"
        eod_until(book, FIRST_DUE + timedelta(days=4))  # past the 3 grace days
        overdue = api.get(f"/v1/loans/{loan['id']}").json()
        assert (overdue["status"], overdue["dpd"], overdue["bucket"], overdue["tier_label"]) == (
            "overdue",
            4,
            "1-30",
            "关注",
        )
        problem(api.post(url, json={"reason": "fraud"}, key="w-2", token=api.owner), 403, "permission_denied")
        problem(api.post(url, json={"reason": ""}, key="w-2"), 422, "invalid_request")
        response = api.post(url, json={"reason": "borrower deceased, no estate"}, key="w-2")
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["closed_date"]) == ("written_off", "2025-02-20")
        assert api.get(f"/v1/lines/{loan['line_id']}").json()["used"] == "0.00"
        problem(api.post(url, json={"reason": "again"}, key="w-3"), 409, "illegal_transition")


class TestPortfolio:
    def test_by_tier_by_bucket_and_npl_ratio(self, api: Api, book: Container) -> None:
        line_id = api.open_line(limit="100000.00")
        ids = [
            api.draw(line_id, amount=a, key=f"d-{a}").json()["id"]
            for a in ("30000.00", "10000.00", "5000.00")
        ]
        with book.uow() as uow:  # as the end of day would classify them after months overdue
            uow.session.execute(update(Loan).where(Loan.id == ids[1]).values(dpd=120, tier="substandard"))
            uow.session.execute(update(Loan).where(Loan.id == ids[2]).values(dpd=20, tier="special_mention"))
            uow.commit()
        response = api.get("/v1/portfolio")
        assert response.status_code == 200, response.text
        book_ = response.json()
        assert (book_["principal"], book_["npl_ratio"]) == ("45000.00", "0.2222")
        assert [(t["tier"], t["label"], t["loans"], t["principal"]) for t in book_["by_tier"]] == [
            ("normal", "正常", 1, "30000.00"),
            ("special_mention", "关注", 1, "5000.00"),
            ("substandard", "次级", 1, "10000.00"),
            ("doubtful", "可疑", 0, "0.00"),
            ("loss", "损失", 0, "0.00"),
        ]
        assert [(b["bucket"], b["loans"], b["principal"]) for b in book_["by_bucket"]] == [
            ("current", 1, "30000.00"),
            ("1-30", 1, "5000.00"),
            ("31-60", 0, "0.00"),
            ("61-90", 0, "0.00"),
            ("91-180", 1, "10000.00"),
            ("181+", 0, "0.00"),
        ]

    def test_an_empty_book(self, api: Api) -> None:
        body = api.get("/v1/portfolio").json()
        assert (body["principal"], body["npl_ratio"]) == ("0.00", "0.0000")

    def test_needs_the_loan_permission(self, api: Api) -> None:
        problem(api.get("/v1/portfolio", token=api.owner), 403, "permission_denied")


STEPS = [
    "servicing.accrue_interest",
    "servicing.mark_overdue",
    "servicing.exit_overdue_customers",
    "servicing.classify",
    "servicing.expire_lines",
    "origination.expire_approvals",
    "whitelist.expire_offers",
    "ledger.fold",
    "servicing.reconcile",
    "ledger.trial_balance",
]


class TestEndOfDay:
    def test_closes_the_open_date_and_opens_the_next(self, api: Api, book: Container) -> None:
        loan = api.loan()
        response = api.post("/v1/eod", token=api.it, key="eod-1")
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["business_date"], report["next_date"], report["already_closed"]) == (
            "2025-01-15",
            "2025-01-16",
            False,
        )
        assert [s["name"] for s in report["steps"]] == STEPS
        assert {s["status"] for s in report["steps"]} == {"completed"}
        accrual = report["steps"][0]
        assert (accrual["items"], accrual["interest"]) == (1, "1.31")  # one day of 40.82 over 31 days
        with book.uow() as uow:
            assert current_business_date(uow.session) == date(2025, 1, 16)
        assert api.get(f"/v1/loans/{loan['id']}").json()["balances"]["interest"] == "1.31"
        later = api.draw(loan["line_id"], amount="1000.00", key="draw-2").json()
        assert later["start_date"] == "2025-01-16"

    def test_a_closed_date_has_nothing_to_do(self, api: Api, book: Container) -> None:
        api.post("/v1/eod", token=api.it, key="eod-1", json={"business_date": "2025-01-15"})
        again = api.post("/v1/eod", token=api.it, key="eod-2", json={"business_date": "2025-01-15"})
        assert again.status_code == 200, again.text
        assert again.json() == {
            "business_date": "2025-01-15",
            "next_date": None,
            "already_closed": True,
            "steps": [],
        }
        replay = api.post("/v1/eod", token=api.it, key="eod-1", json={"business_date": "2025-01-15"})
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["next_date"] == "2025-01-16"
        with book.uow() as uow:
            assert current_business_date(uow.session) == date(2025, 1, 16)

    def test_a_future_date_cannot_be_closed(self, api: Api) -> None:
        response = api.post("/v1/eod", token=api.it, json={"business_date": "2025-03-01"})
        body = problem(response, 409, "business_date_not_open")
        assert "2025-01-15" in body["detail"]

    def test_steps_and_timings_of_a_date(self, api: Api) -> None:
        api.post("/v1/eod", token=api.it, key="eod-1")
        response = api.get("/v1/eod/2025-01-15", token=api.it)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["business_date"] == "2025-01-15"
        assert [(s["name"], s["status"], s["attempts"], s["failed"]) for s in body["steps"]] == [
            (name, "completed", 1, 0) for name in STEPS
        ]
        assert all(s["seconds"] >= 0 and s["finished_at"] and s["error"] is None for s in body["steps"])
        assert api.get("/v1/eod/2025-01-16", token=api.it).json()["steps"] == []
        problem(api.get("/v1/eod/16-01-2025", token=api.it), 422, "invalid_request")

    def test_needs_the_eod_permission(self, api: Api) -> None:
        problem(api.post("/v1/eod"), 403, "permission_denied")
        problem(api.get("/v1/eod/2025-01-15"), 403, "permission_denied")
