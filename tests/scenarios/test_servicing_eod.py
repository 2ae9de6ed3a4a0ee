"""Servicing through the end of day, worked examples in the shape of Fineract's scenario files:
set the business date, act, run the end of day, compare the loan and the books."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from creditfactory import ledger
from creditfactory.bootstrap import Container, register_eod_steps
from creditfactory.jobs import current_business_date, open_business_date, run_eod
from creditfactory.jobs.eod import EodStepFailed
from creditfactory.servicing import jobs as servicing_jobs
from creditfactory.servicing import service
from creditfactory.servicing.model import load_products, months_current, sample_products_dir
from creditfactory.servicing.store import CreditLine, Instalment, Loan

START = date(2025, 1, 15)
D = Decimal


@pytest.fixture
def book(container: Container) -> Container:
    servicing_jobs.register()
    with container.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=container.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=START, clock=container.clock)
        uow.commit()
    return container


def eod_until(c: Container, last: date) -> None:
    while True:
        with c.uow() as uow:
            today = current_business_date(uow.session)
        if today > last:
            return
        run_eod(sessions=c.sessions, clock=c.clock, chunk_size=7)


def draw(
    c: Container, *, amount: str = "12000.00", term: int = 12, key: str = "k1", limit: str = "50000.00"
) -> int:
    with c.uow() as uow:
        line = service.open_line(
            uow.session,
            customer_id="C0000001",
            product_code="farmer_revolving_line",
            limit=D(limit),
            business_date=START,
            clock=c.clock,
        )
        drawn = service.draw_down(
            uow.session,
            line_id=line.id,
            amount=D(amount),
            term=term,
            business_date=START,
            clock=c.clock,
            method="equal_installment",
            key=key,
        )
        uow.commit()
        return drawn.loan.id


def loan_state(c: Container, loan_id: int) -> tuple[Loan, list[Instalment]]:
    with c.uow() as uow:
        loan, inst = service.get_loan(uow.session, loan_id)
        uow.session.expunge_all()  # keep the loaded values after the unit of work ends
        return loan, inst


def journal_balance(c: Container, account: ledger.Account, loan_id: int) -> Decimal:
    with c.uow() as uow:
        return ledger.balance(uow.session, account.code, subledger=f"loan:{loan_id}")


class TestAccrualToTheFirstDueDate:
    def test_interest_accrued_over_the_period_equals_the_scheduled_interest(self, book: Container) -> None:
        loan_id = draw(book)
        loan, inst = loan_state(book, loan_id)
        first = inst[0]
        eod_until(book, first.due_date - timedelta(days=1))
        loan, _ = loan_state(book, loan_id)
        assert loan.interest_receivable == first.interest
        assert journal_balance(book, ledger.INTEREST_RECEIVABLE, loan_id) == first.interest
        assert journal_balance(book, ledger.LOAN_PRINCIPAL, loan_id) == D("12000.00")
        with book.uow() as uow:
            assert ledger.trial_balance(uow.session).is_balanced

    def test_running_a_closed_date_again_changes_nothing(self, book: Container) -> None:
        draw(book)
        eod_until(book, START + timedelta(days=3))
        with book.uow() as uow:
            lines = uow.session.scalar(select(func.count()).select_from(ledger.store.LedgerEntryLine))
        report = run_eod(sessions=book.sessions, clock=book.clock, business_date=START + timedelta(days=1))
        assert report.already_closed
        with book.uow() as uow:
            assert uow.session.scalar(select(func.count()).select_from(ledger.store.LedgerEntryLine)) == lines


class TestRepaymentAndDelinquency:
    def test_paid_on_time_stays_normal_missed_falls_overdue_with_penalty(self, book: Container) -> None:
        loan_id = draw(book)
        _, inst = loan_state(book, loan_id)
        eod_until(book, inst[0].due_date - timedelta(days=1))
        with book.uow() as uow:
            result = service.repay(
                uow.session,
                loan_id=loan_id,
                amount=inst[0].principal + inst[0].interest,
                business_date=inst[0].due_date,
                clock=book.clock,
                key="r1",
            )
            uow.commit()
        assert not result.settled
        eod_until(book, inst[1].due_date + timedelta(days=10))
        loan, after = loan_state(book, loan_id)
        assert after[0].status == "paid"
        assert after[1].status == "overdue"
        assert loan.status == "overdue"
        assert loan.dpd == 10  # grace of 3 days exceeded: counted from the due date
        assert loan.tier == "special_mention"
        assert loan.penalty_receivable > 0
        assert journal_balance(book, ledger.PENALTY_RECEIVABLE, loan_id) == loan.penalty_receivable
        # pay everything due: the loan is current again
        with book.uow() as uow:
            due = after[1].principal + after[1].interest + loan.penalty_receivable
            service.repay(
                uow.session,
                loan_id=loan_id,
                amount=due,
                business_date=inst[1].due_date + timedelta(days=11),
                clock=book.clock,
                key="r2",
            )
            uow.commit()
        loan, _ = loan_state(book, loan_id)
        assert (loan.status, loan.dpd, loan.penalty_receivable) == ("active", 0, D("0.00"))

    def test_early_full_payoff_settles_with_interest_to_the_payoff_date(self, book: Container) -> None:
        loan_id = draw(book)
        eod_until(book, START + timedelta(days=9))
        with book.uow() as uow:
            payoff = service.payoff_amount(uow.session, loan_id=loan_id)
            result = service.repay(
                uow.session,
                loan_id=loan_id,
                amount=payoff,
                business_date=START + timedelta(days=10),
                clock=book.clock,
                key="payoff",
            )
            uow.commit()
        assert result.settled
        loan, _ = loan_state(book, loan_id)
        assert (
            payoff
            == D("12000.00") + loan_state(book, loan_id)[0].interest_receivable + result.transaction.interest
        )
        assert loan.outstanding_principal == 0 and loan.status == "settled"
        assert journal_balance(book, ledger.LOAN_PRINCIPAL, loan_id) == 0
        assert journal_balance(book, ledger.INTEREST_RECEIVABLE, loan_id) == 0
        with book.uow() as uow:
            line = uow.session.scalars(select(CreditLine)).one()
            assert line.used_amount == 0

    def test_a_repeated_repayment_key_changes_nothing(self, book: Container) -> None:
        loan_id = draw(book)
        for _ in range(2):
            with book.uow() as uow:
                service.repay(
                    uow.session,
                    loan_id=loan_id,
                    amount=D("100.00"),
                    business_date=START,
                    clock=book.clock,
                    key="same",
                )
                uow.commit()
        loan, _ = loan_state(book, loan_id)
        assert loan.outstanding_principal == D("11900.00")


class TestLimits:
    def test_a_drawdown_beyond_the_available_limit_is_refused(self, book: Container) -> None:
        draw(book, amount="40000.00", limit="50000.00")
        with book.uow() as uow:
            line = uow.session.scalars(select(CreditLine)).one()
            with pytest.raises(service.LimitExceeded, match="available limit 10000.00"):
                service.draw_down(
                    uow.session,
                    line_id=line.id,
                    amount=D("10000.01"),
                    term=6,
                    business_date=START,
                    clock=book.clock,
                    method="equal_installment",
                    key="k2",
                )

    def test_concurrent_drawdowns_never_exceed_the_limit(self, book: Container) -> None:
        with book.uow() as uow:
            line = service.open_line(
                uow.session,
                customer_id="C0000002",
                product_code="farmer_revolving_line",
                limit=D("10000.00"),
                business_date=START,
                clock=book.clock,
            )
            uow.commit()
            line_id = line.id
        outcomes: list[str] = []

        def one(i: int) -> None:
            try:
                with book.uow() as uow:
                    service.draw_down(
                        uow.session,
                        line_id=line_id,
                        amount=D("1500.00"),
                        term=6,
                        business_date=START,
                        clock=book.clock,
                        method="equal_installment",
                        key=f"c{i}",
                    )
                    uow.commit()
                outcomes.append("ok")
            except service.LimitExceeded:
                outcomes.append("refused")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("ok") == 6 and outcomes.count("refused") == 14
        with book.uow() as uow:
            line = uow.session.get(CreditLine, line_id)
            assert line is not None
            assert line.used_amount == D("9000.00")
            drawn = uow.session.scalar(select(func.sum(Loan.principal)).where(Loan.line_id == line_id))
            assert drawn == D("9000.00")


def _scenario_book(tmp_path, name: str, database_url: str | None = None) -> Container:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from creditfactory.bootstrap import build
    from creditfactory.clock import FixedClock
    from creditfactory.config import Settings

    settings = Settings(data_dir=tmp_path / name, database_url=database_url)
    c = build(settings, clock=FixedClock(datetime(2025, 1, 15, 12, tzinfo=UTC)))
    with c.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=c.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=START, clock=c.clock)
        line = service.open_line(
            uow.session,
            customer_id="C1",
            product_code="farmer_revolving_line",
            limit=D("100000.00"),
            business_date=START,
            clock=c.clock,
        )
        for i, amount in enumerate(("12000.00", "8000.00", "30000.00", "5000.00")):
            service.draw_down(
                uow.session,
                line_id=line.id,
                amount=D(amount),
                term=6,
                business_date=START,
                clock=c.clock,
                method="equal_installment",
                key=f"d{i}",
            )
        uow.commit()
    return c


CRASH_DAY = date(2025, 2, 24)  # nine days after the first due date: every step has work
LAST_DAY = date(2025, 2, 26)


def _run_to(c: Container, last: date, *, crash_step: str | None = None, monkeypatch=None) -> None:  # type: ignore[no-untyped-def]
    steps = register_eod_steps()  # every domain's steps, as `eod run` runs them
    while True:
        with c.uow() as uow:
            today = current_business_date(uow.session)
        if today > last:
            return
        if today == START + timedelta(days=31):  # first instalment paid for two of the four loans
            with c.uow() as uow:
                for loan_id in (1, 2):
                    _, inst = service.get_loan(uow.session, loan_id)
                    service.repay(
                        uow.session,
                        loan_id=loan_id,
                        amount=inst[0].principal + inst[0].interest,
                        business_date=today,
                        clock=c.clock,
                        key=f"pay{loan_id}",
                    )
                uow.commit()
        if crash_step and today == CRASH_DAY:
            _crash_once(c, crash_step, monkeypatch, steps)
        run_eod(sessions=c.sessions, clock=c.clock, chunk_size=1, steps=steps)


def _crash_once(c: Container, crash_step: str, monkeypatch, steps) -> None:  # type: ignore[no-untyped-def]
    """Run the end of day with ``crash_step`` dying: in its second chunk if it posts in chunks,
    else just after its work, before it is marked done."""
    from creditfactory.jobs import EodStep

    real = next(s for s in steps if s.name == crash_step)
    calls = {"n": 0}
    originals = {name: getattr(ledger, name) for name in ("post_many", "post_spread")}

    def flaky(name: str):  # type: ignore[no-untyped-def]
        def posting(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("power cut in the middle of a chunk")
            return originals[name](*args, **kwargs)

        return posting

    def crashing(ctx):  # type: ignore[no-untyped-def]
        for name in originals:
            monkeypatch.setattr(servicing_jobs.ledger, name, flaky(name))
        try:
            real.run(ctx)
        finally:
            for name, original in originals.items():
                monkeypatch.setattr(servicing_jobs.ledger, name, original)
        raise RuntimeError(f"killed at the end of {real.name}")

    broken = [EodStep(s.name, s.order, crashing, s.description) if s.name == crash_step else s for s in steps]
    with pytest.raises(EodStepFailed, match=crash_step):
        run_eod(sessions=c.sessions, clock=c.clock, chunk_size=1, steps=broken)


def _loans(c: Container) -> list[tuple]:  # type: ignore[type-arg]
    with c.uow() as uow:
        return [
            (
                x.id,
                x.status,
                str(x.outstanding_principal),
                str(x.interest_receivable),
                str(x.penalty_receivable),
                x.dpd,
                x.tier,
                x.penalty_carry,
                x.current_since,
            )
            for x in uow.session.scalars(select(Loan).order_by(Loan.id))
        ]


@pytest.fixture(scope="module")
def clean_books(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:  # type: ignore[type-arg]
    """The journal and the loans of the scenario run without a crash (computed once)."""
    clean = _scenario_book(tmp_path_factory.mktemp("clean"), "clean")
    try:
        _run_to(clean, LAST_DAY)
        return _books(clean), _loans(clean)
    finally:
        clean.close()


#: Steps whose work differs on PostgreSQL (chunks two at a time, the journal's guard triggers,
#: unnest updates): crashed there too. Every step is crashed on SQLite.
CHUNKED = {
    "servicing.accrue_interest",
    "servicing.mark_overdue",
    "servicing.classify",
}
POSTGRES = [pytest.mark.postgres, pytest.mark.slow]


class TestCrashAndResume:
    @pytest.mark.parametrize(
        ("step", "db"),
        [(s.name, "sqlite") for s in register_eod_steps()]
        + [
            pytest.param(s.name, "postgres", marks=POSTGRES)
            for s in register_eod_steps()
            if s.name in CHUNKED
        ],
    )
    def test_a_crash_in_any_step_then_resume_gives_the_same_books(
        self, request, tmp_path, monkeypatch, clean_books, step: str, db: str
    ) -> None:  # type: ignore[no-untyped-def]
        """Against the uninterrupted run on SQLite: on PostgreSQL too, the books must be the same."""
        books, loans = clean_books
        url = None
        if db == "postgres":
            server = request.getfixturevalue("postgres_server")
            url = server.create_database()
            request.addfinalizer(lambda: server.drop_database(url))
        crashed = _scenario_book(tmp_path, "crashed", url)
        try:
            _run_to(crashed, LAST_DAY, crash_step=step, monkeypatch=monkeypatch)
            assert _books(crashed) == books
            assert _loans(crashed) == loans
            assert any(row[1] == "overdue" for row in loans)
            with crashed.uow() as uow:
                assert ledger.trial_balance(uow.session).is_balanced
        finally:
            crashed.close()


def _books(c: Container) -> list[tuple[str, str, str | None, str, str]]:
    with c.uow() as uow:
        rows = uow.session.execute(
            select(
                ledger.store.LedgerEntry.source_key,
                ledger.store.LedgerEntryLine.account_code,
                ledger.store.LedgerEntryLine.subledger,
                ledger.store.LedgerEntryLine.debit,
                ledger.store.LedgerEntryLine.credit,
            ).join(
                ledger.store.LedgerEntry, ledger.store.LedgerEntry.id == ledger.store.LedgerEntryLine.entry_id
            )
        ).all()
    return sorted((a, b, c_, str(d), str(e)) for a, b, c_, d, e in rows)


MONTH_END = date(2025, 2, 28)


def _current_since(c: Container) -> list[date | None]:
    with c.uow() as uow:
        return list(uow.session.scalars(select(Loan.current_since).order_by(Loan.id)))


def test_a_month_end_writes_only_the_loans_past_due_on_it_and_resumes_after_a_crash(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Months current move at a month end without a write; the loans past due there start their
    count again from it. A classification that commits one such loan, dies at the next and runs
    again ends as a run without the crash."""
    clean = _scenario_book(tmp_path, "clean")
    crashed = _scenario_book(tmp_path, "crashed")
    try:
        _run_to(clean, MONTH_END)
        _run_to(crashed, MONTH_END - timedelta(days=1))
        steps = register_eod_steps()
        original = servicing_jobs._update_loans
        written: list[list[int]] = []

        def flaky(session, assignments, ids, values):  # type: ignore[no-untyped-def]
            if "current_since" in assignments:
                written.append(ids.tolist())
                if len(written) == 2:
                    raise RuntimeError("power cut in the classification of the second loan past due")
            return original(session, assignments, ids, values)

        monkeypatch.setattr(servicing_jobs, "_update_loans", flaky)
        with pytest.raises(EodStepFailed, match="servicing.classify"):
            run_eod(sessions=crashed.sessions, clock=crashed.clock, chunk_size=1, steps=steps)
        monkeypatch.setattr(servicing_jobs, "_update_loans", original)
        run_eod(sessions=crashed.sessions, clock=crashed.clock, chunk_size=1, steps=steps)
        # Loans 1 and 2 paid their first instalment and are current; 3 and 4 did not and are
        # past due on the month end: only they were written.
        assert written == [[3], [4]]
        assert _loans(crashed) == _loans(clean)
        assert _current_since(crashed) == _current_since(clean)
        since = _current_since(crashed)
        assert since == [START - timedelta(days=1)] * 2 + [MONTH_END] * 2
        assert [months_current(d, MONTH_END) for d in since] == [2, 2, 0, 0]  # January and February
    finally:
        clean.close()
        crashed.close()
