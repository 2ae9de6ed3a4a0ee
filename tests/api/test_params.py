"""Path, query and body values that the database cannot hold are refused at the door, as a 422
naming the parameter, on SQLite and PostgreSQL: an id past a BIGINT's range, a NUL byte (which
PostgreSQL refuses in text), a negative page size, an IPv6 address with a zone. Before, each of
these reached the database and was answered with a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest

from creditfactory.api.params import MAX_ID
from creditfactory.bootstrap import Container
from creditfactory.security.roles import Principal, Role
from tests.servicing.test_api import Api

BIG = MAX_ID + 1  # one past the largest BIGINT


@pytest.fixture
def api(book: Container) -> Api:
    return Api(book)


def _routes() -> list[Any]:
    from creditfactory.api import system
    from creditfactory.console import decisions as console_decisions
    from creditfactory.contract import api as contract_api
    from creditfactory.decisioning import api as decisioning_api
    from creditfactory.origination import api as origination_api
    from creditfactory.servicing import api as servicing_api
    from creditfactory.whitelist import api as whitelist_api

    modules = (origination_api, system, contract_api, servicing_api, whitelist_api, decisioning_api)
    return [r for m in (*modules, console_decisions) for r in m.router.routes]


def _params(dependant: Any) -> list[tuple[str, Any]]:
    found = [("path", p) for p in dependant.path_params] + [("query", p) for p in dependant.query_params]
    for sub in dependant.dependencies:
        found += _params(sub)
    return found


def _bound(meta: list[Any], name: str) -> Any:
    return next((getattr(m, name) for m in meta if getattr(m, name, None) is not None), None)


def test_every_int_and_str_parameter_is_bounded(api: Api) -> None:
    """Every route's int path and query parameters have a lower and an upper bound within a
    BIGINT; every str one has a pattern that refuses a NUL byte and a bounded length."""
    routes = _routes()
    # every route the app serves is among those walked (a new router must be added above)
    served = {(m.upper(), path) for path, ops in api.app.openapi()["paths"].items() for m in ops}
    assert served <= {(m, r.path) for r in routes for m in r.methods}
    loose = []
    for route in routes:
        for where, p in _params(route.dependant):
            meta, kind = p.field_info.metadata, p.field_info.annotation
            what = f"{sorted(route.methods)} {route.path} {where} {p.name}"
            if kind in (int, int | None):
                ge, le = _bound(meta, "ge"), _bound(meta, "le")
                if ge is None or le is None or le > MAX_ID:
                    loose.append(what)
            elif kind in (str, str | None):
                pattern, most = _bound(meta, "pattern"), _bound(meta, "max_length")
                if (
                    pattern is None
                    or re.search(pattern, "\x00")
                    or (most is None and re.search(pattern, "a" * 1000))
                ):
                    loose.append(what)
    assert loose == []


@pytest.mark.parametrize(
    ("role", "method", "url", "body", "field"),
    [
        (None, "GET", f"/v1/lines/{BIG}", None, "path.line_id"),
        (None, "GET", f"/v1/loans/{BIG}", None, "path.loan_id"),
        (None, "GET", f"/v1/loans/{BIG}/payoff", None, "path.loan_id"),
        (None, "POST", f"/v1/lines/{BIG}/drawdowns", {"amount": "1000.00", "term": 12}, "path.line_id"),
        (None, "POST", f"/v1/loans/{BIG}/repayments", {"amount": "1000.00"}, "path.loan_id"),
        (None, "GET", "/v1/products/%00", None, "path.code"),
        (Role.OPERATIONS, "POST", f"/v1/lines/{BIG}/freeze", None, "path.line_id"),
        (Role.RISK_ANALYST, "GET", f"/v1/whitelists/{BIG}", None, "path.version_id"),
        (Role.IT_OPERATIONS, "GET", f"/v1/ingestions/{BIG}", None, "path.run_id"),
        (Role.IT_OPERATIONS, "GET", "/v1/ingestions?limit=-1", None, "query.limit"),
        (Role.IT_OPERATIONS, "POST", "/v1/ingestions", {"directory": "a\x00b"}, "body.directory"),
        (Role.UNDERWRITER, "GET", "/v1/customers/%00", None, "path.customer_id"),
        (Role.UNDERWRITER, "GET", "/v1/customers/C0000001?purpose=%00", None, "query.purpose"),
        (Role.UNDERWRITER, "GET", "/v1/customers/%00/offer", None, "path.customer_id"),
        (Role.AUDITOR, "GET", "/v1/audit/access?subject_id=%00", None, "query.subject_id"),
        (Role.AUDITOR, "GET", "/v1/audit/access?limit=-1", None, "query.limit"),
        (
            Role.OPERATIONS,
            "POST",
            "/v1/lines",
            {"customer_id": "C\x00", "product_code": "farmer_revolving_line", "limit": "1000.00"},
            "body.customer_id",
        ),
        (
            Role.OPERATIONS,
            "POST",
            "/v1/lines",
            {"customer_id": "C0000001", "product_code": "farm\x00", "limit": "1000.00"},
            "body.product_code",
        ),
    ],
)
def test_values_the_database_cannot_hold_are_refused_naming_them(
    api: Api, role: Role | None, method: str, url: str, body: object, field: str
) -> None:
    token = api.owner if role is None else api.tokens.issue(Principal("s-1", frozenset({role})))
    r = api.request(method, url, token=token, key="k-1", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_request"
    assert field in [e["field"] for e in r.json()["errors"]]


def test_a_write_off_reason_may_span_lines_but_holds_no_nul(api: Api) -> None:
    loan = api.loan()
    auditor = api.tokens.issue(Principal("ops-2", frozenset({Role.OPERATIONS})))
    r = api.post(f"/v1/loans/{loan['id']}/write-off", token=auditor, json={"reason": "court\x00order"})
    assert r.status_code == 422, r.text
    assert "body.reason" in [e["field"] for e in r.json()["errors"]]


def test_a_page_size_above_its_most_is_refused_not_cut(api: Api) -> None:
    auditor = api.tokens.issue(Principal("au-2", frozenset({Role.AUDITOR})))
    assert api.get("/v1/audit/access?limit=1000", token=auditor).status_code == 200
    r = api.get("/v1/audit/access?limit=1001", token=auditor)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("query", ["term=12&start=9999-12-31", "term=600&start=9999-01-01"])
def test_a_schedule_past_the_year_9999_is_refused(api: Api, query: str) -> None:
    """The loan calculator is public: due dates past the last representable date are the
    request's fault (422), not the server's."""
    r = api.request("GET", f"/v1/schedule?amount=100000.00&rate=0.05&{query}")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_schedule" and "9999" in r.json()["detail"]
