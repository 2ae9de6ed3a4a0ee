"""Reconciling the balances servicing caches on loans and lines with the journal, on SQLite and
PostgreSQL: a clean book agrees; a cache changed behind the ledger's back is named with both
figures; the end-of-day step stops the close when anything differs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from creditfactory import jobs, ledger
from creditfactory.bootstrap import Container
from creditfactory.jobs import current_business_date, open_business_date, run_eod
from creditfactory.jobs.eod import EodStepFailed
from creditfactory.servicing import jobs as servicing_jobs
from creditfactory.servicing import reconcile as rec
from creditfactory.servicing import service
from creditfactory.servicing.model import load_products, sample_products_dir
from creditfactory.servicing.store import CreditLine, Loan

START = date(2025, 1, 15)
D = Decimal
STEPS = sorted([*servicing_jobs.STEPS, rec.STEP], key=lambda s: s.order)


@pytest.fixture
def book(container: Container) -> Container:
    with container.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=container.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=START, clock=container.clock)
        uow.commit()
    return container


def open_and_draw(c: Container, amounts: tuple[str, ...], *, customer: str = "C0000001") -> list[int]:
    """One line of 100,000 with a 12-month equal-instalment loan per amount; the loans' ids."""
    with c.uow() as uow:
        today = current_business_date(uow.session)
        line = service.open_line(
            uow.session,
            customer_id=customer,
            product_code="farmer_revolving_line",
            limit=D("100000.00"),
            business_date=today,
            clock=c.clock,
        )
        ids = [
            service.draw_down(
                uow.session,
                line_id=line.id,
                amount=D(amount),
                term=12,
                business_date=today,
                clock=c.clock,
                method="equal_installment",
                key=f"{customer}:{n}",
            ).loan.id
            for n, amount in enumerate(amounts)
        ]
        uow.commit()
    return ids


def eod_until(c: Container, last: date, steps: list[jobs.EodStep] | None = None) -> None:
    while True:
        with c.uow() as uow:
            today = current_business_date(uow.session)
        if today > last:
            return
        run_eod(sessions=c.sessions, clock=c.clock, steps=steps or list(servicing_jobs.STEPS))


def today(c: Container) -> date:
    with c.uow() as uow:
        return current_business_date(uow.session)


def repay(c: Container, loan_id: int, amount: Decimal, key: str) -> service.RepaymentResult:
    with c.uow() as uow:
        result = service.repay(
            uow.session, loan_id=loan_id, amount=amount, business_date=today(c), clock=c.clock, key=key
        )
        uow.commit()
    return result


def reconciled(c: Container) -> rec.Reconciliation:
    with c.uow() as uow:
        return rec.reconcile(uow.session)


def set_loan(c: Container, loan_id: int, **values: Decimal) -> None:
    """Change a loan's cached balances directly, as a faulty program would."""
    with c.uow() as uow:
        uow.session.execute(update(Loan).where(Loan.id == loan_id).values(**values))
        uow.commit()


@pytest.fixture
def busy_book(book: Container) -> tuple[Container, list[int]]:
    """Three loans over 40 days: accrued interest, a repayment, an early payoff, penalty interest."""
    ids = open_and_draw(book, ("12000.00", "8000.00", "30000.00"))
    eod_until(book, START + timedelta(days=9))
    with book.uow() as uow:
        payoff = service.payoff_amount(uow.session, loan_id=ids[1])
    assert repay(book, ids[1], payoff, "payoff").settled
    eod_until(book, date(2025, 2, 14))
    with book.uow() as uow:
        first = service.get_loan(uow.session, ids[0])[1][0]
        due = first.principal + first.interest
    repay(book, ids[0], due, "first")
    eod_until(book, date(2025, 2, 24))  # the third loan missed its first instalment
    return book, ids


