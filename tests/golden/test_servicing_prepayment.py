"""Early partial repayment through the service, checked against numpy-financial.

A loan of 100,000 at 4.35% over 12 months, 等额本息 on 30/360 (the Chinese bank worked example),
drawn on 15 January 2025; every end of day runs. On the first due date (15 February) the
customer pays the instalment plus 20,000 of principal:

- ``keep_term`` (减少月供): the eleven remaining due dates stay, and the new instalment is
  numpy-financial's ``pmt(0.0435 / 12, 11, -71831.51)`` rounded to the fen, the balance being
  100,000 − 8,168.49 (the first instalment's principal) − 20,000;
- ``keep_instalment`` (缩短期限): the instalment stays 8,530.99 and the number of remaining
  instalments is ``ceil(nper(0.0435 / 12, -8530.99, 71831.51))`` (numpy-financial).

Between due dates the prepayment first pays the interest accrued to that day, and the current
period's interest then runs on the new balance from the prepayment date (30E/360 days).
Every day's trial balance is zero and the loans agree with the journal (the end of day checks).
"""

from __future__ import annotations

import math
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy_financial as npf
import pytest

from creditfactory import ledger
from creditfactory.bootstrap import Container
from creditfactory.errors import InvalidInput
from creditfactory.jobs import current_business_date, open_business_date, run_eod
from creditfactory.servicing import jobs as servicing_jobs
from creditfactory.servicing import service
from creditfactory.servicing.model import load_products, sample_products_dir

D = Decimal
START = date(2025, 1, 15)
FIRST_DUE = date(2025, 2, 15)
RATE = 0.0435 / 12
LEVEL = D("8530.99")  # the worked example's 等额本息 instalment
BALANCE = D("100000") - D("8168.49") - D("20000")  # after the first instalment and the prepayment


