"""The whitelist API through httpx's ASGI transport (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from creditfactory.api import create_app
from creditfactory.bootstrap import Container
from creditfactory.jobs import open_business_date
from creditfactory.security.roles import Principal, PrincipalKind, Role
from tests.whitelist.conftest import ON, Publish, lines

PROBLEM = "application/problem+json"


def get(container: Container, url: str, principal: Principal) -> httpx.Response:
    app = create_app(container)
    token = container.tokens.issue(principal)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://creditfactory.test") as client:
            return await client.get(url, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def customer(cid: str) -> Principal:
    return Principal(f"cust-{cid}", frozenset({Role.CUSTOMER}), kind=PrincipalKind.CUSTOMER, customer_id=cid)


ANALYST = Principal("ra-1", frozenset({Role.RISK_ANALYST}))


def published(container: Container, publish: Publish) -> Any:
    with container.uow() as uow:
        open_business_date(uow.session, on=ON, clock=container.clock)
        uow.commit()
    return publish(
        lines([("C0001", "eligible", "A", 50_000, 435), ("C0002", "excluded", "X_KYC", None, None)])
    )


class TestOffer:
    def test_a_customer_sees_their_offer_in_both_languages(
        self, container: Container, publish: Publish
    ) -> None:
        v = published(container, publish)
        r = get(container, "/v1/customers/C0001/offer", customer("C0001"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["limit"], body["annual_rate"], body["expiry_date"]) == (
            "50000.00",
            "0.04350000",
            "2025-09-30",
        )
        assert body["version_id"] == v.version_id and body["status"] == "offered"
        assert body["message_zh"] == "您已获得预授信额度 50,000.00 元，年利率 4.35%，有效期至 2025-09-30。"
        assert "CNY 50,000.00 at 4.35% a year" in body["message_en"]

    def test_another_customers_offer_is_forbidden(self, container: Container, publish: Publish) -> None:
        published(container, publish)
        r = get(container, "/v1/customers/C0001/offer", customer("C0002"))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM

    def test_no_offer_is_a_404_problem_with_a_stable_code(
        self, container: Container, publish: Publish
    ) -> None:
        published(container, publish)
        r = get(container, "/v1/customers/C0002/offer", customer("C0002"))
        assert r.status_code == 404 and r.json()["code"] == "no_offer"

    def test_staff_may_read_an_offer(self, container: Container, publish: Publish) -> None:
        published(container, publish)
        r = get(container, "/v1/customers/C0001/offer", Principal("am-1", frozenset({Role.ACCOUNT_MANAGER})))
        assert r.status_code == 200


class TestVersions:
    def test_list_and_detail(self, container: Container, publish: Publish) -> None:
        v = published(container, publish)
        r = get(container, "/v1/whitelists", ANALYST)
        assert r.status_code == 200 and r.json()["items"][0]["id"] == v.version_id
        d = get(container, f"/v1/whitelists/{v.version_id}", ANALYST).json()
        assert (d["scored"], d["eligible"], d["excluded"]) == (2, 1, 1)
        assert d["summary"]["exclusions"] == {"X_KYC": 1}
        assert d["entry_status"] == {"offered": 1}

    def test_a_customer_may_not_read_the_lists(self, container: Container, publish: Publish) -> None:
        published(container, publish)
        assert get(container, "/v1/whitelists", customer("C0001")).status_code == 403

    def test_an_unknown_version_is_404(self, container: Container) -> None:
        r = get(container, "/v1/whitelists/999", ANALYST)
        assert r.status_code == 404 and r.json()["code"] == "whitelist_version_not_found"