class TestReconcile:
    def test_an_empty_book_agrees(self, book: Container) -> None:
        result = reconciled(book)
        assert result.agrees
        assert (result.loans_checked, result.lines_checked) == (0, 0)
        assert result.summary() == "0 loans and 0 credit lines agree with the journal"

    def test_a_book_run_through_the_end_of_day_agrees(self, busy_book: tuple[Container, list[int]]) -> None:
        book, ids = busy_book
        with book.uow() as uow:
            loans = {i: service.get_loan(uow.session, i)[0] for i in ids}
            assert loans[ids[1]].status == "settled"
            assert loans[ids[2]].status == "overdue" and loans[ids[2]].penalty_receivable > 0
            assert loans[ids[0]].interest_receivable > 0
        result = reconciled(book)
        assert result.agrees, result.summary()
        assert (result.loans_checked, result.lines_checked) == (3, 1)
        assert result.summary() == "3 loans and 1 credit line agree with the journal"

    def test_a_tampered_outstanding_principal_is_named_with_both_figures(
        self, busy_book: tuple[Container, list[int]]
    ) -> None:
        book, ids = busy_book
        with book.uow() as uow:
            before = service.get_loan(uow.session, ids[2])[0].outstanding_principal
        assert before == D("30000.00")
        set_loan(book, ids[2], outstanding_principal=D("29000.00"))
        result = reconciled(book)
        assert not result.agrees
        assert result.differing_loan_ids == (ids[2],)
        principal = [d for d in result.loans if d.balance == "outstanding_principal"]
        assert [(d.loan_id, d.cached, d.journal, d.difference) for d in principal] == [
            (ids[2], D("29000.00"), D("30000.00"), D("-1000.00"))
        ]
        # the line still counts the 1,000 as drawn: it now differs from its live loans too
        assert [d.difference for d in result.lines] == [D("1000.00")]
        text = result.summary()
        assert f"loan {ids[2]} outstanding principal: cached 29000.00, journal 30000.00" in text
        assert f"account {ledger.LOAN_PRINCIPAL.code}" in text
        assert "for 1 loan, 1 credit line:" in text

    def test_tampered_receivables_are_each_reported(self, busy_book: tuple[Container, list[int]]) -> None:
        book, ids = busy_book
        with book.uow() as uow:
            loan = service.get_loan(uow.session, ids[2])[0]
            interest, penalty = loan.interest_receivable, loan.penalty_receivable
        set_loan(
            book, ids[2], interest_receivable=interest + D("0.01"), penalty_receivable=penalty - D("0.01")
        )
        result = reconciled(book)
        assert [(d.balance, d.cached, d.journal) for d in result.loans] == [
            ("interest_receivable", interest + D("0.01"), interest),
            ("penalty_receivable", penalty - D("0.01"), penalty),
        ]
        assert result.lines == ()

    def test_a_settled_loan_with_a_balance_left_in_its_cache_is_reported(
        self, busy_book: tuple[Container, list[int]]
    ) -> None:
        book, ids = busy_book
        set_loan(book, ids[1], interest_receivable=D("3.50"))
        result = reconciled(book)
        assert [(d.loan_id, d.balance, d.cached, d.journal) for d in result.loans] == [
            (ids[1], "interest_receivable", D("3.50"), D("0.00"))
        ]

    def test_a_line_used_amount_out_of_step_with_its_loans_is_reported(
        self, busy_book: tuple[Container, list[int]]
    ) -> None:
        book, _ = busy_book
        with book.uow() as uow:
            line = uow.session.query(CreditLine).one()
            line_id, used = line.id, line.used_amount
            uow.session.execute(
                update(CreditLine).where(CreditLine.id == line_id).values(used_amount=used + D("500.00"))
            )
            uow.commit()
        result = reconciled(book)
        assert result.loans == ()
        assert [(d.line_id, d.used_amount, d.live_principal, d.difference) for d in result.lines] == [
            (line_id, used + D("500.00"), used, D("500.00"))
        ]
        assert f"credit line {line_id} used amount: cached {used + D('500.00')}" in result.summary()

    def test_a_journal_balance_of_no_loan_is_reported(self, busy_book: tuple[Container, list[int]]) -> None:
        book, _ = busy_book
        with book.uow() as uow:
            ledger.post(
                uow.session,
                ledger.disbursement(
                    source_key="stray", value_date=today(book), subledger="loan:999999", amount=D("10.00")
                ),
                now=book.clock.now(),
            )
            uow.commit()
        result = reconciled(book)
        assert [(d.subledger, d.loan_id, d.cached, d.journal) for d in result.loans] == [
            ("loan:999999", None, None, D("10.00"))
        ]
        assert "journal subledger loan:999999 holds outstanding principal 10.00" in result.summary()

    def test_the_summary_lists_the_first_differences_and_counts_the_rest(self, book: Container) -> None:
        ids = open_and_draw(book, tuple(["1000.00"] * 13))
        for loan_id in ids:
            set_loan(book, loan_id, outstanding_principal=D("999.00"))
        text = reconciled(book).summary(limit=3)
        lines = text.splitlines()
        assert lines[0] == (
            "13 loans and 1 credit line checked; cached balances differ from the journal for "
            "13 loans, 1 credit line:"
        )
        assert lines[1].startswith(f"  loan {ids[0]} outstanding principal: cached 999.00, journal 1000.00")
        assert lines[-1] == "  … and 11 more differences"

    def test_a_written_off_loan_agrees(self, book: Container) -> None:
        (loan_id,) = open_and_draw(book, ("5000.00",))
        eod_until(book, date(2025, 2, 25))  # first instalment due 15 Feb, 10 days past due
        with book.uow() as uow:
            service.write_off(
                uow.session, loan_id=loan_id, business_date=today(book), clock=book.clock, reason="fraud"
            )
            uow.commit()
            assert ledger.balance(uow.session, ledger.LOAN_PRINCIPAL, f"loan:{loan_id}") == 0
        result = reconciled(book)
        assert result.agrees, result.summary()
        # the cache was cleared with the write-off; leaving the principal there would be reported
        set_loan(book, loan_id, outstanding_principal=D("5000.00"))
        assert [(d.loan_id, d.cached, d.journal) for d in reconciled(book).loans] == [
            (loan_id, D("5000.00"), D("0.00"))
        ]


