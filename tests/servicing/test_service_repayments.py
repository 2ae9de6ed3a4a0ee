"""Servicing through the services and the end of day, worked examples on a real book: penalty
interest (its rate and rounding), curing an overdue loan, the product's allocation order, 30E/360
days in payoffs and prepayments, and the instalment kept by successive prepayments."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy_financial as npf
from sqlalchemy import update

from creditfactory import ledger
from creditfactory.bootstrap import Container
from creditfactory.clock import DayCount
from creditfactory.jobs import open_business_date
from creditfactory.servicing import jobs as servicing_jobs
from creditfactory.servicing import service
from creditfactory.servicing.model import LoanProduct, load_products, sample_products_dir
from creditfactory.servicing.store import Instalment, Loan
from tests.servicing.test_reconcile import eod_until

D = Decimal
START = date(2025, 1, 15)


def open_book(c: Container, on: date, **variants: dict[str, object]) -> None:
    """The sample products, plus ``variants`` (code → changes to a sample, named by ``base``)."""
    products = load_products(sample_products_dir())
    with c.uow() as uow:
        for product in products.values():
            service.define_product(uow.session, product, clock=c.clock)
        for code, changes in variants.items():
            base = products[str(changes["base"])].model_dump(mode="json")
            data = base | {k: v for k, v in changes.items() if k != "base"} | {"code": code}
            service.define_product(uow.session, LoanProduct.model_validate(data), clock=c.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=on, clock=c.clock)
        uow.commit()


def draw(
    c: Container,
    *,
    product: str,
    amount: str,
    term: int,
    on: date,
    rate: str | None = None,
    method: str = "equal_installment",
) -> int:
    with c.uow() as uow:
        line = service.open_line(
            uow.session,
            customer_id="C0000001",
            product_code=product,
            limit=D(amount),
            business_date=on,
            clock=c.clock,
            annual_rate=None if rate is None else D(rate),
        )
        loan = service.draw_down(
            uow.session,
            line_id=line.id,
            amount=D(amount),
            term=term,
            business_date=on,
            clock=c.clock,
            method=method,
            key="draw",
        ).loan
        uow.commit()
        return loan.id


def state(c: Container, loan_id: int) -> tuple[Loan, list[Instalment]]:
    with c.uow() as uow:
        loan, rows = service.get_loan(uow.session, loan_id)
        uow.session.expunge_all()
        return loan, rows


def repay(
    c: Container, loan_id: int, amount: Decimal, on: date, key: str, prepayment: str | None = None
) -> service.RepaymentResult:
    with c.uow() as uow:
        result = service.repay(
            uow.session,
            loan_id=loan_id,
            amount=amount,
            business_date=on,
            clock=c.clock,
            key=key,
            prepayment=prepayment,
        )
        uow.commit()
        uow.session.expunge_all()
        return result


class TestPenaltyInterest:
    def test_is_posted_with_the_products_rounding(self, container: Container) -> None:
        """A product rounding ``down``: 12,000 over 2 months at 3.95% (actual/360, 3 grace days);
        the first instalment's 5,988.83 of principal is never paid. Penalty accrues from the
        fourth day after the due date at 5.925%: 5,988.83 × 0.05925 / 360 = 0.98566… a day.
        Posted with the carry, rounding down: 0.98, 0.99 (0.98566 + 0.00566), 0.98 (0.98566 +
        0.00132) = 2.95 after three days, which is ⌊3 × 0.98566…⌋ = ⌊2.95698…⌋; half-up would
        post 0.99 + 0.98 + 0.99 = 2.96."""
        open_book(container, START, farmer_down={"base": "farmer_revolving_line", "rounding": "down"})
        loan_id = draw(container, product="farmer_down", amount="12000.00", term=2, on=START)
        first_due = state(container, loan_id)[1][0].due_date
        eod_until(container, first_due + timedelta(days=6))
        loan, rows = state(container, loan_id)
        assert (rows[0].principal, loan.penalty_rate, loan.rounding) == (D("5988.83"), D("0.05925"), "down")
        assert loan.penalty_receivable == D("2.95")

    def test_an_unset_product_rate_is_one_and_a_half_times_the_lines_rate(self, container: Container) -> None:
        """The consumer product sets no penalty rate: a loan on a line at 8% pays 1.5 × 8% = 12%
        on overdue principal, not 1.5 × the product's 4.35% = 6.525%. The farmer product sets
        5.925% itself, which stays whatever the line's rate."""
        open_book(container, START)
        consumer = draw(
            container, product="consumer_equal_installment", amount="10000.00", term=12, on=START, rate="0.08"
        )
        farmer = draw(
            container, product="farmer_revolving_line", amount="10000.00", term=12, on=START, rate="0.05"
        )
        assert state(container, consumer)[0].penalty_rate == D("0.12")
        assert state(container, farmer)[0].penalty_rate == D("0.05925")


