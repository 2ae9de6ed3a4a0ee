"""HTTP routes of loan servicing: products, the loan calculator, credit lines, drawdowns, loans,
repayments, write-offs, the portfolio and the end of day.

Each route parses, authorises, calls one service function inside the request's unit of work,
commits and returns. Every write needs an ``Idempotency-Key``: a retry returns the first response
(with ``Idempotent-Replayed: true``), the same key with another body is refused (422). Writes
happen on the open business date. Staff need ``loan.manage`` (``eod.run`` for the end of day); a
customer may read, draw on and repay only their own lines and loans.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from creditfactory import jobs
from creditfactory.api.deps import ContainerDep, PrincipalDep, UowDep
from creditfactory.api.idempotency import run_idempotent
from creditfactory.api.params import LineId, LoanId, ProductCode
from creditfactory.clock import DayCount
from creditfactory.db.command_log import IdempotencyKeyReused
from creditfactory.errors import InvalidInput, PermissionDenied
from creditfactory.money import RoundingMode, RoundingPolicy
from creditfactory.security.roles import Permission, Principal, PrincipalKind, require
from creditfactory.servicing import service
from creditfactory.servicing.model import (
    BUCKETS,
    TIERS,
    Bucket,
    LoanProduct,
    RepaymentMethod,
    Schedule,
    Tier,
    generate_schedule,
)
from creditfactory.servicing.schemas import (
    AMOUNT_DIGITS,
    AllocationRead,
    BalancesRead,
    BucketRead,
    DrawdownCreate,
    EodReportRead,
    EodRunCreate,
    EodRunRead,
    EodStatusRead,
    InstalmentRead,
    LineAction,
    LineCreate,
    LineRead,
    LoanRead,
    PayoffRead,
    PortfolioRead,
    ProductVersionRead,
    RepaymentCreate,
    ScheduleInstalmentRead,
    ScheduleRead,
    ScheduleTotalsRead,
    TierRead,
    WriteOffCreate,
    dump,
)
from creditfactory.servicing.store import CreditLine, Instalment, Loan

router = APIRouter(prefix="/v1", tags=["servicing"])

#: The key of a drawdown or a repayment also keys the loan transaction it books, so it is kept
#: within what that record holds.
LoanKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=100,
        description="Required: a retry with the same key returns the first response.",
    ),
]


# ------------------------------------------------------------------ access


def _allow(principal: Principal, *, customer_id: str, permission: Permission) -> None:
    """A customer acts on their own records only; everyone else needs ``permission``."""
    if principal.kind == PrincipalKind.CUSTOMER:
        if principal.customer_id != customer_id:
            raise PermissionDenied(
                f"customer principal {principal.id} may act only on its own lines and loans",
                principal_id=principal.id,
            )
        return
    require(principal, permission)


def _line(session: Session, line_id: int) -> CreditLine:
    return service.get_line(session, line_id)


# ------------------------------------------------------------------ responses


def _line_read(line: CreditLine) -> LineRead:
    return LineRead(
        id=line.id,
        customer_id=line.customer_id,
        product_code=line.product_code,
        limit=line.limit_amount,
        used=line.used_amount,
        available=line.limit_amount - line.used_amount,
        annual_rate=line.annual_rate,
        status=line.status,
        opened_date=line.opened_date,
        expiry_date=line.expiry_date,
        closed_date=line.closed_date,
        term_months=line.term_months,
        repayment_method=None if line.repayment_method is None else RepaymentMethod(line.repayment_method),
    )


def _balances(loan: Loan) -> BalancesRead:
    return BalancesRead(
        principal=loan.outstanding_principal,
        interest=loan.interest_receivable,
        penalty=loan.penalty_receivable,
    )


def _loan_read(loan: Loan, instalments: list[Instalment]) -> LoanRead:
    method = RepaymentMethod(loan.method)
    tier = Tier(loan.tier)
    return LoanRead(
        id=loan.id,
        line_id=loan.line_id,
        customer_id=loan.customer_id,
        product_code=loan.product_code,
        method=method,
        method_label=method.label,
        day_count=DayCount(loan.day_count),
        principal=loan.principal,
        annual_rate=loan.annual_rate,
        penalty_rate=loan.penalty_rate,
        term=loan.term,
        start_date=loan.start_date,
        maturity_date=loan.maturity_date,
        status=loan.status,
        balances=_balances(loan),
        dpd=loan.dpd,
        bucket=Bucket.of(loan.dpd).value,
        tier=tier.value,
        tier_label=tier.label,
        closed_date=loan.closed_date,
        instalments=[
            InstalmentRead(
                number=i.number,
                start_date=i.start_date,
                due_date=i.due_date,
                days=i.days,
                principal=i.principal,
                interest=i.interest,
                total=i.principal + i.interest,
                paid_principal=i.paid_principal,
                paid_interest=i.paid_interest,
                status=i.status,
                paid_date=i.paid_date,
            )
            for i in instalments
        ],
    )


def _schedule_read(schedule: Schedule) -> ScheduleRead:
    return ScheduleRead(
        principal=schedule.principal,
        annual_rate=schedule.annual_rate,
        method=schedule.method,
        method_label=schedule.method.label,
        day_count=schedule.day_count,
        start=schedule.start,
        term=schedule.term,
        level_instalment=schedule.level_instalment,
        instalments=[
            ScheduleInstalmentRead(
                number=i.number,
                start_date=i.start_date,
                due_date=i.due_date,
                days=i.days,
                principal=i.principal,
                interest=i.interest,
                total=i.total,
                balance_after=i.balance_after,
            )
            for i in schedule.instalments
        ],
        totals=ScheduleTotalsRead(
            principal=schedule.total_principal,
            interest=schedule.total_interest,
            total=schedule.total_payment,
        ),
    )


# ------------------------------------------------------------------ products


@router.get("/products", response_model=list[LoanProduct])
def list_products(uow: UowDep, principal: PrincipalDep) -> list[LoanProduct]:
    """Every loan product the bank offers, by code."""
    return service.list_products(uow.session)


@router.get("/products/{code}", response_model=LoanProduct)
def get_product(code: ProductCode, uow: UowDep, principal: PrincipalDep) -> LoanProduct:
    return service.get_product(uow.session, code)


@router.put("/products/{code}", response_model=ProductVersionRead)
async def define_product(
    code: ProductCode,
    body: LoanProduct,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Define a product, or update it (a changed definition gets the next version).

    Loans keep the terms they were made on; a change applies to loans made afterwards.
    """
    require(principal, Permission.LOAN_MANAGE)
    if body.code != code:
        raise InvalidInput(
            f"the body defines product {body.code!r} but the path names {code!r}", field="code"
        )

    def work() -> tuple[int, object]:
        row = service.define_product(uow.session, body, clock=container.clock)
        read = ProductVersionRead(code=row.code, version=row.version, updated_at=row.updated_at, product=body)
        return 200, dump(read)

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"servicing.product.{code}.define",
        now=container.clock.now(),
        work=work,
    )