class TestReconcileStep:
    def test_registering_puts_it_after_the_servicing_steps_and_before_the_trial_balance(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(jobs.registry, "_steps", dict(jobs.registry._steps))
        servicing_jobs.register()
        rec.register_step()
        rec.register_step()  # again: no-op
        names = [s.name for s in jobs.registry.steps()]
        assert names.count("servicing.reconcile") == 1
        assert names.index("servicing.expire_lines") < names.index("servicing.reconcile")
        assert names.index("servicing.reconcile") < names.index("ledger.trial_balance")

    def test_a_clean_book_closes_the_day(self, busy_book: tuple[Container, list[int]]) -> None:
        book, _ = busy_book
        day = today(book)
        report = run_eod(sessions=book.sessions, clock=book.clock, steps=STEPS)
        step = next(s for s in report.steps if s.name == "servicing.reconcile")
        assert (step.status, step.details["loans"], step.details["lines"]) == ("completed", 3, 1)
        assert report.next_date == day + timedelta(days=1)

    def test_a_difference_stops_the_close_naming_the_loan(
        self, busy_book: tuple[Container, list[int]]
    ) -> None:
        book, ids = busy_book
        day = today(book)
        set_loan(book, ids[0], outstanding_principal=D("1.00"))
        with pytest.raises(EodStepFailed, match="servicing.reconcile") as failed:
            run_eod(sessions=book.sessions, clock=book.clock, steps=STEPS)
        cause = failed.value.__cause__
        assert isinstance(cause, rec.BooksDiffer)
        assert cause.details["loans"] == [ids[0]]
        assert f"loan {ids[0]} outstanding principal: cached 1.00" in cause.message
        assert today(book) == day  # the business date stays open
