"""One Idempotency-Key sent by two principals for the same line or loan: the stored responses
are kept per principal, so the second request reaches the drawdown or the repayment, which the
key finds already made. It is answered with it only when the request asked for the same one."""

from __future__ import annotations

import pytest

from creditfactory.bootstrap import Container
from tests.servicing.test_api import Api


@pytest.fixture
def api(book: Container) -> Api:
    return Api(book)


@pytest.mark.parametrize(
    ("second", "status"),
    [
        ({"method": "equal_principal"}, 422),  # another method
        ({"term": 6}, 422),  # another term
        ({"method": "equal_installment"}, 201),  # the same loan
        ({}, 201),  # the line's defaults: whatever was made
    ],
)
def test_a_key_already_used_by_another_principal(api: Api, second: dict[str, object], status: int) -> None:
    line_id = api.open_line()
    body = {"amount": "12000.00", "term": 12, "method": "equal_installment"}
    first = api.post(f"/v1/lines/{line_id}/drawdowns", token=api.owner, key="K-1", json=body)
    assert first.status_code == 201, first.text
    again = {"amount": "12000.00", **({"term": 12} if "term" not in second else {}), **second}
    r = api.post(f"/v1/lines/{line_id}/drawdowns", token=api.staff, key="K-1", json=again)
    assert r.status_code == status, r.text
    if status == 422:
        assert r.json()["code"] == "idempotency_key_reused"
    else:
        assert r.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        ("keep_term", "keep_instalment", 422),  # another choice
        ("keep_term", None, 422),  # the product's choice is another request
        ("keep_term", "keep_term", 201),
        (None, None, 201),
    ],
)
def test_a_repayment_key_already_used_by_another_principal(
    api: Api, first: str | None, second: str | None, status: int
) -> None:
    loan = api.loan()
    url = f"/v1/loans/{loan['id']}/repayments"
    asked = [{"amount": "3000.00"} | ({"prepayment": p} if p else {}) for p in (first, second)]
    made = api.post(url, token=api.owner, key="R-1", json=asked[0])
    assert made.status_code == 201, made.text
    r = api.post(url, token=api.staff, key="R-1", json=asked[1])
    assert r.status_code == status, r.text
    if status == 422:
        assert r.json()["code"] == "idempotency_key_reused"
    else:
        assert r.json()["transaction_id"] == made.json()["transaction_id"]