# ------------------------------------------------------------------ the loan calculator


@router.get("/schedule", response_model=ScheduleRead)
def calculate_schedule(
    amount: Annotated[
        Decimal,
        Query(
            gt=0,
            max_digits=AMOUNT_DIGITS,
            decimal_places=2,
            description="Principal in yuan.",
            examples=["100000.00"],
        ),
    ],
    rate: Annotated[
        Decimal,
        Query(ge=0, lt=1, decimal_places=8, description="Annual rate as a fraction.", examples=["0.0435"]),
    ],
    term: Annotated[int, Query(ge=1, le=600, description="Number of monthly instalments.")],
    start: Annotated[date, Query(description="Disbursement date, YYYY-MM-DD.")],
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT,
    day_count: DayCount = DayCount.THIRTY_E_360,
    rounding: RoundingMode = RoundingMode.HALF_UP,
) -> ScheduleRead:
    """The repayment schedule of a loan, computed without touching any account (no sign-in needed)."""
    return _schedule_read(
        generate_schedule(
            principal=amount,
            annual_rate=rate,
            term=term,
            method=method,
            start=start,
            day_count=day_count,
            policy=RoundingPolicy(rounding),
        )
    )


# ------------------------------------------------------------------ credit lines


@router.post("/lines", response_model=LineRead, status_code=201)
async def open_line(
    body: LineCreate, request: Request, container: ContainerDep, uow: UowDep, principal: PrincipalDep
) -> JSONResponse:
    """Open a credit line for a customer on the open business date."""
    require(principal, Permission.LOAN_MANAGE)

    def work() -> tuple[int, object]:
        line = service.open_line(
            uow.session,
            customer_id=body.customer_id,
            product_code=body.product_code,
            limit=body.limit,
            business_date=jobs.current_business_date(uow.session),
            clock=container.clock,
            term_months=body.term_months,
            repayment_method=body.repayment_method,
        )
        return 201, dump(_line_read(line))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation="servicing.line.open",
        now=container.clock.now(),
        work=work,
    )