class TestCure:
    def test_paying_the_arrears_on_the_next_due_date_cures_the_loan(self, container: Container) -> None:
        """12,000 over 3 months (farmer line, 3 grace days); the first instalment (due 15 Feb) is
        paid only on 15 Mar, the day the second falls due. Nothing unpaid is then past its grace
        days, so the loan is active again at once with 0 days past due, and stays so after the
        end of day (the second instalment is due, within its grace days)."""
        open_book(container, START)
        loan_id = draw(container, product="farmer_revolving_line", amount="12000.00", term=3, on=START)
        second_due = date(2025, 3, 15)
        eod_until(container, second_due - timedelta(days=1))
        loan, rows = state(container, loan_id)
        assert (loan.status, loan.dpd) == ("overdue", 27)
        arrears = rows[0].principal + rows[0].interest + loan.penalty_receivable
        repay(container, loan_id, arrears, second_due, "catch-up")
        loan, rows = state(container, loan_id)
        assert (loan.status, loan.dpd, loan.oldest_unpaid_due) == ("active", 0, second_due)
        eod_until(container, second_due + timedelta(days=1))
        loan, rows = state(container, loan_id)
        assert (loan.status, loan.dpd) == ("active", 0)
        assert [r.status for r in rows] == ["paid", "due", "pending"]

    def test_the_end_of_day_moves_an_overdue_loan_with_nothing_past_due_back_to_active(
        self, container: Container
    ) -> None:
        """A loan marked overdue whose only unpaid instalment fell due today (0 days past due,
        within 3 grace days) is active after the end of day; one 4 days late stays overdue."""
        open_book(container, START)
        loan_id = draw(container, product="farmer_revolving_line", amount="12000.00", term=3, on=START)
        due = date(2025, 2, 15)
        eod_until(container, due - timedelta(days=1))
        with container.uow() as uow:
            uow.session.execute(update(Loan).where(Loan.id == loan_id).values(status="overdue"))
            uow.commit()
        eod_until(container, due)
        assert (state(container, loan_id)[0].status, state(container, loan_id)[0].dpd) == ("active", 0)
        eod_until(container, due + timedelta(days=4))
        assert (state(container, loan_id)[0].status, state(container, loan_id)[0].dpd) == ("overdue", 4)


class TestAllocationOrder:
    def test_penalty_last_pays_the_instalment_before_the_penalty(self, container: Container) -> None:
        """Order principal, interest, fee, penalty. 12,000 over 3 months at 3.95%: instalment 1 is
        3,985.54 principal + 40.82 interest (31 days on 12,000: 12,000 × 0.0395 × 31 / 360 =
        40.816…), due 15 Feb. Paid on 25 Feb (9 days past due, 6 days of penalty at 5.925% on
        3,985.54: 6 × 0.65595… = 3.9357… → 3.94). A payment of exactly 4,026.36 pays the
        instalment and leaves the 3.94 of penalty owing."""
        order = ["principal", "interest", "fee", "penalty"]
        open_book(container, START, pen_last={"base": "farmer_revolving_line", "allocation_order": order})
        loan_id = draw(container, product="pen_last", amount="12000.00", term=3, on=START)
        late = date(2025, 2, 25)
        eod_until(container, late - timedelta(days=1))
        loan, rows = state(container, loan_id)
        assert (rows[0].principal, rows[0].interest, loan.penalty_receivable) == (
            D("3985.54"),
            D("40.82"),
            D("3.94"),
        )
        txn = repay(container, loan_id, D("4026.36"), late, "pay").transaction
        assert (txn.principal, txn.interest, txn.penalty) == (D("3985.54"), D("40.82"), D("0.00"))
        loan, rows = state(container, loan_id)
        assert rows[0].status == "paid" and loan.penalty_receivable == D("3.94")

    def test_the_default_order_still_pays_the_penalty_first(self, container: Container) -> None:
        """The same loan on the default order (penalty, fee, interest, principal): the 4,026.36
        pays the 3.94 of penalty, the 40.82 of interest and 4,026.36 − 3.94 − 40.82 = 3,981.60 of
        principal, leaving 3.94 of instalment 1's principal unpaid."""
        open_book(container, START)
        loan_id = draw(container, product="farmer_revolving_line", amount="12000.00", term=3, on=START)
        late = date(2025, 2, 25)
        eod_until(container, late - timedelta(days=1))
        txn = repay(container, loan_id, D("4026.36"), late, "pay").transaction
        assert (txn.penalty, txn.interest, txn.principal) == (D("3.94"), D("40.82"), D("3981.60"))
        rows = state(container, loan_id)[1]
        assert rows[0].status == "overdue" and rows[0].principal - rows[0].paid_principal == D("3.94")


