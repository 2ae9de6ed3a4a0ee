"""The HTTP API through httpx's ASGI transport: errors, request ids, customers, ingestions."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError, OperationalError

from creditfactory.api import create_app
from creditfactory.bootstrap import Container
from creditfactory.config import SecuritySettings, Settings
from creditfactory.contract import IngestSettings, service
from creditfactory.db import migrate
from creditfactory.security import masking
from creditfactory.security.roles import Principal, Role
from tests.factories import bank_extract, write_extract

TOKEN_SECRET = "token-secret-for-the-api-tests-0123456789"
PROBLEM = "application/problem+json"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=db_url,
        security=SecuritySettings(token_secret=SecretStr(TOKEN_SECRET)),
    )


class Api:
    """A synchronous face for an httpx client on the ASGI app."""

    def __init__(self, container: Container) -> None:
        self.app = create_app(container)
        self.tokens = container.tokens

    def token(self, *roles: Role, user: str = "u-1", branch: str | None = None) -> str:
        return self.tokens.issue(Principal(user, frozenset(roles), branch_id=branch))

    def request(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://creditfactory.test") as client:
                return await client.request(method, url, headers=sent, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)


@pytest.fixture
def api(container: Container) -> Api:
    return Api(container)


@pytest.fixture
def loaded(container: Container, tmp_path: Path) -> Container:
    """Branches, staff and customers of the factory extract, loaded."""
    tables = {
        name: rows for name, rows in bank_extract().items() if name in ("branches", "staff", "customers")
    }
    service.ingest_directory(
        directory=write_extract(tmp_path / "extract", tables=tables),
        uow_factory=container.sessions,
        clock=container.clock,
        vault=container.vault,
        settings=IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir),
    )
    return container


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://creditfactory.dev/problems/{code}"
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def signed(payload: dict[str, Any]) -> str:
    """A token in the documented format, as the bank's identity provider would sign it."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    mac = hmac.new(TOKEN_SECRET.encode(), f"cf1.{body}".encode(), hashlib.sha256).digest()
    return f"cf1.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


class TestHealth:
    def test_reports_database_and_schema(self, api: Api, container: Container) -> None:
        response = api.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["database"] == container.engine.dialect.name
        assert (body["schema_revision"], body["schema_current"]) == (migrate.head(), True)


class TestRequestId:
    def test_echoed(self, api: Api) -> None:
        response = api.get("/health", headers={"X-Request-ID": "branch-7f3a"})
        assert response.headers["x-request-id"] == "branch-7f3a"

    def test_made_when_missing_or_too_long(self, api: Api) -> None:
        for headers in ({}, {"X-Request-ID": "x" * 65}):
            rid = api.get("/health", headers=headers).headers["x-request-id"]
            assert len(rid) == 32
            int(rid, 16)

    def test_named_in_problems(self, api: Api) -> None:
        response = api.get("/v1/customers/C0001", headers={"X-Request-ID": "req-42"})
        assert problem(response, 401, "unauthenticated")["request_id"] == "req-42"