@router.get("/lines/{line_id}", response_model=LineRead)
def get_line(line_id: LineId, uow: UowDep, principal: PrincipalDep) -> LineRead:
    """A credit line: its limit, what is drawn, what is available, its status and expiry."""
    line = _line(uow.session, line_id)
    _allow(principal, customer_id=line.customer_id, permission=Permission.LOAN_MANAGE)
    return _line_read(line)


@router.post("/lines/{line_id}/drawdowns", response_model=LoanRead, status_code=201)
async def draw_down(
    line_id: LineId,
    body: DrawdownCreate,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
    idempotency_key: LoanKey = None,
) -> JSONResponse:
    """Draw on a line: a new loan, disbursed on the open business date, with its schedule.

    Refused with 409 ``limit_exceeded`` beyond the available limit and ``line_not_usable`` when
    the line is frozen, expired or closed; 422 ``invalid_product`` when the amount, the term or
    the method does not fit the product.
    """
    line = _line(uow.session, line_id)
    _allow(principal, customer_id=line.customer_id, permission=Permission.LOAN_MANAGE)

    def work() -> tuple[int, object]:
        assert idempotency_key is not None  # run_idempotent refuses a request without one
        drawn = service.draw_down(
            uow.session,
            line_id=line_id,
            amount=body.amount,
            term=body.term,
            method=body.method,
            business_date=jobs.current_business_date(uow.session),
            clock=container.clock,
            key=idempotency_key,
        )
        made = drawn.loan
        if (
            (made.line_id, made.principal) != (line_id, body.amount)
            or body.term not in (None, made.term)
            or body.method not in (None, made.method)
        ):
            raise IdempotencyKeyReused(
                f"idempotency key {idempotency_key!r} already made loan {made.id} with another request",
                key=idempotency_key,
            )
        return 201, dump(_loan_read(made, drawn.instalments))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"servicing.line.{line_id}.drawdown",
        now=container.clock.now(),
        work=work,
    )


@router.post("/lines/{line_id}/{action}", response_model=LineRead)
async def change_line(
    line_id: LineId,
    action: LineAction,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Freeze, unfreeze or close a line (409 ``illegal_transition`` for a move its status forbids)."""
    require(principal, Permission.LOAN_MANAGE)

    def work() -> tuple[int, object]:
        line = service.change_line(
            uow.session,
            line_id=line_id,
            event=action.value,
            business_date=jobs.current_business_date(uow.session),
            clock=container.clock,
        )
        return 200, dump(_line_read(line))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"servicing.line.{line_id}.{action.value}",
        now=container.clock.now(),
        work=work,
    )


# ------------------------------------------------------------------ loans


@router.get("/loans/{loan_id}", response_model=LoanRead)
def get_loan(loan_id: LoanId, uow: UowDep, principal: PrincipalDep) -> LoanRead:
    """A loan: its terms, balances, days past due, class and instalments."""
    loan, instalments = service.get_loan(uow.session, loan_id)
    _allow(principal, customer_id=loan.customer_id, permission=Permission.LOAN_MANAGE)
    return _loan_read(loan, instalments)


@router.get("/loans/{loan_id}/payoff", response_model=PayoffRead)
def get_payoff(loan_id: LoanId, uow: UowDep, principal: PrincipalDep) -> PayoffRead:
    """What settles the loan today: principal outstanding plus the interest and penalty accrued."""
    loan, _ = service.get_loan(uow.session, loan_id)
    _allow(principal, customer_id=loan.customer_id, permission=Permission.LOAN_MANAGE)
    amount = service.payoff_amount(uow.session, loan_id=loan_id)
    return PayoffRead(loan_id=loan.id, status=loan.status, amount=amount, balances=_balances(loan))


@router.post("/loans/{loan_id}/repayments", response_model=AllocationRead, status_code=201)
async def repay(
    loan_id: LoanId,
    body: RepaymentCreate,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
    idempotency_key: LoanKey = None,
) -> JSONResponse:
    """Apply a repayment on the open business date: amounts due first (penalty, interest,
    principal, oldest first), then prepayment; an amount covering the payoff settles the loan."""
    loan, _ = service.get_loan(uow.session, loan_id)
    _allow(principal, customer_id=loan.customer_id, permission=Permission.LOAN_MANAGE)

    def work() -> tuple[int, object]:
        assert idempotency_key is not None  # run_idempotent refuses a request without one
        result = service.repay(
            uow.session,
            loan_id=loan_id,
            amount=body.amount,
            business_date=jobs.current_business_date(uow.session),
            clock=container.clock,
            key=idempotency_key,
            prepayment=body.prepayment,
        )
        txn = result.transaction
        asked = None if body.prepayment is None else str(body.prepayment)
        if (txn.loan_id, txn.amount, txn.prepayment) != (loan_id, body.amount, asked):
            raise IdempotencyKeyReused(
                f"idempotency key {idempotency_key!r} already paid {txn.amount} on loan {txn.loan_id}"
                + (f" ({txn.prepayment})" if txn.prepayment else ""),
                key=idempotency_key,
            )
        read = AllocationRead(
            loan_id=loan_id,
            transaction_id=txn.id,
            value_date=txn.value_date,
            amount=txn.amount,
            principal=txn.principal,
            interest=txn.interest,
            penalty=txn.penalty,
            excess=txn.excess,
            settled=result.settled,
            loan_status=result.loan.status,
            outstanding_principal=result.loan.outstanding_principal,
        )
        return 201, dump(read)

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"servicing.loan.{loan_id}.repayment",
        now=container.clock.now(),
        work=work,
    )


@router.post("/loans/{loan_id}/write-off", response_model=LoanRead)
async def write_off(
    loan_id: LoanId,
    body: WriteOffCreate,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Write an overdue (or restructured) loan off: principal and receivables move to loss."""
    require(principal, Permission.LOAN_MANAGE)

    def work() -> tuple[int, object]:
        loan = service.write_off(
            uow.session,
            loan_id=loan_id,
            business_date=jobs.current_business_date(uow.session),
            clock=container.clock,
            reason=body.reason,
        )
        _, instalments = service.get_loan(uow.session, loan.id)
        return 200, dump(_loan_read(loan, instalments))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"servicing.loan.{loan_id}.write_off",
        now=container.clock.now(),
        work=work,
    )