class TestThirtyE360:
    def test_payoff_on_the_31st_counts_15_days_like_the_quote(self, container: Container) -> None:
        """100,000 at 4.35% on 30/360 drawn on 15 Jan. Paid off on 31 Jan: 30E/360 counts 15 Jan →
        31 Jan as 15 days (the 31st is the 30th), so the interest is 100,000 × 0.0435 × 15 / 360
        = 181.25 and the payoff 100,181.25 (16 days would be 193.33)."""
        open_book(container, START)
        loan_id = draw(container, product="consumer_equal_installment", amount="100000.00", term=12, on=START)
        eod_until(container, date(2025, 1, 30))
        with container.uow() as uow:
            assert service.payoff_amount(uow.session, loan_id=loan_id) == D("100181.25")

    def test_prepayment_on_the_10th_of_a_31st_anchored_month_splits_its_30_days_10_and_20(
        self, container: Container
    ) -> None:
        """100,000 at 4.35% on 30/360 drawn on 31 Jan; the first period, to 28 Feb, is a full month
        of 30 days. 20,000 paid on 10 Feb (keep_term): it first pays the interest of 31 Jan → 10
        Feb, 10 days: 100,000 × 0.0435 × 10 / 360 = 120.83, and prepays 19,879.17. The new first
        period, 10 Feb → 28 Feb, keeps the month's other 20 days: 80,120.83 × 0.0435 × 20 / 360 =
        193.625 → 193.63 (18 days would give 174.26). The month's interest is 314.46."""
        start = date(2025, 1, 31)
        open_book(container, start)
        loan_id = draw(container, product="consumer_equal_installment", amount="100000.00", term=12, on=start)
        on = date(2025, 2, 10)
        eod_until(container, on - timedelta(days=1))
        assert state(container, loan_id)[0].interest_receivable == D("120.83")
        txn = repay(container, loan_id, D("20000.00"), on, "prepay", prepayment="keep_term").transaction
        assert (txn.interest, txn.principal) == (D("120.83"), D("19879.17"))
        first = state(container, loan_id)[1][0]
        assert (first.start_date, first.due_date, first.days, first.interest) == (
            on,
            date(2025, 2, 28),
            20,
            D("193.63"),
        )
        eod_until(container, date(2025, 2, 27))
        assert state(container, loan_id)[0].interest_receivable == D("193.63")

    def test_the_batch_ordinal_counts_30e_360_days(self) -> None:
        """The end of day's day numbers differ by exactly ``DayCount.THIRTY_E_360.days``: e.g.
        15 Jan → 31 Jan is 15 days and 31 Jan → 1 Feb is 1."""
        import numpy as np

        days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2026-01-01"))
        ordinal = servicing_jobs._ordinal_30e(days)
        dates = days.astype(object).tolist()
        anchors = [date(2025, 1, 15), date(2025, 1, 31), date(2024, 2, 29), date(2025, 3, 30)]
        for anchor in anchors:
            base = ordinal[dates.index(anchor)]
            assert [int(o - base) for o in ordinal] == [DayCount.THIRTY_E_360.days(anchor, d) for d in dates]


class TestPrepaymentKeepsTheCurrentInstalment:
    def test_keep_instalment_after_keep_term_keeps_the_lowered_instalment(self, container: Container) -> None:
        """60,000 over 6 months at 4.35% (30/360): 10,127.26 a month. With the third instalment
        10,000 more is prepaid keeping the term: the last three instalments become
        pmt(0.0435 / 12, 3, balance) = 6,769.73. Another 3,000 the same day keeping the
        instalment must keep 6,769.73 (and shorten the last one), not go back to 10,127.26."""
        open_book(container, START)
        loan_id = draw(container, product="consumer_equal_installment", amount="60000.00", term=6, on=START)
        rows = state(container, loan_id)[1]
        assert rows[0].principal + rows[0].interest == D("10127.26")
        for k in range(3):
            rows = state(container, loan_id)[1]
            due = rows[k].due_date
            eod_until(container, due - timedelta(days=1))
            extra = D("10000.00") if k == 2 else D(0)
            amount = rows[k].principal + rows[k].interest + extra
            repay(container, loan_id, amount, due, f"r{k}", prepayment="keep_term" if k == 2 else None)
        loan, rows = state(container, loan_id)
        balance = loan.outstanding_principal
        level = D(str(round(float(npf.pmt(0.0435 / 12, 3, -float(balance))), 2)))
        assert level == D("6769.73") == rows[3].principal + rows[3].interest
        repay(container, loan_id, D("3000.00"), rows[2].due_date, "again", prepayment="keep_instalment")
        loan, rows = state(container, loan_id)
        coming = [r for r in rows if r.number >= 4]
        assert [r.principal + r.interest for r in coming[:-1]] == [D("6769.73"), D("6769.73")]
        assert coming[-1].principal + coming[-1].interest < D("6769.73")
        assert sum(r.principal for r in coming) == balance - D("3000.00")
