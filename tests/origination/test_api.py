"""The customer API through httpx's ASGI transport: the happy path and every abuse case.

Each refused request is checked for its status and stable code, and for changing nothing
(rows counted in every table a request may write, before and after).
"""

from __future__ import annotations

import asyncio
import copy
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import event

from creditfactory.api import create_app
from creditfactory.bootstrap import Container
from creditfactory.security.bank_tokens import BankTokenConfig, BankTokenVerifier
from creditfactory.security.roles import Principal, PrincipalKind, Role
from tests.origination.conftest import CUSTOMERS, MINOR_ID, World

PROBLEM = "application/problem+json"
D = Decimal


def customer(cid: str) -> Principal:
    return Principal(f"cust-{cid}", frozenset({Role.CUSTOMER}), kind=PrincipalKind.CUSTOMER, customer_id=cid)


ACCOUNT_MANAGER = Principal("S001", frozenset({Role.ACCOUNT_MANAGER}), branch_id="B01")
UNDERWRITER = Principal("U007", frozenset({Role.UNDERWRITER}))
ANALYST = Principal("ra-1", frozenset({Role.RISK_ANALYST}))


class Api:
    """One app over one container; each call is one request."""

    def __init__(self, container: Container, app: FastAPI | None = None) -> None:
        self.container = container
        self.app = app or create_app(container)

    def call(
        self,
        method: str,
        url: str,
        *,
        as_: Principal | str | None,
        json: Any = None,
        key: str | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        headers = {}
        if isinstance(as_, Principal):
            headers["Authorization"] = f"Bearer {self.container.tokens.issue(as_)}"
        elif isinstance(as_, str):
            headers["Authorization"] = f"Bearer {as_}"
        if key is not None:
            headers["Idempotency-Key"] = key
        if content is not None:
            headers["Content-Type"] = "application/json"

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://creditfactory.test") as client:
                return await client.request(method, url, headers=headers, json=json, content=content)

        return asyncio.run(go())


def body(cid: str = "C0001", **changes: Any) -> dict[str, Any]:
    name, number, mobile = CUSTOMERS[cid]
    out: dict[str, Any] = {
        "customer_id": cid,
        "channel": "app",
        "product_code": "consumer_equal_installment",
        "amount": "20000.00",
        "term_months": 12,
        "purpose": "home_renovation",
        "declared_annual_income": "96000.00",
        "applicant": {"name": name, "id_number": number, "phone": mobile},
        "device": {"fingerprint": f"dev-{cid}", "os": "iOS 17.5", "model": "iPhone15,2"},
        "ip": "203.0.113.9",
        "location": {"lat": 30.55, "lon": 119.98},
        "contacts": [{"name": "王芳", "phone": "13900001111", "relation": "spouse"}],
    }
    out.update(changes)
    return out


@pytest.fixture
def api(world: World) -> Api:
    return Api(world.container)


def key() -> str:
    return uuid.uuid4().hex


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    payload: dict[str, Any] = r.json()
    assert payload["code"] == code, payload
    return payload


def r_text(found: dict[str, Any]) -> str:
    return repr(found)


def refused(world: World, api: Api, status: int, code: str, **call: Any) -> dict[str, Any]:
    before = world.counts()
    method = call.pop("method", "POST")
    url = call.pop("url", "/v1/applications")
    call.setdefault("as_", customer("C0001"))
    call.setdefault("key", key())
    found = problem(api.call(method, url, **call), status, code)
    assert world.counts() == before
    return found


class TestSubmit:
    def test_an_application_and_how_the_customer_follows_it(self, offered: World) -> None:
        api = Api(offered.container)
        offered.consent("C0001")
        r = api.call("POST", "/v1/applications", as_=customer("C0001"), json=body(), key=key())
        assert r.status_code == 201, r.text
        created = r.json()
        assert (
            created["status"],
            created["status_label_zh"],
            created["amount"],
            created["purpose_label_en"],
        ) == (
            "submitted",
            "已提交，审批中",
            "20000.00",
            "Home renovation",
        )
        assert created["offer"]["limit"] == "50000.00" and created["offer"]["annual_rate"] == "0.0435"
        assert created["review"] is None and created["decision"] is None
        assert offered.entry_status("C0001") == "applied"

        offered.decide(
            created["id"], "decline", reasons=["D_DEBT"], reason_texts={"D_DEBT": ("负债较高", "High debts")}
        )
        r = api.call("GET", f"/v1/applications/{created['id']}", as_=customer("C0001"))
        assert r.status_code == 200
        got = r.json()
        assert got["status"] == "declined"
        assert [(t["status"], t["label_zh"], t["label_en"]) for t in got["timeline"]] == [
            ("submitted", "已提交，审批中", "Submitted, being decided"),
            ("declined", "未通过", "Declined"),
        ]
        assert all(t["actor"] is None and t["reason"] is None for t in got["timeline"])  # codes stay internal
        assert got["decision"]["reasons"] == [{"zh": "负债较高", "en": "High debts"}]
        assert "D_DEBT" not in r.text
        assert offered.entry_status("C0001") == "declined"

    def test_a_replay_returns_the_first_response(self, world: World, api: Api) -> None:
        world.consent("C0001")
        k = key()
        first = api.call("POST", "/v1/applications", as_=customer("C0001"), json=body(), key=k)
        assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
        before = world.counts()
        again = api.call("POST", "/v1/applications", as_=customer("C0001"), json=body(), key=k)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert world.counts() == before

    def test_the_same_key_with_another_body(self, world: World, api: Api) -> None:
        world.consent("C0001")
        k = key()
        api.call("POST", "/v1/applications", as_=customer("C0001"), json=body(), key=k)
        refused(world, api, 422, "idempotency_key_reused", json=body(amount="20000.01"), key=k)

    def test_without_an_idempotency_key(self, world: World, api: Api) -> None:
        world.consent("C0001")
        refused(world, api, 400, "idempotency_key_missing", json=body(), key=None)

    @pytest.mark.parametrize(
        "change",
        [
            {"amount": 20000.0},
            {"amount": "20000.001"},
            {"amount": "-5"},
            {"amount": "NaN"},
            {"term_months": 0},
            {"channel": "fax"},
            {"purpose": "buy_a_house"},
            {"ip": "300.1.1.1"},
            {"ip": "fe80::1%" + "a" * 60},  # a zone: an interface's name, not an address
            {"ip": "fe80::1%\x00x"},
            {"customer_id": "C0001; DROP"},
            {"unexpected": 1},
            {"applicant": None},
            {"applicant": {"name": "张伟", "id_number": "1\x00", "phone": "13812345678"}},
            {"location": {"lat": 91, "lon": 0}},
            {"contacts": [{"name": "x", "phone": "13900001111", "relation": "pet"}]},
            {"offer_version_id": 2**63},
        ],
        ids=lambda c: f"{next(iter(c))}={str(next(iter(c.values())))[:12]!r}",
    )
    def test_malformed_fields(self, world: World, api: Api, change: dict[str, Any]) -> None:
        world.consent("C0001")
        found = refused(world, api, 422, "invalid_request", json=body(**change))
        assert found["errors"] and found["detail"]

    def test_missing_fields_and_a_body_that_is_not_json(self, world: World, api: Api) -> None:
        world.consent("C0001")
        incomplete = body()
        del incomplete["device"]
        found = refused(world, api, 422, "invalid_request", json=incomplete)
        assert any(e["field"] == "body.device" for e in found["errors"])
        refused(world, api, 422, "invalid_request", content=b"{not json")

    def test_an_invalid_id_number(self, world: World, api: Api) -> None:
        world.consent("C0001")
        number = CUSTOMERS["C0001"][1]
        wrong = number[:17] + ("0" if number[17] != "0" else "1")
        applicant = {"name": "张伟", "id_number": wrong, "phone": "13812345678"}
        found = refused(world, api, 422, "invalid_id_number", json=body(applicant=applicant))
        assert "check character" in found["detail"] and wrong not in r_text(found)
        applicant["id_number"] = MINOR_ID
        refused(world, api, 422, "applicant_under_age", json=body(applicant=applicant))
        applicant.update(id_number=number, phone="1381234567")
        refused(world, api, 422, "invalid_phone", json=body(applicant=applicant))
        # the same number with its birth date and sequence in fullwidth digits is not the number:
        # it would be stored and counted as another person's
        fullwidth = number[:2] + number[2:17].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        applicant.update(id_number=fullwidth + number[17], phone=CUSTOMERS["C0001"][2])
        refused(world, api, 422, "invalid_id_number", json=body(applicant=applicant))

    def test_amounts_terms_and_products_that_do_not_fit(self, offered: World) -> None:
        api = Api(offered.container)
        offered.consent("C0001")
        found = refused(offered, api, 422, "amount_above_offer", json=body(amount="50000.01"))
        assert found["details"]["offer_limit"] == "50000.00"
        refused(offered, api, 422, "amount_outside_product", json=body(amount="4999.99"))
        refused(offered, api, 422, "term_not_offered", json=body(term_months=60))
        refused(offered, api, 422, "method_not_offered", json=body(repayment_method="bullet"))
        refused(offered, api, 422, "unknown_product", json=body(product_code="gold_card"))
        refused(offered, api, 409, "offer_not_current", json=body(offer_version_id=42))
        assert offered.entry_status("C0001") == "offered"

    def test_a_duplicate_submission(self, world: World, api: Api) -> None:
        world.consent("C0001")
        first = api.call("POST", "/v1/applications", as_=customer("C0001"), json=body(), key=key()).json()
        found = refused(world, api, 409, "application_in_progress", json=body(amount="9000.00"))
        assert found["details"]["application_id"] == first["id"]

    def test_someone_elses_customer_id(self, world: World, api: Api) -> None:
        world.consent("C0002")
        refused(world, api, 403, "permission_denied", json=body("C0002"))
        refused(world, api, 403, "permission_denied", json=body("C0002"), as_=ANALYST)
        refused(world, api, 401, "unauthenticated", json=body("C0002"), as_=None)
        refused(world, api, 401, "unauthenticated", json=body("C0002"), as_="cf1.forged.token")

    def test_branch_staff_may_apply_for_a_customer(self, world: World, api: Api) -> None:
        world.consent("C0002")
        r = api.call(
            "POST", "/v1/applications", as_=ACCOUNT_MANAGER, json=body("C0002", channel="branch"), key=key()
        )
        assert r.status_code == 201 and r.json()["channel"] == "branch"

    def test_a_required_consent_missing(self, world: World, api: Api) -> None:
        found = refused(world, api, 409, "consent_required", json=body())
        assert found["details"]["missing"] == ["bureau_inquiry", "personal_information"]

    def test_a_huge_or_negative_path_id_is_a_plain_422(self, world: World, api: Api) -> None:
        for url in (f"/v1/applications/{2**64}", "/v1/applications/0", "/v1/applications/x"):
            problem(api.call("GET", url, as_=customer("C0001")), 422, "invalid_request")
        problem(api.call("GET", "/v1/applications/99", as_=customer("C0001")), 404, "application_not_found")


def submitted(world: World, api: Api, cid: str = "C0001") -> dict[str, Any]:
    world.consent(cid)
    r = api.call("POST", "/v1/applications", as_=customer(cid), json=body(cid), key=key())
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


class TestReadAndWithdraw:
    def test_a_customer_reads_only_their_own(self, world: World, api: Api) -> None:
        app = submitted(world, api)
        problem(
            api.call("GET", f"/v1/applications/{app['id']}", as_=customer("C0002")), 403, "permission_denied"
        )
        refused(
            world,
            api,
            403,
            "permission_denied",
            url=f"/v1/applications/{app['id']}/withdraw",
            as_=customer("C0002"),
        )

    def test_reviewers_see_more_masked_by_role_and_audited(self, world: World, api: Api) -> None:
        app = submitted(world, api)
        world.decide(app["id"], "refer", reasons=["R_INCOME"])
        before = world.counts()["audit"]
        am = api.call("GET", f"/v1/applications/{app['id']}", as_=ACCOUNT_MANAGER).json()
        uw = api.call("GET", f"/v1/applications/{app['id']}", as_=UNDERWRITER).json()
        name, number, mobile = CUSTOMERS["C0001"]
        assert am["review"]["applicant"] == {
            "name": "张*",
            "id_number": number[:3] + "*" * 11 + number[-4:],
            "phone": "138****5678",
            "masked": True,
        }
        assert uw["review"]["applicant"] == {
            "name": name,
            "id_number": number,
            "phone": mobile,
            "masked": False,
        }
        assert uw["review"]["reason_codes"] == ["R_INCOME"] and uw["review"]["velocity"]["device_24h"] == 1
        assert [t["actor"] for t in uw["timeline"]] == ["cust-C0001", "decisioning"]
        assert world.counts()["audit"] == before + 2
        problem(api.call("GET", f"/v1/applications/{app['id']}", as_=ANALYST), 403, "permission_denied")

    def test_the_review_queue(self, world: World, api: Api) -> None:
        one, two = submitted(world, api, "C0001"), submitted(world, api, "C0002")
        world.decide(two["id"], "refer")
        r = api.call("GET", "/v1/applications?status=referred", as_=UNDERWRITER)
        assert [a["id"] for a in r.json()["items"]] == [two["id"]]
        page = api.call("GET", "/v1/applications?limit=1", as_=UNDERWRITER).json()
        assert [a["id"] for a in page["items"]] == [one["id"]] and page["next_after_id"] == one["id"]
        rest = api.call("GET", f"/v1/applications?limit=1&after_id={one['id']}", as_=UNDERWRITER).json()
        assert [a["id"] for a in rest["items"]] == [two["id"]] and rest["next_after_id"] is None
        own = api.call("GET", "/v1/applications", as_=customer("C0001")).json()
        assert [a["id"] for a in own["items"]] == [one["id"]]
        problem(
            api.call("GET", "/v1/applications?customer_id=C0002", as_=customer("C0001")),
            403,
            "permission_denied",
        )
        problem(api.call("GET", "/v1/applications?status=referred", as_=ANALYST), 403, "permission_denied")

    def test_withdraw_and_what_cannot_be_withdrawn(self, offered: World) -> None:
        api = Api(offered.container)
        app = submitted(offered, api)
        k = key()
        r = api.call("POST", f"/v1/applications/{app['id']}/withdraw", as_=customer("C0001"), key=k)
        assert r.status_code == 200 and r.json()["status"] == "withdrawn"
        assert offered.entry_status("C0001") == "offered"
        replay = api.call("POST", f"/v1/applications/{app['id']}/withdraw", as_=customer("C0001"), key=k)
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == r.json()
        found = refused(offered, api, 409, "illegal_transition", url=f"/v1/applications/{app['id']}/withdraw")
        assert found["details"]["allowed"] == []


class TestConsents:
    def test_texts_give_read_and_withdraw(self, world: World, api: Api) -> None:
        texts = api.call("GET", "/v1/consent-texts?kind=bureau_inquiry", as_=None).json()
        assert [(t["kind"], t["language"], t["version"]) for t in texts] == [
            ("bureau_inquiry", "zh", "v1"),
            ("bureau_inquiry", "en", "v1"),
        ]
        zh = texts[0]
        give = {
            "kind": "bureau_inquiry",
            "version": "v1",
            "language": "zh",
            "text_sha256": zh["sha256"],
            "channel": "h5",
        }
        r = api.call("POST", "/v1/customers/C0001/consents", as_=customer("C0001"), json=give, key=key())
        assert r.status_code == 201 and r.json()["status"] == "given" and r.json()["required_for_application"]
        read = api.call("GET", "/v1/customers/C0001/consents", as_=customer("C0001")).json()
        assert {c["kind"]: c["status"] for c in read["consents"]} == {
            "bureau_inquiry": "given",
            "personal_information": "never",
            "marketing": "never",
        }
        assert api.call("GET", "/v1/customers/C0001/consents", as_=ACCOUNT_MANAGER).status_code == 200
        problem(
            api.call("GET", "/v1/customers/C0001/consents", as_=customer("C0002")), 403, "permission_denied"
        )
        refused(
            world,
            api,
            409,
            "consent_text_changed",
            url="/v1/customers/C0001/consents",
            json=give | {"text_sha256": "f" * 64},
        )
        refused(
            world,
            api,
            404,
            "consent_text_not_found",
            url="/v1/customers/C0001/consents",
            json=give | {"version": "v7"},
        )
        refused(
            world,
            api,
            403,
            "permission_denied",
            url="/v1/customers/C0001/consents",
            json=give,
            as_=customer("C0002"),
        )
        refused(
            world,
            api,
            422,
            "invalid_request",
            url="/v1/customers/C0001/consents",
            json=give | {"kind": "everything"},
        )
        refused(
            world,
            api,
            409,
            "consent_not_given",
            url="/v1/customers/C0001/consents/marketing/withdraw",
            json={"channel": "app"},
        )
        w = api.call(
            "POST",
            "/v1/customers/C0001/consents/bureau_inquiry/withdraw",
            as_=customer("C0001"),
            json={"channel": "app"},
            key=key(),
        )
        assert w.status_code == 200 and w.json()["consent"]["status"] == "withdrawn"

    def test_a_consent_withdrawn_mid_application(self, offered: World) -> None:
        api = Api(offered.container)
        app = submitted(offered, api)
        r = api.call(
            "POST",
            "/v1/customers/C0001/consents/personal_information/withdraw",
            as_=customer("C0001"),
            json={"channel": "app", "ip": "203.0.113.9"},
            key=key(),
        )
        assert r.status_code == 200 and r.json()["cancelled_application_id"] == app["id"]
        got = api.call("GET", f"/v1/applications/{app['id']}", as_=customer("C0001")).json()
        assert got["status"] == "cancelled" and [t["status"] for t in got["timeline"]] == [
            "submitted",
            "cancelled",
        ]
        assert offered.entry_status("C0001") == "offered"
        found = refused(offered, api, 409, "consent_required", json=body())
        assert found["details"]["missing"] == ["personal_information"]


class TestReadsEndWithACommit:
    """A read that ends well commits its transaction instead of rolling it back (the same for
    the data): psycopg forgets a connection's prepared statements at every ROLLBACK, so each
    read had the next decision on its connection plan all its statements again."""

    def test_a_read_commits_and_a_refused_request_rolls_back(self, world: World, api: Api) -> None:
        ends: list[str] = []
        engine = world.container.engine
        listeners = [(name, lambda _conn, name=name: ends.append(name)) for name in ("commit", "rollback")]
        for name, fn in listeners:
            event.listen(engine, name, fn)
        try:
            assert api.call("GET", "/v1/customers/C0001/consents", as_=customer("C0001")).status_code == 200
            assert ends == ["commit"]
            ends.clear()
            problem(
                api.call("GET", "/v1/applications/987654", as_=customer("C0001")),
                404,
                "application_not_found",
            )
            assert ends == ["rollback"]
            ends.clear()
            bad = body(amount="4999.99")
            problem(
                api.call("POST", "/v1/applications", as_=customer("C0001"), json=bad, key=key()),
                422,
                "amount_outside_product",
            )
            assert ends == ["rollback"]
        finally:
            for name, fn in listeners:
                event.remove(engine, name, fn)

    def test_a_read_leaves_the_connection_s_prepared_statements(self, world: World, api: Api) -> None:
        engine = world.container.engine
        if engine.dialect.name != "postgresql":
            pytest.skip("prepared statements are PostgreSQL's")
        engine.dispose()  # one connection from here on, requests one after another
        for _ in range(3):  # prepared at the second run
            assert api.call("GET", "/v1/customers/C0001/consents", as_=customer("C0001")).status_code == 200
        with engine.connect() as conn:
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one()
            # the only connection in the pool: the one the reads ran on
            assert (engine.pool.checkedout(), engine.pool.checkedin()) == (1, 0)
        assert prepared > 0


class TestApplicationRead:
    def test_a_customer_s_read_of_an_application_reads_it_once(self, world: World, api: Api) -> None:
        """The application and its transitions, two statements: the timeline does not read the
        application again (the session no longer held the one the read had shown)."""
        app = submitted(world, api)
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            read = re.match(r"\s*SELECT\b.*?\bFROM\s+(\w+)", statement, re.S)
            if read:  # the reads, by the table each reads first
                statements.append(read.group(1))

        engine = world.container.engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            r = api.call("GET", f"/v1/applications/{app['id']}", as_=customer("C0001"))
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert r.status_code == 200, r.text
        assert [t["status"] for t in r.json()["timeline"]] == [t["status"] for t in app["timeline"]]
        assert statements == ["origination_application", "origination_application_event"]

    def test_the_timeline_of_no_application_is_not_found(self, world: World) -> None:
        from creditfactory.origination import service

        with world.container.uow() as uow, pytest.raises(service.ApplicationNotFound):
            service.timeline(uow, application_id=987654)


class TestContract:
    def test_read_accept_and_the_whitelist_moves_with_it(self, offered: World) -> None:
        api = Api(offered.container)
        app = submitted(offered, api)
        url = f"/v1/applications/{app['id']}/contract"
        problem(api.call("GET", url, as_=customer("C0001")), 409, "contract_not_available")
        offered.decide(app["id"], "approve", limit=D("40000.00"), annual_rate=D("0.0520"))
        contract = api.call("GET", url, as_=customer("C0001")).json()
        assert "人民币肆万元整（¥40,000.00）" in contract["text"] and not contract["signed"]
        accept = {
            "sha256": contract["sha256"],
            "channel": "app",
            "ip": "203.0.113.9",
            "device": {"fingerprint": "dev-C0001", "os": "iOS 17.5", "model": "iPhone15,2"},
        }
        found = refused(
            offered, api, 409, "contract_changed", url=f"{url}/accept", json=accept | {"sha256": "0" * 64}
        )
        assert found["details"]["sha256"] == contract["sha256"]
        refused(offered, api, 403, "permission_denied", url=f"{url}/accept", json=accept, as_=UNDERWRITER)
        refused(
            offered, api, 403, "permission_denied", url=f"{url}/accept", json=accept, as_=customer("C0002")
        )
        r = api.call("POST", f"{url}/accept", as_=customer("C0001"), json=accept, key=key())
        assert r.status_code == 200, r.text
        signed = r.json()
        assert signed["status"] == "contract_signed" and signed["contract"]["sha256"] == contract["sha256"]
        assert offered.entry_status("C0001") == "accepted"
        assert offered.events("origination.contract.accepted")[0][1]["limit"] == "40000.00"
        refused(offered, api, 409, "illegal_transition", url=f"{url}/accept", json=accept)
        assert api.call("GET", url, as_=customer("C0001")).json()["signed"] is True


# ------------------------------------------------------------------ the bank's own tokens

SECRET = "a-shared-secret-of-the-mobile-bank-0123456789-0123456789-abcdefgh"


def with_verifier(world: World, config: BankTokenConfig) -> Api:
    container = copy.copy(world.container)
    container.bank_tokens = BankTokenVerifier(config, world.container.clock)
    return Api(container)


def claims(world: World, **extra: Any) -> dict[str, Any]:
    now = world.container.clock.now()
    base = {"sub": "mb-user-881", "cif": "C0001", "iss": "mobile-bank", "aud": "creditfactory"}
    base["exp"] = int((now + timedelta(minutes=10)).timestamp())
    base.update(extra)
    return base


class TestBankTokens:
    def test_hs256_tokens_of_mobile_banking(self, world: World) -> None:
        api = with_verifier(
            world,
            BankTokenConfig(
                algorithm="HS256",
                key=SECRET,
                issuer="mobile-bank",
                audience="creditfactory",
                customer_claim="cif",
            ),
        )
        world.consent("C0001")
        token = jwt.encode(claims(world), SECRET, algorithm="HS256")
        r = api.call("POST", "/v1/applications", as_=token, json=body(), key=key())
        assert r.status_code == 201, r.text
        assert api.call("GET", f"/v1/applications/{r.json()['id']}", as_=token).status_code == 200
        problem(api.call("GET", "/v1/customers/C0002/consents", as_=token), 403, "permission_denied")
        # Our own tokens still work beside the bank's.
        assert api.call("GET", "/v1/customers/C0001/consents", as_=customer("C0001")).status_code == 200
        now = world.container.clock.now()
        for bad in (
            jwt.encode(
                claims(world, exp=int((now - timedelta(minutes=5)).timestamp())), SECRET, algorithm="HS256"
            ),
            jwt.encode(claims(world, aud="someone-else"), SECRET, algorithm="HS256"),
            jwt.encode(claims(world, iss="phishing"), SECRET, algorithm="HS256"),
            jwt.encode(claims(world), SECRET + "x", algorithm="HS256"),
            jwt.encode({k: v for k, v in claims(world).items() if k != "cif"}, SECRET, algorithm="HS256"),
            jwt.encode({k: v for k, v in claims(world).items() if k != "exp"}, SECRET, algorithm="HS256"),
            jwt.encode(claims(world), SECRET, algorithm="HS512"),
            "not-a-token",
        ):
            problem(api.call("GET", "/v1/customers/C0001/consents", as_=bad), 401, "unauthenticated")

    def test_rs256_tokens_signed_with_the_banks_private_key(self, world: World) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        api = with_verifier(
            world, BankTokenConfig(algorithm="RS256", key=public.decode(), customer_claim="cif")
        )
        token = jwt.encode(claims(world), private, algorithm="RS256")
        assert api.call("GET", "/v1/customers/C0001/consents", as_=token).status_code == 200
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        problem(
            api.call(
                "GET", "/v1/customers/C0001/consents", as_=jwt.encode(claims(world), other, algorithm="RS256")
            ),
            401,
            "unauthenticated",
        )
        # A token signed with the public key as an HMAC secret (algorithm confusion) is refused.
        forged = jwt.encode(claims(world), SECRET, algorithm="HS256")
        problem(api.call("GET", "/v1/customers/C0001/consents", as_=forged), 401, "unauthenticated")

    def test_bad_configurations_are_refused_at_start(self) -> None:
        with pytest.raises(ValueError, match="at least 32 bytes"):
            BankTokenConfig(algorithm="HS256", key="short")
        with pytest.raises(ValueError, match="PEM public key"):
            BankTokenConfig(algorithm="RS256", key="not a key")
        with pytest.raises(ValueError, match="HS256 or RS256|one of"):
            BankTokenConfig(algorithm="none", key=SECRET)