# ------------------------------------------------------------------ portfolio


@router.get("/portfolio", response_model=PortfolioRead)
def portfolio(uow: UowDep, principal: PrincipalDep) -> PortfolioRead:
    """Live loans by five-tier class (五级分类) and by DPD bucket, and the NPL ratio."""
    require(principal, Permission.LOAN_MANAGE)
    book = service.portfolio(uow.session)
    empty = {"loans": 0, "principal": Decimal("0")}
    tiers = [(t, book["by_tier"].get(t.value, empty)) for t in TIERS]
    buckets = [(b, book["by_bucket"].get(b.value, empty)) for b in BUCKETS]
    return PortfolioRead(
        principal=book["principal"],
        npl_ratio=book["npl_ratio"],
        by_tier=[
            TierRead(tier=t.value, label=t.label, loans=v["loans"], principal=v["principal"])
            for t, v in tiers
        ],
        by_bucket=[
            BucketRead(bucket=b.value, loans=v["loans"], principal=v["principal"]) for b, v in buckets
        ],
    )


# ------------------------------------------------------------------ end of day


@router.post("/eod", response_model=EodReportRead)
async def run_eod(
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
    body: EodRunCreate | None = None,
) -> JSONResponse:
    """Close the open business date: run every end-of-day step, then open the next date.

    Naming a date already closed reports ``already_closed`` and changes nothing.
    """
    require(principal, Permission.EOD_RUN)

    def work() -> tuple[int, object]:
        # Every domain's steps were registered when the container was built (bootstrap).
        report = jobs.run_eod(
            sessions=container.sessions,
            clock=container.clock,
            business_date=body.business_date if body is not None else None,
        )
        return 200, dump(EodReportRead.model_validate(report.to_json()))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation="jobs.eod",
        now=container.clock.now(),
        work=work,
    )


@router.get("/eod/{business_date}", response_model=EodStatusRead)
def eod_status(business_date: date, uow: UowDep, principal: PrincipalDep) -> EodStatusRead:
    """The steps of the end of day of ``business_date`` with their status and timings."""
    require(principal, Permission.EOD_RUN)
    runs = jobs.status(uow.session, business_date=business_date)
    return EodStatusRead(
        business_date=business_date,
        steps=[
            EodRunRead(
                name=r.job,
                status=str(r.status),
                attempts=r.attempts,
                items=r.items,
                failed=r.failed_items,
                seconds=round(r.seconds, 3),
                started_at=r.started_at,
                finished_at=r.finished_at,
                error=r.error,
            )
            for r in runs
        ],
    )