def fen(x: float) -> Decimal:
    return D(repr(x)).quantize(D("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def loan(container: Container) -> tuple[Container, int]:
    c = container
    with c.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=c.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=START, clock=c.clock)
        line = service.open_line(
            uow.session,
            customer_id="C0000001",
            product_code="consumer_equal_installment",
            limit=D("100000.00"),
            business_date=START,
            clock=c.clock,
        )
        drawn = service.draw_down(
            uow.session,
            line_id=line.id,
            amount=D("100000.00"),
            term=12,
            business_date=START,
            clock=c.clock,
            method="equal_installment",
            key="d1",
        )
        uow.commit()
        return c, drawn.loan.id


#: The steps a performing loan needs day by day (accrual, due dates); each test ends with one
#: full end of day, whose reconciliation and trial balance check the books.
DAILY = [s for s in servicing_jobs.STEPS if s.name in ("servicing.accrue_interest", "servicing.mark_overdue")]


def close_until(c: Container, day: date) -> None:
    """Run the end of day until ``day`` is the open business date."""
    while True:
        with c.uow() as uow:
            if current_business_date(uow.session) >= day:
                return
        run_eod(sessions=c.sessions, clock=c.clock, steps=DAILY)


@pytest.fixture(autouse=True)
def books_agree(loan: tuple[Container, int]):  # type: ignore[no-untyped-def]
    """After each test, one full end of day: the loans agree with the journal, which balances."""
    yield
    c, _ = loan
    report = run_eod(sessions=c.sessions, clock=c.clock)
    assert {s.name for s in report.steps} >= {"servicing.reconcile", "ledger.trial_balance"}


def pay(c: Container, loan_id: int, amount: Decimal, key: str, prepayment: str | None = None) -> None:
    with c.uow() as uow:
        service.repay(
            uow.session,
            loan_id=loan_id,
            amount=amount,
            business_date=current_business_date(uow.session),
            clock=c.clock,
            key=key,
            prepayment=prepayment,
        )
        uow.commit()


def schedule(c: Container, loan_id: int) -> list[tuple[int, date, Decimal, Decimal, str]]:
    with c.uow() as uow:
        _, rows = service.get_loan(uow.session, loan_id)
        return [(r.number, r.due_date, r.principal, r.interest, r.status) for r in rows]


class TestOnADueDate:
    def test_keep_term_lowers_the_instalment_to_pmt_on_the_remaining_balance(
        self, loan: tuple[Container, int]
    ) -> None:
        c, loan_id = loan
        before = schedule(c, loan_id)
        close_until(c, FIRST_DUE)
        pay(c, loan_id, LEVEL + D("20000"), "p1", prepayment="keep_term")
        after = schedule(c, loan_id)
        expected = fen(float(npf.pmt(RATE, 11, -float(BALANCE))))  # numpy-financial
        assert expected == D("6673.02")  # by hand: 71831.51 × r / (1 − (1 + r)^−11), r = 0.003625
        coming = after[1:]
        assert [r[0] for r in coming] == list(range(2, 13))  # the term stays 12 months
        assert [r[1] for r in coming] == [r[1] for r in before[1:]]  # so do the due dates
        assert all(p + i == expected for _, _, p, i, _ in coming[:-1])
        assert abs(coming[-1][2] + coming[-1][3] - expected) <= D("0.05")  # the last clears the balance
        assert sum(r[2] for r in coming) == BALANCE
        # Each month's interest is numpy-financial's ipmt within the fen rounding drift.
        for k, (_, _, _, interest, _) in enumerate(coming, start=1):
            assert abs(interest - fen(float(-npf.ipmt(RATE, k, 11, float(BALANCE))))) <= D("0.02")
        with c.uow() as uow:
            loan_row, _ = service.get_loan(uow.session, loan_id)
            assert (loan_row.outstanding_principal, loan_row.term) == (BALANCE, 12)

    def test_keep_instalment_shortens_the_term_to_nper(self, loan: tuple[Container, int]) -> None:
        c, loan_id = loan
        close_until(c, FIRST_DUE)
        pay(c, loan_id, LEVEL + D("20000"), "p1", prepayment="keep_instalment")
        coming = schedule(c, loan_id)[1:]
        months = math.ceil(float(npf.nper(RATE, -float(LEVEL), float(BALANCE))))  # numpy-financial
        assert months == 9
        assert [r[0] for r in coming] == list(range(2, 2 + months))
        assert all(p + i == LEVEL for _, _, p, i, _ in coming[:-1])
        assert coming[-1][2] + coming[-1][3] < LEVEL
        assert sum(r[2] for r in coming) == BALANCE
        with c.uow() as uow:
            loan_row, _ = service.get_loan(uow.session, loan_id)
            assert (loan_row.term, loan_row.maturity_date) == (10, date(2025, 11, 15))

    def test_the_product_chooses_when_the_customer_does_not(self, loan: tuple[Container, int]) -> None:
        c, loan_id = loan
        close_until(c, FIRST_DUE)
        pay(c, loan_id, LEVEL + D("20000"), "p1")  # consumer_equal_installment: keep_instalment
        assert len(schedule(c, loan_id)) == 10

    def test_an_unknown_choice_is_refused(self, loan: tuple[Container, int]) -> None:
        c, loan_id = loan
        close_until(c, FIRST_DUE)
        with pytest.raises(InvalidInput, match="keep_term"):
            pay(c, loan_id, LEVEL + D("20000"), "p1", prepayment="lower_rate")


class TestBetweenDueDates:
    def test_accrued_interest_is_paid_first_and_the_period_runs_on_the_new_balance(
        self, loan: tuple[Container, int]
    ) -> None:
        c, loan_id = loan
        close_until(c, FIRST_DUE)
        pay(c, loan_id, LEVEL, "p1")
        on = date(2025, 3, 1)
        close_until(c, on)
        balance = D("100000") - D("8168.49")
        # 16 days of 30E/360 (15 Feb to 1 Mar) accrued on 91,831.51: 177.54 (rounded once).
        accrued = (balance * D("0.0435") * 16 / 360).quantize(D("0.01"))
        with c.uow() as uow:
            loan_row, _ = service.get_loan(uow.session, loan_id)
            assert abs(loan_row.interest_receivable - accrued) <= D("0.01")
            accrued = loan_row.interest_receivable
        pay(c, loan_id, accrued + D("20000"), "p2", prepayment="keep_term")
        rows = schedule(c, loan_id)
        new_balance = balance - D("20000")
        current = rows[1]
        # The current period now starts on 1 March: 14 days of 30E/360 on the new balance.
        assert current[3] == (new_balance * D("0.0435") * 14 / 360).quantize(D("0.01"))
        level = fen(float(npf.pmt(RATE, 11, -float(new_balance))))  # numpy-financial
        assert current[2] + current[3] == level  # the short period's lower interest repays more principal
        assert all(p + i == level for _, _, p, i, _ in rows[2:-1])
        with c.uow() as uow:
            loan_row, _ = service.get_loan(uow.session, loan_id)
            assert (loan_row.outstanding_principal, loan_row.interest_receivable) == (new_balance, 0)
        close_until(c, date(2025, 3, 15))
        with c.uow() as uow:  # by the due date, the accrual has posted exactly that interest
            loan_row, _ = service.get_loan(uow.session, loan_id)
            assert loan_row.interest_receivable == current[3]
        pay(c, loan_id, current[2] + current[3], "p3")
        close_until(c, date(2025, 3, 20))
        with c.uow() as uow:
            loan_row, _ = service.get_loan(uow.session, loan_id)
            assert (loan_row.status, loan_row.dpd) == ("active", 0)
            assert ledger.trial_balance(uow.session).is_balanced
