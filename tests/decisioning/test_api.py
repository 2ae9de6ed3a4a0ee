"""The decision records over HTTP: staff read them as JSON and as a page; customers never do."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditfactory.bootstrap import Container
from tests.decisioning.deciding import Ready, Trained, make_ready
from tests.decisioning.test_decide import apply
from tests.origination.conftest import World, offered, world  # noqa: F401  (fixtures)
from tests.origination.test_api import ACCOUNT_MANAGER, ANALYST, UNDERWRITER, Api, customer, problem
from tests.whitelist.conftest import bank, publish  # noqa: F401  (fixtures)


@pytest.fixture
def ready(offered: World, bank: Container, tmp_path: Path, trained: Trained) -> Ready:  # noqa: F811
    for cid in ("C0001", "C0004"):
        offered.consent(cid)
    return make_ready(offered.container, tmp_path, trained)


def test_staff_read_the_record_customers_do_not(ready: Ready) -> None:
    api = Api(ready.container)
    app = apply(api, "C0004")  # declined on the score
    r = api.call("GET", f"/v1/applications/{app['id']}/decision", as_=UNDERWRITER)
    assert r.status_code == 200, r.text
    d = r.json()["decision"]
    assert d["outcome"] == "decline" and d["reason_code"] == "D_SCORE" and r.json()["shadow"] == []
    assert d["inputs"]["portrait"]["row"]["current_dpd"] == 12
    assert {
        "code": "R_OVERDUE",
        "en": "Overdue up to 30 days",
        "zh": "当前存在30天以内逾期",
        "source": "strategy",
    } in d["reasons"]
    same = api.call("GET", f"/v1/decisions/{d['id']}", as_=ACCOUNT_MANAGER).json()
    assert same == d
    problem(api.call("GET", f"/v1/decisions/{d['id']}", as_=ANALYST), 403, "permission_denied")
    listed = api.call("GET", "/v1/decisions?outcome=decline", as_=UNDERWRITER).json()
    assert [i["id"] for i in listed["items"]] == [d["id"]]
    problem(api.call("GET", f"/v1/decisions/{d['id']}", as_=customer("C0004")), 403, "permission_denied")
    problem(
        api.call("GET", f"/v1/applications/{app['id']}/decision", as_=customer("C0004")),
        403,
        "permission_denied",
    )
    problem(api.call("GET", "/v1/decisions/999", as_=UNDERWRITER), 404, "decision_not_found")
    page = api.call("GET", f"/console/decisions/{d['id']}", as_=UNDERWRITER)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (
        "拒绝 · Declined" in page.text and "D_SCORE" in page.text and "评分低于该客群准入分数线" in page.text
    )
    problem(api.call("GET", f"/console/decisions/{d['id']}", as_=customer("C0004")), 403, "permission_denied")


@pytest.mark.browser
def test_the_underwriter_page_in_a_phone_sized_browser(ready: Ready, tmp_path: Path) -> None:
    import re

    from tests.browser import MEASURE, dump_dom

    api = Api(ready.container)
    app = apply(api, "C0001")
    decision = api.call("GET", f"/v1/applications/{app['id']}/decision", as_=UNDERWRITER).json()["decision"]
    page = api.call("GET", f"/console/decisions/{decision['id']}", as_=UNDERWRITER)
    assert page.status_code == 200
    path = tmp_path / "decision.html"
    path.write_text(page.text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = dump_dom(path, width=390, height=844)
    scroll = int(re.search(r'data-scroll-width="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    window = int(re.search(r'data-window-width="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert scroll <= window, f"the page is {scroll}px wide in a {window}px phone window"
    assert "批准 · Approved" in dom and "W_OFFER_PRICE" in dom and "利率按预授信利率执行" in dom
    assert "tiny_scorecard v1" in dom and "决策事实" in dom and "Relationship graph" in dom
