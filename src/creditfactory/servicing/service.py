"""Use cases of loan servicing: products, credit lines, drawdowns, repayments, write-offs.

Every balance change posts a balanced journal entry through :mod:`creditfactory.ledger` in the
same unit of work; every write is keyed (``source_key``/idempotency key) so that a repeat
changes nothing. Services flush, the boundary commits.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from creditfactory import ledger
from creditfactory.clock import Clock, DayCount, add_months
from creditfactory.errors import Conflict, InvalidInput, NotFound
from creditfactory.events import Event, append
from creditfactory.money import to_decimal
from creditfactory.servicing.model import (
    CREDIT_LINE,
    LOAN,
    Component,
    Due,
    LoanProduct,
    ReamortiseOption,
    RepaymentMethod,
    Schedule,
    allocate_repayment,
    days_past_due,
    generate_schedule,
    reamortise,
)
from creditfactory.servicing.model import Instalment as ScheduleInstalment
from creditfactory.servicing.model.lifecycle import CreditLineEvent, CreditLineStatus, LoanEvent, LoanStatus
from creditfactory.servicing.store import CreditLine, Instalment, Loan, LoanTransaction, Product

ZERO = Decimal("0")
_ONE_DAY = timedelta(days=1)


def _money(value: Decimal | str | int, field: str) -> Decimal:
    """An amount in yuan as given by a user: at most 2 places, kept at exactly 2."""
    amount = to_decimal(value)
    if amount != amount.quantize(_FEN):
        raise InvalidInput(f"{field}: {value} has more than 2 decimal places", field=field)
    return amount.quantize(_FEN)


_FEN = Decimal("0.01")


class LimitExceeded(Conflict):
    code = "limit_exceeded"
    title = "Drawdown exceeds the available limit"


class LineNotUsable(Conflict):
    code = "line_not_usable"
    title = "Credit line cannot be drawn"


# ------------------------------------------------------------------ products


def define_product(session: Session, product: LoanProduct, *, clock: Clock) -> Product:
    """Create or update a product definition (a new version when it changes)."""
    text = product.model_dump_json()
    row = session.get(Product, product.code)
    if row is None:
        row = Product(code=product.code, definition=text, version=1, updated_at=clock.now())
        session.add(row)
    elif row.definition != text:
        row.definition = text
        row.version += 1
        row.updated_at = clock.now()
    session.flush()
    return row


def get_product(session: Session, code: str) -> LoanProduct:
    row = session.get(Product, code)
    if row is None:
        raise NotFound(f"loan product {code!r} is not defined; load it with 'creditfactory products load'")
    return LoanProduct.model_validate(json.loads(row.definition))


def list_products(session: Session) -> list[LoanProduct]:
    rows = session.scalars(select(Product).order_by(Product.code))
    return [LoanProduct.model_validate(json.loads(r.definition)) for r in rows]


# ------------------------------------------------------------------ credit lines


def open_line(
    session: Session,
    *,
    customer_id: str,
    product_code: str,
    limit: Decimal,
    business_date: date,
    clock: Clock,
    annual_rate: Decimal | None = None,
    term_months: int | None = None,
    repayment_method: RepaymentMethod | str | None = None,
    application_id: int | None = None,
) -> CreditLine:
    """Open an active credit line. ``term_months`` and ``repayment_method`` (a contract's terms)
    must fit the product; a drawdown that names no method then uses the line's."""
    product = get_product(session, product_code)
    limit = _money(limit, "limit")
    cap = product.line_limit or product.max_amount
    if limit <= 0 or limit > cap:
        raise InvalidInput(f"limit {limit} is outside the product's bounds (0, {cap}]", field="limit")
    if term_months is not None and not product.min_term <= term_months <= product.max_term:
        raise InvalidInput(
            f"term {term_months} months is outside the product's {product.min_term}..{product.max_term}",
            field="term_months",
        )
    method: RepaymentMethod | None = None
    if repayment_method is not None:
        try:
            method = RepaymentMethod(repayment_method)
        except ValueError:
            raise InvalidInput(
                f"unknown repayment method {repayment_method!r}", field="repayment_method"
            ) from None
        if method not in product.methods:
            raise InvalidInput(
                f"product {product.code!r} does not offer {method.value}", field="repayment_method"
            )
    months = product.line_term_months or product.max_term
    line = CreditLine(
        customer_id=customer_id,
        product_code=product.code,
        limit_amount=limit,
        used_amount=ZERO,
        annual_rate=annual_rate if annual_rate is not None else product.annual_rate,
        status=str(CREDIT_LINE.next_state(CreditLineStatus.PENDING, CreditLineEvent.ACTIVATE)),
        opened_date=business_date,
        expiry_date=add_months(business_date, months),
        application_id=application_id,
        term_months=term_months,
        repayment_method=None if method is None else str(method),
        created_at=clock.now(),
    )
    session.add(line)
    session.flush()
    append(
        session,
        Event(
            "servicing.line.opened",
            {
                "line_id": line.id,
                "customer_id": customer_id,
                "limit": str(limit),
                "application_id": application_id,
            },
        ),
        now=clock.now(),
    )
    return line


def line_of_application(session: Session, application_id: int) -> CreditLine | None:
    """The credit line opened for an origination application, if any."""
    return session.scalars(select(CreditLine).where(CreditLine.application_id == application_id)).first()


def open_line_for_contract(
    session: Session,
    *,
    application_id: int,
    customer_id: str,
    product_code: str,
    limit: Decimal,
    annual_rate: Decimal,
    term_months: int,
    repayment_method: RepaymentMethod | str,
    business_date: date,
    clock: Clock,
) -> tuple[CreditLine, bool]:
    """Open the credit line of an accepted contract, once: returns ``(line, opened_now)``.

    A second call for the same application (a redelivered event) returns the line the first
    opened; the unique application id on the line makes this hold under concurrent delivery too.
    """
    existing = line_of_application(session, application_id)
    if existing is not None:
        return existing, False
    line = open_line(
        session,
        customer_id=customer_id,
        product_code=product_code,
        limit=limit,
        business_date=business_date,
        clock=clock,
        annual_rate=annual_rate,
        term_months=term_months,
        repayment_method=repayment_method,
        application_id=application_id,
    )
    return line, True


def get_line(session: Session, line_id: int) -> CreditLine:
    line = session.get(CreditLine, line_id)
    if line is None:
        raise NotFound(f"credit line {line_id} does not exist")
    return line


def change_line(
    session: Session, *, line_id: int, event: str, business_date: date, clock: Clock
) -> CreditLine:
    """Freeze, unfreeze or close a line (the state machine refuses illegal moves)."""
    line = session.get(CreditLine, line_id)
    if line is None:
        raise NotFound(f"credit line {line_id} does not exist")
    new = CREDIT_LINE.next_state(CreditLineStatus(line.status), CreditLineEvent(event))
    if event == "close" and line.used_amount > 0:
        raise Conflict(f"line {line_id} still has {line.used_amount} drawn; it can be closed once repaid")
    line.status = str(new)
    if event == "close":
        line.closed_date = business_date
    session.flush()
    append(session, Event(f"servicing.line.{_past(event)}", {"line_id": line_id}), now=clock.now())
    return line


def _past(event: str) -> str:
    return {"freeze": "frozen", "unfreeze": "unfrozen", "close": "closed", "expire": "expired"}.get(
        event, event + "d"
    )


# ------------------------------------------------------------------ drawdowns


@dataclass(frozen=True, slots=True)
class Drawn:
    loan: Loan
    instalments: list[Instalment]


def _pending_rows(loan_id: int, instalments: Iterable[Any]) -> list[Instalment]:
    """A schedule's instalments as pending rows of the loan."""
    return [
        Instalment(
            loan_id=loan_id,
            number=i.number,
            start_date=i.start_date,
            due_date=i.due_date,
            days=i.days,
            principal=i.principal,
            interest=i.interest,
            status="pending",
        )
        for i in instalments
    ]


def draw_down(
    session: Session,
    *,
    line_id: int,
    amount: Decimal,
    term: int | None = None,
    business_date: date,
    clock: Clock,
    method: RepaymentMethod | str | None = None,
    key: str,
) -> Drawn:
    """Draw on a line and disburse to the customer's settlement account.

    The line's used amount moves by one conditional UPDATE (``used + amount <= limit``), so
    concurrent drawdowns can never exceed the limit on SQLite or PostgreSQL. ``key`` makes the
    drawdown idempotent: the same key returns the loan it created. ``term`` and ``method``
    default to the line's contract terms, when it has them.
    """
    source_key = f"drawdown:{line_id}:{key}"
    done = session.scalars(select(LoanTransaction).where(LoanTransaction.source_key == source_key)).first()
    if done is not None:
        loan = session.get(Loan, done.loan_id)
        assert loan is not None
        return Drawn(loan, _instalments(session, loan.id))
    amount = _money(amount, "amount")
    line = session.get(CreditLine, line_id)
    if line is None:
        raise NotFound(f"credit line {line_id} does not exist")
    product = get_product(session, line.product_code)
    if method is not None:
        chosen = RepaymentMethod(method)
    elif line.repayment_method is not None:
        chosen = RepaymentMethod(line.repayment_method)
    else:
        chosen = product.methods[0]
    if term is None:
        if line.term_months is None:
            raise InvalidInput(
                f"a term is needed: line {line_id} was opened without contract terms", field="term"
            )
        term = line.term_months
    product.check_loan(amount=amount, term=term, method=chosen)
    if line.status != "active":
        raise LineNotUsable(f"line {line_id} is {line.status}; only an active line can be drawn")
    if business_date >= line.expiry_date:
        raise LineNotUsable(f"line {line_id} expired on {line.expiry_date.isoformat()}")
    table = CreditLine.__table__
    moved = session.execute(
        update(table)
        .where(
            table.c.id == line_id,
            table.c.status == "active",
            table.c.used_amount + amount <= table.c.limit_amount,
        )
        .values(used_amount=table.c.used_amount + amount, version=table.c.version + 1)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        session.expire(line)
        available = line.limit_amount - line.used_amount
        raise LimitExceeded(
            f"drawdown of {amount} exceeds the available limit {available} of line {line_id}",
            available=str(available),
        )
    session.expire(line)
    if product.max_drawdowns is not None:
        taken = session.scalar(select(func.count()).select_from(Loan).where(Loan.line_id == line_id)) or 0
        if taken >= product.max_drawdowns:
            raise LineNotUsable(f"line {line_id} has had its {product.max_drawdowns} drawdowns")
    schedule = generate_schedule(
        principal=amount,
        annual_rate=line.annual_rate,
        term=term,
        method=chosen,
        start=business_date,
        day_count=product.day_count,
        policy=product.rounding_policy,
        instalment_multiple=product.instalment_multiple,
    )
    loan = Loan(
        line_id=line_id,
        customer_id=line.customer_id,
        product_code=product.code,
        method=str(chosen),
        day_count=str(product.day_count),
        rounding=str(product.rounding),
        principal=amount,
        annual_rate=line.annual_rate,
        penalty_rate=product.penalty_rate_for(line.annual_rate),
        grace_days=product.grace_days,
        term=term,
        start_date=business_date,
        maturity_date=schedule.instalments[-1].due_date,
        status=str(LOAN.next_state(LoanStatus.APPROVED, LoanEvent.DISBURSE)),
        outstanding_principal=amount,
        last_accrued_date=business_date - _ONE_DAY,
        current_since=business_date - _ONE_DAY,
        created_at=clock.now(),
    )
    session.add(loan)
    session.flush()
    rows = _pending_rows(loan.id, schedule.instalments)
    session.add_all(rows)
    session.add(
        LoanTransaction(
            loan_id=loan.id,
            kind="disbursement",
            value_date=business_date,
            amount=amount,
            principal=amount,
            source_key=source_key,
            created_at=clock.now(),
        )
    )
    ledger.post(
        session,
        ledger.disbursement(
            source_key=f"disburse:{loan.id}",
            value_date=business_date,
            subledger=f"loan:{loan.id}",
            amount=amount,
            paid_to_subledger=f"customer:{loan.customer_id}",
        ),
        now=clock.now(),
    )
    append(
        session,
        Event(
            "servicing.loan.disbursed",
            {"loan_id": loan.id, "line_id": line_id, "customer_id": loan.customer_id, "amount": str(amount)},
            key=f"servicing.loan.disbursed:{loan.id}",
        ),
        now=clock.now(),
    )
    session.flush()
    return Drawn(loan, rows)


def _instalments(session: Session, loan_id: int) -> list[Instalment]:
    return list(
        session.scalars(select(Instalment).where(Instalment.loan_id == loan_id).order_by(Instalment.number))
    )


def get_loan(session: Session, loan_id: int) -> tuple[Loan, list[Instalment]]:
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise NotFound(f"loan {loan_id} does not exist")
    return loan, _instalments(session, loan_id)


# ------------------------------------------------------------------ repayments


@dataclass(frozen=True, slots=True)
class RepaymentResult:
    loan: Loan
    transaction: LoanTransaction
    settled: bool


def payoff_amount(session: Session, *, loan_id: int) -> Decimal:
    """What settles the loan today: principal outstanding plus every accrued receivable."""
    loan, _ = get_loan(session, loan_id)
    if loan.status not in ("active", "overdue"):
        raise Conflict(f"loan {loan_id} is {loan.status}; there is nothing to pay off")
    return loan.outstanding_principal + loan.interest_receivable + loan.penalty_receivable


def repay(
    session: Session,
    *,
    loan_id: int,
    amount: Decimal,
    business_date: date,
    clock: Clock,
    key: str,
    prepayment: ReamortiseOption | str | None = None,
) -> RepaymentResult:
    """Apply a repayment through the product's waterfall.

    Due and overdue instalments are paid oldest first, each in the product's ``allocation_order``
    (penalty, fee, interest, principal by default); the loan's penalty interest counts as the
    oldest unpaid instalment's penalty. An amount that covers the payoff settles the loan with
    interest to the payoff date. What is left after the dues first pays the interest accrued in
    the current period, then prepays principal and re-amortises the coming instalments on the
    lower balance (:func:`reamortise`): with ``keep_instalment`` the instalment stays and the
    term shortens, with ``keep_term`` the due dates stay and the instalment falls.
    ``prepayment`` is the customer's choice; without one the product's ``prepayment`` applies
    (interest-only and bullet loans always keep their term). An overdue loan with nothing left
    past its grace days is active again. A repeat with the same key returns the first result.
    """
    source_key = f"repayment:{loan_id}:{key}"
    done = session.scalars(select(LoanTransaction).where(LoanTransaction.source_key == source_key)).first()
    if done is not None:
        loan = session.get(Loan, done.loan_id)
        assert loan is not None
        return RepaymentResult(loan, done, loan.status == "settled")
    amount = _money(amount, "amount")
    if amount <= 0:
        raise InvalidInput("a repayment must be a positive amount", field="amount")
    loan, instalments = get_loan(session, loan_id)
    if loan.status not in ("active", "overdue"):
        raise Conflict(f"loan {loan_id} is {loan.status}; it takes no repayments")
    product = get_product(session, loan.product_code)
    payoff = loan.outstanding_principal + loan.interest_receivable + loan.penalty_receivable
    parts = {"principal": ZERO, "interest": ZERO, "penalty": ZERO}
    excess = ZERO
    if amount >= payoff:
        parts = {
            "principal": loan.outstanding_principal,
            "interest": loan.interest_receivable,
            "penalty": loan.penalty_receivable,
        }
        excess = amount - payoff
        for inst in instalments:
            inst.paid_principal = inst.principal
            if inst.status != "paid":
                inst.status = "paid"
                inst.paid_date = business_date
        settled = True
    else:
        dues = [
            Due(
                number=i.number,
                due_date=i.due_date,
                interest=max(min(i.interest - i.paid_interest, loan.interest_receivable), ZERO),
                principal=i.principal - i.paid_principal,
            )
            for i in instalments
            if i.status != "paid" and i.due_date <= business_date
        ]
        if loan.penalty_receivable > 0:
            # The penalty is kept per loan; it is the oldest unpaid instalment's penalty, so the
            # product's order places it within that instalment (first by default, or after its
            # interest and principal with an order that ends with the penalty).
            if dues:
                dues[0] = replace(dues[0], penalty=loan.penalty_receivable)
            else:
                dues.append(Due(number=0, due_date=business_date, penalty=loan.penalty_receivable))
        allocation = allocate_repayment(amount, dues, order=product.allocation_order)
        by_number = {i.number: i for i in instalments}
        for line in allocation.lines:
            if line.component is Component.PENALTY:
                parts["penalty"] += line.amount
                continue
            inst = by_number[line.number]
            if line.component is Component.INTEREST:
                inst.paid_interest += line.amount
                parts["interest"] += line.amount
            elif line.component is Component.PRINCIPAL:
                inst.paid_principal += line.amount
                parts["principal"] += line.amount
        for inst in instalments:
            if (
                inst.status != "paid"
                and inst.due_date <= business_date
                and inst.paid_principal == inst.principal
                and inst.paid_interest >= inst.interest
            ):
                inst.status, inst.paid_date = "paid", business_date
        rest = allocation.excess
        if rest > 0:
            rest = _prepay(
                session,
                loan=loan,
                product=product,
                instalments=instalments,
                amount=rest,
                parts=parts,
                business_date=business_date,
                option=prepayment,
            )
        excess = rest
        settled = False
    loan.outstanding_principal -= parts["principal"]
    loan.interest_receivable -= parts["interest"]
    loan.penalty_receivable -= parts["penalty"]
    if settled or (
        loan.outstanding_principal == 0 and loan.interest_receivable == 0 and loan.penalty_receivable == 0
    ):
        loan.status = str(LOAN.next_state(LoanStatus(loan.status), LoanEvent.SETTLE))
        loan.closed_date = business_date
        settled = True
    else:
        # Cured once nothing unpaid is past its grace days: an instalment that falls due today
        # (or is still within its grace days) does not keep the loan overdue.
        unpaid_due = [i.due_date for i in instalments if i.status != "paid" and i.due_date <= business_date]
        oldest = min(unpaid_due, default=None)
        if loan.status == "overdue" and days_past_due(oldest, business_date, loan.grace_days) == 0:
            loan.status = str(LOAN.next_state(LoanStatus(loan.status), LoanEvent.CURE))
            loan.dpd, loan.oldest_unpaid_due = 0, oldest
    if loan.line_id is not None and parts["principal"] > 0:
        table = CreditLine.__table__
        session.execute(
            update(table)
            .where(table.c.id == loan.line_id)
            .values(used_amount=table.c.used_amount - parts["principal"], version=table.c.version + 1)
            .execution_options(synchronize_session=False)
        )
    txn = LoanTransaction(
        loan_id=loan.id,
        kind="repayment",
        value_date=business_date,
        amount=amount,
        principal=parts["principal"],
        interest=parts["interest"],
        penalty=parts["penalty"],
        excess=excess,
        source_key=source_key,
        created_at=clock.now(),
        prepayment=None if prepayment is None else _option(prepayment).value,
    )
    session.add(txn)
    ledger.post(
        session,
        ledger.repayment(
            source_key=source_key,
            value_date=business_date,
            subledger=f"loan:{loan.id}",
            principal=parts["principal"],
            interest=parts["interest"],
            penalty=parts["penalty"],
            overpayment=excess,
            paid_from_subledger=f"customer:{loan.customer_id}",
        ),
        now=clock.now(),
    )
    append(
        session,
        Event(
            "servicing.loan.repaid",
            {"loan_id": loan.id, "amount": str(amount), "settled": settled},
            key=f"servicing.loan.repaid:{source_key}",
        ),
        now=clock.now(),
    )
    session.flush()
    return RepaymentResult(loan, txn, settled)


def _prepayment_option(
    product: LoanProduct, method: RepaymentMethod, chosen: ReamortiseOption | str | None
) -> ReamortiseOption:
    if method in (RepaymentMethod.INTEREST_ONLY, RepaymentMethod.BULLET):
        return ReamortiseOption.KEEP_TERM  # no instalment to keep
    return _option(chosen if chosen is not None else product.prepayment)


def _option(chosen: ReamortiseOption | str) -> ReamortiseOption:
    try:
        return ReamortiseOption(chosen)
    except ValueError:
        allowed = ", ".join(o.value for o in ReamortiseOption)
        raise InvalidInput(
            f"prepayment must be one of {allowed}, got {chosen!r}", field="prepayment"
        ) from None


def _as_schedule(loan: Loan, rows: list[Instalment], *, coming_from: int) -> Schedule:
    """The loan's current schedule as the pure model sees it (balances from the end backwards);
    instalments from number ``coming_from`` on count only their principal not yet paid.

    The level instalment (and the level principal part) is the one of the instalments still to
    come, the last excepted (it absorbs the rounding): an earlier ``keep_term`` prepayment
    lowered it, and the paid instalments still show the old one.
    """
    after = ZERO
    out: list[ScheduleInstalment] = []
    for r in reversed(rows):
        principal = r.principal - r.paid_principal if r.number >= coming_from else r.principal
        out.append(
            ScheduleInstalment(r.number, r.start_date, r.due_date, r.days, principal, r.interest, after)
        )
        after += principal
    out.reverse()
    coming = [r for r in rows if r.number >= coming_from] or rows[-1:]
    head = [r.principal + r.interest for r in coming[:-1]] or [coming[-1].principal + coming[-1].interest]
    parts = [r.principal for r in coming[:-1]] or [coming[-1].principal]
    return Schedule(
        principal=after,
        annual_rate=loan.annual_rate,
        method=RepaymentMethod(loan.method),
        day_count=DayCount(loan.day_count),
        start=out[0].start_date,
        instalments=tuple(out),
        level_instalment=Counter(head).most_common(1)[0][0],
        level_principal=Counter(parts).most_common(1)[0][0],
    )


def _prepay(
    session: Session,
    *,
    loan: Loan,
    product: LoanProduct,
    instalments: list[Instalment],
    amount: Decimal,
    parts: dict[str, Decimal],
    business_date: date,
    option: ReamortiseOption | str | None,
) -> Decimal:
    """Apply what is left of a repayment after the dues; returns what is left over (nothing,
    unless the loan is fully prepaid, which the payoff path handles).

    It pays the interest accrued so far in the current period, then prepays principal: the
    instalments not yet due are replaced by the re-amortised ones, the current period starting
    on the business date with interest on the new balance (the accrual picks it up from there).
    """
    chosen = _prepayment_option(product, RepaymentMethod(loan.method), option)
    coming = [i for i in instalments if i.due_date > business_date]
    if not coming:
        return amount
    current = coming[0]
    accrued = max(loan.interest_receivable - parts["interest"], ZERO)
    interest = min(amount, accrued)
    if interest > 0:
        current.paid_interest += interest
        parts["interest"] += interest
        amount -= interest
    balance = loan.outstanding_principal - parts["principal"]
    principal = min(amount, balance)
    if principal <= 0:
        return amount
    # amount < payoff, so the prepaid principal is below the balance (a payoff settles instead).
    assert principal < balance
    paid_rows = [i for i in instalments if i.number < current.number]
    schedule = _as_schedule(loan, instalments, coming_from=current.number)
    result = reamortise(
        schedule=schedule,
        paid_instalments=len(paid_rows),
        prepayment=principal,
        option=chosen,
        policy=product.rounding_policy,
        prepayment_date=business_date,
        instalment_multiple=product.instalment_multiple,
    )
    for inst in coming:
        session.delete(inst)
    session.flush()
    fresh = _pending_rows(loan.id, result.schedule.instalments)
    session.add_all(fresh)
    instalments[:] = [*paid_rows, *fresh]
    loan.term = len(instalments)
    loan.maturity_date = result.schedule.maturity_date
    parts["principal"] += principal
    return amount - principal


def write_off(session: Session, *, loan_id: int, business_date: date, clock: Clock, reason: str) -> Loan:
    """Write the loan off: principal and receivables move to loss; the loan stops accruing."""
    loan, _ = get_loan(session, loan_id)
    new = LOAN.next_state(LoanStatus(loan.status), LoanEvent.WRITE_OFF)
    ledger.post(
        session,
        ledger.write_off(
            source_key=f"write_off:{loan.id}",
            value_date=business_date,
            subledger=f"loan:{loan.id}",
            principal=loan.outstanding_principal,
            interest=loan.interest_receivable,
            penalty=loan.penalty_receivable,
            description=reason,
        ),
        now=clock.now(),
    )
    if loan.line_id is not None and loan.outstanding_principal > 0:
        table = CreditLine.__table__
        session.execute(
            update(table)
            .where(table.c.id == loan.line_id)
            .values(used_amount=table.c.used_amount - loan.outstanding_principal)
            .execution_options(synchronize_session=False)
        )
    loan.status = str(new)
    loan.closed_date = business_date
    # The balances moved to loss with the entry above; the loan's caches follow the journal.
    loan.outstanding_principal = loan.interest_receivable = loan.penalty_receivable = ZERO
    session.flush()
    append(
        session, Event("servicing.loan.written_off", {"loan_id": loan.id, "reason": reason}), now=clock.now()
    )
    return loan


# ------------------------------------------------------------------ portfolio


def portfolio(session: Session) -> dict[str, Any]:
    """Live loans by five-tier class and by DPD bucket, and the NPL ratio (substandard and worse)."""
    from sqlalchemy import BigInteger, case, type_coerce

    from creditfactory.money import from_minor

    principal = func.coalesce(func.sum(type_coerce(Loan.outstanding_principal, BigInteger)), 0)
    live = Loan.status.in_(("active", "overdue"))
    by_tier = {
        str(t): {"loans": int(n), "principal": from_minor(int(p))}
        for t, n, p in session.execute(
            select(Loan.tier, func.count(), principal).where(live).group_by(Loan.tier)
        )
    }
    bucket = case(
        (Loan.dpd == 0, "current"),
        (Loan.dpd <= 30, "1-30"),
        (Loan.dpd <= 60, "31-60"),
        (Loan.dpd <= 90, "61-90"),
        (Loan.dpd <= 180, "91-180"),
        else_="181+",
    )
    by_bucket = {
        str(b): {"loans": int(n), "principal": from_minor(int(p))}
        for b, n, p in session.execute(select(bucket, func.count(), principal).where(live).group_by(bucket))
    }
    total = sum((v["principal"] for v in by_tier.values()), ZERO)
    npl = sum((v["principal"] for k, v in by_tier.items() if k in ("substandard", "doubtful", "loss")), ZERO)
    return {
        "by_tier": by_tier,
        "by_bucket": by_bucket,
        "principal": total,
        "npl_ratio": (npl / total) if total else ZERO,
    }