class TestProblems:
    def test_401_without_a_token(self, api: Api) -> None:
        response = api.get("/v1/customers/C0001")
        body = problem(response, 401, "unauthenticated")
        assert "Authorization: Bearer" in body["detail"]
        assert response.headers["www-authenticate"] == "Bearer"

    def test_401_with_a_tampered_token(self, api: Api) -> None:
        token = api.token(Role.AUDITOR)
        head, payload, mac = token.split(".")
        forged = signed({"sub": "x"}).split(".")[1]
        body = problem(api.get("/v1/audit/access", token=f"{head}.{forged}.{mac}"), 401, "unauthenticated")
        assert body["detail"] == "bearer token signature does not verify"

    def test_401_when_expired(self, api: Api, container: Container) -> None:
        token = api.token(Role.AUDITOR)
        container.clock.advance(hours=8, seconds=1)
        body = problem(api.get("/v1/audit/access", token=token), 401, "unauthenticated")
        assert body["detail"] == "bearer token has expired"

    @pytest.mark.parametrize(
        "payload",
        [
            {"sub": "idp-1", "kind": "staff", "roles": ["auditor"]},  # no expiry
            {"kind": "staff", "roles": ["auditor"], "exp": 4102444800},  # no subject
            {"sub": "idp-1", "kind": "staff", "roles": ["customer"], "exp": 4102444800},  # staff as customer
            {"sub": "idp-1", "kind": "staff", "roles": ["auditor"], "exp": "soon"},
        ],
    )
    def test_401_for_a_signed_token_with_a_bad_payload(self, api: Api, payload: dict[str, Any]) -> None:
        body = problem(api.get("/v1/audit/access", token=signed(payload)), 401, "unauthenticated")
        assert body["detail"].startswith("bearer token payload is invalid")

    def test_a_token_from_the_identity_provider(self, api: Api) -> None:
        token = signed({"sub": "idp-1", "kind": "staff", "roles": ["auditor"], "exp": 4102444800})
        assert api.get("/v1/audit/access", token=token).status_code == 200

    def test_403_when_the_role_lacks_the_permission(self, api: Api) -> None:
        body = problem(
            api.get("/v1/customers/C0001", token=api.token(Role.IT_OPERATIONS)), 403, "permission_denied"
        )
        assert body["detail"] == "principal u-1 (staff) lacks permission customer.read"

    def test_404_for_an_unknown_customer(self, api: Api) -> None:
        body = problem(api.get("/v1/customers/C9999", token=api.token(Role.UNDERWRITER)), 404, "not_found")
        assert body["detail"] == "customer C9999 does not exist"
        assert body["details"] == {"customer_id": "C9999"}

    def test_404_for_an_unknown_path(self, api: Api) -> None:
        problem(api.get("/v1/nowhere"), 404, "not_found")

    def test_422_for_an_invalid_body(self, api: Api) -> None:
        response = api.post(
            "/v1/ingestions",
            json={"folder": "x"},
            token=api.token(Role.IT_OPERATIONS),
            headers={"Idempotency-Key": "k"},
        )
        body = problem(response, 422, "invalid_request")
        assert [e["field"] for e in body["errors"]] == ["body.directory"]
        assert body["detail"].startswith("body.directory: ")

    def test_500_names_the_request_and_hides_the_cause(
        self, api: Api, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("password=hunter2 in a stack trace")

        monkeypatch.setattr(service, "view_customer", broken)
        response = api.get(
            "/v1/customers/C0001", token=api.token(Role.UNDERWRITER), headers={"X-Request-ID": "r-500"}
        )
        body = problem(response, 500, "internal_error")
        assert body["detail"] == "unexpected error; quote request id r-500"
        assert "hunter2" not in response.text

    def test_503_when_the_database_connection_is_lost_mid_request(
        self, api: Api, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def lost(*args: Any, **kwargs: Any) -> None:
            raise DBAPIError(
                "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
            )

        monkeypatch.setattr(service, "view_customer", lost)
        response = api.get(
            "/v1/customers/C0001", token=api.token(Role.UNDERWRITER), headers={"X-Request-ID": "r-503"}
        )
        body = problem(response, 503, "database_unavailable")
        assert response.headers["Retry-After"] == "1"
        assert body["request_id"] == "r-503" and "send it again" in body["detail"]
        assert "server closed" not in response.text

    def test_503_when_the_database_cannot_be_reached(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        def down(*args: Any, **kwargs: Any) -> None:  # as SQLAlchemy raises a failed connect
            raise OperationalError(None, None, Exception("connection refused"))

        monkeypatch.setattr(service, "view_customer", down)
        response = api.get("/v1/customers/C0001", token=api.token(Role.UNDERWRITER))
        problem(response, 503, "database_unavailable")
        assert response.headers["Retry-After"] == "1"

    def test_any_other_database_error_is_a_500(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(*args: Any, **kwargs: Any) -> None:
            raise DBAPIError("SELECT secret", {}, Exception("syntax error at secret"))

        monkeypatch.setattr(service, "view_customer", broken)
        response = api.get("/v1/customers/C0001", token=api.token(Role.UNDERWRITER))
        problem(response, 500, "internal_error")
        assert "secret" not in response.text


class TestCustomers:
    def test_masked_for_an_account_manager(self, api: Api, loaded: Container) -> None:
        zhang = bank_extract()["customers"][0]
        response = api.get("/v1/customers/C0001", token=api.token(Role.ACCOUNT_MANAGER, branch="B01"))
        assert response.status_code == 200
        body = response.json()
        assert body["masked"] is True
        assert body["name"] == "张*"
        assert body["phone"] == "138****5678"
        assert body["id_number"] == masking.mask_id_number(zhang["id_number"])
        assert body["id_number"].startswith("330") and "*" in body["id_number"]
        assert body["address"] == "浙江省湖州市****"
        assert (body["segment"], body["branch_id"], body["birth_date"]) == ("farmer", "B01", "1980-05-17")

    def test_in_clear_for_an_underwriter(self, api: Api, loaded: Container) -> None:
        zhang = bank_extract()["customers"][0]
        body = api.get("/v1/customers/C0001", token=api.token(Role.UNDERWRITER)).json()
        assert body["masked"] is False
        assert (body["name"], body["phone"], body["id_number"], body["address"]) == (
            "张伟",
            "13812345678",
            zhang["id_number"],
            zhang["address"],
        )

    def test_refused_to_an_account_manager_of_another_branch(self, api: Api, loaded: Container) -> None:
        token = api.token(Role.ACCOUNT_MANAGER, branch="B02")
        body = problem(api.get("/v1/customers/C0001", token=token), 403, "permission_denied")
        assert "B02" in body["detail"] and "B01" in body["detail"]
        assert api.get("/v1/customers/C0004", token=token).status_code == 200

    def test_every_read_is_audited(self, api: Api, loaded: Container) -> None:
        manager = api.token(Role.ACCOUNT_MANAGER, user="am-1", branch="B01")
        underwriter = api.token(Role.UNDERWRITER, user="uw-1")
        api.get("/v1/customers/C0001", token=manager, headers={"X-Request-ID": "r-1"})
        loaded.clock.advance(minutes=5)
        api.get(
            "/v1/customers/C0001?purpose=loan%20review", token=underwriter, headers={"X-Request-ID": "r-2"}
        )
        api.get("/v1/customers/C0002", token=underwriter, headers={"X-Request-ID": "r-3"})
        api.get("/v1/customers/C0004", token=manager)  # another branch: refused, not a read

        auditor = api.token(Role.AUDITOR, user="au-1")
        response = api.get("/v1/audit/access", params={"subject_id": "C0001"}, token=auditor)
        assert response.status_code == 200
        rows = response.json()
        assert [(r["principal_id"], r["unmasked"], r["purpose"], r["request_id"]) for r in rows] == [
            ("uw-1", True, "loan review", "r-2"),
            ("am-1", False, "service", "r-1"),
        ]
        assert rows[1]["roles"] == "account_manager"
        assert rows[1]["fields"] == "name,id_number,phone,address"
        assert rows[1]["at"] == "2025-07-01T02:00:00Z"
        assert rows[0]["at"] == "2025-07-01T02:05:00Z"
        everything = api.get("/v1/audit/access", token=auditor).json()
        assert [r["request_id"] for r in everything] == ["r-3", "r-2", "r-1"]
        by_manager = api.get("/v1/audit/access", params={"principal_id": "am-1"}, token=auditor).json()
        assert [r["subject_id"] for r in by_manager] == ["C0001"]

    def test_only_auditors_read_the_audit_trail(self, api: Api) -> None:
        token = api.token(Role.UNDERWRITER)
        problem(api.get("/v1/audit/access", token=token), 403, "permission_denied")


class TestIngestions:
    @pytest.fixture
    def inbox(self, container: Container) -> Path:
        return write_extract(container.data_dir / "inbox" / "2025-06-30")

    def post(self, api: Api, body: Any, key: str | None = "k-1", token: str | None = None) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        return api.post(
            "/v1/ingestions", json=body, token=token or api.token(Role.IT_OPERATIONS), headers=headers
        )

    def test_loads_the_folder(self, api: Api, inbox: Path) -> None:
        response = self.post(api, {"directory": "2025-06-30"})
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["loaded"], body["rejected"]) == (59, 0)
        assert body["tables"]["customers"]["loaded"] == 8
        assert "idempotent-replayed" not in response.headers
        token = api.token(Role.IT_OPERATIONS)
        run = api.get(f"/v1/ingestions/{body['run_id']}", token=token).json()
        assert run["status"] == "completed"
        assert len(run["files"]) == 16

    def test_needs_an_idempotency_key(self, api: Api, inbox: Path) -> None:
        body = problem(self.post(api, {"directory": "2025-06-30"}, key=None), 400, "idempotency_key_missing")
        assert "Idempotency-Key" in body["detail"]

    def test_a_repeat_returns_the_first_result(self, api: Api, inbox: Path) -> None:
        first = self.post(api, {"directory": "2025-06-30"})
        again = self.post(api, {"directory": "2025-06-30"})
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        runs = api.get("/v1/ingestions", token=api.token(Role.IT_OPERATIONS)).json()
        assert len(runs) == 1

    def test_same_key_with_another_body_is_refused(self, api: Api, inbox: Path) -> None:
        self.post(api, {"directory": "2025-06-30"})
        body = problem(self.post(api, {"directory": "2025-07-31"}), 422, "idempotency_key_reused")
        assert "'k-1'" in body["detail"]

    def test_keys_belong_to_the_caller(self, api: Api, inbox: Path) -> None:
        self.post(api, {"directory": "2025-06-30"})
        other = api.tokens.issue(Principal("ops-2", frozenset({Role.IT_OPERATIONS})))
        response = self.post(api, {"directory": "2025-06-30"}, token=other)
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers
        assert response.json()["loaded"] == 0  # the files were loaded already

    @pytest.mark.parametrize("directory", ["../elsewhere", "/etc", "2025-06-30/../../var"])
    def test_a_folder_outside_the_inbox_is_refused(self, api: Api, inbox: Path, directory: str) -> None:
        body = problem(self.post(api, {"directory": directory}), 422, "invalid_input")
        assert "inside the inbox" in body["detail"]

    def test_a_failed_load_can_be_retried_with_the_same_key(self, api: Api, container: Container) -> None:
        body = problem(self.post(api, {"directory": "2025-06-30"}), 422, "extract_unreadable")
        assert "does not exist" in body["detail"]
        write_extract(container.data_dir / "inbox" / "2025-06-30")
        response = self.post(api, {"directory": "2025-06-30"})
        assert response.status_code == 201
        assert response.json()["loaded"] == 59

    def test_needs_the_ingest_permission(self, api: Api, inbox: Path) -> None:
        token = api.token(Role.ACCOUNT_MANAGER, branch="B01")
        problem(self.post(api, {"directory": "2025-06-30"}, token=token), 403, "permission_denied")


def test_contract_tables_are_published(api: Api) -> None:
    tables = api.get("/v1/contract/tables").json()
    assert len(tables) == 16
    customers = next(t for t in tables if t["name"] == "customers")
    assert customers["key"] == ["customer_id"]
    assert {c["name"] for c in customers["columns"] if c["pii"]} == {"id_number", "name", "phone", "address"}


class TestRouting:
    def test_no_two_routers_answer_the_same_request(self, api: Api) -> None:
        """Routers are matched in the order included (the customers' API first): that order must
        not decide which route answers, so no path of one router is matched by another's route
        for the same method."""
        import re

        from starlette.routing import Match

        routes = [
            (i, route)
            for i, included in enumerate(api.app.router.routes)
            for route in getattr(getattr(included, "original_router", None), "routes", [])
        ]
        assert len({i for i, _ in routes}) >= 6 and len(routes) > 30
        clashes = []
        for i, route in routes:
            path = re.sub(r"\{[^}]+\}", "x1", route.path)  # a request that route answers
            for method in route.methods:
                scope = {"type": "http", "path": path, "method": method, "root_path": ""}
                for j, other in routes:
                    if j != i and other.matches(scope)[0] is Match.FULL:
                        clashes.append(f"{method} {path}: {route.path} and {other.path}")
        assert clashes == []
        # and the customers' API is tried first
        first = next(r for i, r in routes if i == routes[0][0])
        assert first.path.startswith("/v1/applications")
