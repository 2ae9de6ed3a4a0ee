"""Reconciliation of the balances servicing caches with the journal, the book of record.

Each loan keeps three balances on its row (``outstanding_principal``, ``interest_receivable``,
``penalty_receivable``) and each credit line its ``used_amount``; the journal holds the same
balances as the subledger ``loan:<id>`` of the accounts ``LOAN_PRINCIPAL``,
``INTEREST_RECEIVABLE`` and ``PENALTY_RECEIVABLE``. :func:`reconcile` compares them set-based
in the database: the journal's ``GROUP BY`` per subledger for the three accounts at once
(:func:`creditfactory.ledger.subledger_balances`) joined to the loans and, the other way, to the
subledgers that name no loan, in one statement returning only the rows that differ; and one
query over the lines, whatever the size of the book. It checks:

* every loan, whatever its status: each cached balance equals the journal balance of the
  matching account in the loan's subledger (a settled or written-off loan therefore shows zero
  on both sides);
* every journal balance in a ``loan:<id>`` subledger of those accounts belongs to a loan;
* every credit line: ``used_amount`` equals the outstanding principal of its live (active or
  overdue) loans.

:func:`register_step` adds the end-of-day step ``servicing.reconcile``, which stops the close
of the business date with :class:`BooksDiffer` when anything differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from creditfactory import ledger
from creditfactory.errors import DomainError
from creditfactory.jobs import EodStep, StepContext, StepResult, registry
from creditfactory.money import from_minor
from creditfactory.servicing.store import CreditLine, Loan

__all__ = [
    "BALANCES",
    "LIVE",
    "STEP",
    "BooksDiffer",
    "LineDifference",
    "LoanDifference",
    "Reconciliation",
    "check_reconciliation",
    "reconcile",
    "register_step",
]

ZERO = Decimal("0")
#: Loans whose principal counts towards their line's used amount.
LIVE = ("active", "overdue")
#: The cached balance on the loan row and the ledger account that holds it in the journal.
BALANCES: tuple[tuple[str, ledger.Account], ...] = (
    ("outstanding_principal", ledger.LOAN_PRINCIPAL),
    ("interest_receivable", ledger.INTEREST_RECEIVABLE),
    ("penalty_receivable", ledger.PENALTY_RECEIVABLE),
)
_PREFIX = "loan:"
#: Differences listed by :meth:`Reconciliation.summary` and named by :class:`BooksDiffer`.
SHOWN = 10


class BooksDiffer(DomainError):
    """Cached loan or line balances do not agree with the journal."""

    code = "servicing_books_differ"
    http_status = 500
    title = "Loan balances differ from the journal"


@dataclass(frozen=True, slots=True)
class LoanDifference:
    """One balance of one loan that differs from the journal.

    ``loan_id`` is ``None`` and ``cached`` is ``None`` when the journal holds a balance in a
    ``loan:`` subledger that names no loan (``subledger`` says which).
    """

    subledger: str
    balance: str
    """The loan row's column: ``outstanding_principal``, ``interest_receivable``, ``penalty_receivable``."""
    account: str
    cached: Decimal | None
    journal: Decimal
    loan_id: int | None = None

    @property
    def difference(self) -> Decimal:
        """Cached minus journal (the cache counts as zero when there is no loan)."""
        return (self.cached if self.cached is not None else ZERO) - self.journal

    def describe(self) -> str:
        what = self.balance.replace("_", " ")
        if self.loan_id is None:
            return (
                f"journal subledger {self.subledger} holds {what} {self.journal} "
                f"on account {self.account} but names no loan"
            )
        return (
            f"loan {self.loan_id} {what}: cached {self.cached}, journal {self.journal} "
            f"(account {self.account}, cached - journal {self.difference})"
        )


@dataclass(frozen=True, slots=True)
class LineDifference:
    """A credit line whose used amount is not the outstanding principal of its live loans."""

    line_id: int
    used_amount: Decimal
    live_principal: Decimal

    @property
    def difference(self) -> Decimal:
        return self.used_amount - self.live_principal

    def describe(self) -> str:
        return (
            f"credit line {self.line_id} used amount: cached {self.used_amount}, "
            f"outstanding principal of its live loans {self.live_principal} "
            f"(cached - loans {self.difference})"
        )


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What :func:`reconcile` compared and every difference it found, by loan then line id."""

    loans_checked: int
    lines_checked: int
    loans: tuple[LoanDifference, ...] = field(default=())
    lines: tuple[LineDifference, ...] = field(default=())

    @property
    def agrees(self) -> bool:
        """True when every cached balance equals the journal."""
        return not self.loans and not self.lines

    @property
    def differences(self) -> tuple[LoanDifference | LineDifference, ...]:
        return (*self.loans, *self.lines)

    @property
    def differing_loan_ids(self) -> tuple[int, ...]:
        """Loans with at least one difference, in id order."""
        return tuple(sorted({d.loan_id for d in self.loans if d.loan_id is not None}))

    def summary(self, limit: int = SHOWN) -> str:
        """One line when the books agree; otherwise a count and the first ``limit`` differences."""
        checked = f"{_count(self.loans_checked, 'loan')} and {_count(self.lines_checked, 'credit line')}"
        if self.agrees:
            return f"{checked} agree with the journal"
        parts = []
        if self.differing_loan_ids:
            parts.append(_count(len(self.differing_loan_ids), "loan"))
        orphans = sum(1 for d in self.loans if d.loan_id is None)
        if orphans:
            parts.append(f"{_count(orphans, 'journal balance')} of no loan")
        if self.lines:
            parts.append(_count(len(self.lines), "credit line"))
        shown = self.differences[:limit]
        text = [f"{checked} checked; cached balances differ from the journal for {', '.join(parts)}:"]
        text.extend(f"  {d.describe()}" for d in shown)
        rest = len(self.differences) - len(shown)
        if rest:
            text.append(f"  … and {rest} more {'difference' if rest == 1 else 'differences'}")
        return "\n".join(text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def reconcile(session: Session) -> Reconciliation:
    """Compare every loan's and every credit line's cached balances with the journal.

    The comparison runs in the database on integer fen and only the differences come back, so
    its cost is a few aggregate queries whatever the size of the book. The queries must see one
    snapshot: SQLite's write transaction gives it; on PostgreSQL run this in a
    ``REPEATABLE READ`` transaction (as :func:`check_reconciliation` does), or a repayment
    committed between two of the queries shows as a difference.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The grouping and the joins below hold a row per loan: keep them in memory.
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    sums = ledger.subledger_balances(session, [a for _, a in BALANCES], prefix=_PREFIX).subquery()
    # The loan a subledger names, parsed once: the joins below are on integers.
    suffix = func.substr(sums.c.subledger, len(_PREFIX) + 1)
    named = (
        case((suffix.regexp_match("^[0-9]{1,18}$"), cast(suffix, BigInteger)), else_=None)
        if postgres
        else cast(suffix, BigInteger)  # SQLite casts what is not a number to 0: no loan
    )
    # One pass over the journal for the three accounts, used twice (PostgreSQL and SQLite
    # materialise a common table expression that a statement reads twice).
    journal = select(sums, named.label("loan_id")).cte("journal")
    nets = [journal.c[f"balance_{k}"] for k in range(len(BALANCES))]
    cached = [type_coerce(getattr(Loan, name), BigInteger) for name, _ in BALANCES]
    differs = or_(*(c != func.coalesce(n, 0) for c, n in zip(cached, nets, strict=True)))
    width = len(BALANCES)
    loan_sub = literal(_PREFIX) + cast(Loan.id, String)
    per_loan = (
        select(
            literal(1).label("kind"),
            literal(None, String).label("subledger"),
            Loan.id.label("loan_id"),
            *cached,
            *(func.coalesce(n, 0) for n in nets),
        )
        .select_from(
            Loan.__table__.outerjoin(
                journal, and_(journal.c.loan_id == Loan.id, journal.c.subledger == loan_sub)
            )
        )
        .where(differs)
    )
    # Journal balances of no loan: each subledger looks its loan up by primary key.
    owner = Loan.__table__.alias("owner")
    owner_sub = literal(_PREFIX) + cast(owner.c.id, String)
    no_loan = (
        select(
            literal(2),
            journal.c.subledger,
            literal(None, BigInteger),
            *(literal(0, BigInteger) for _ in range(width)),
            *nets,
        )
        .select_from(
            journal.outerjoin(owner, and_(owner.c.id == journal.c.loan_id, owner_sub == journal.c.subledger))
        )
        .where(or_(*(n != 0 for n in nets)), owner.c.id.is_(None))
    )
    loan_differences: list[LoanDifference] = []
    orphans: list[LoanDifference] = []
    for row in session.execute(union_all(per_loan, no_loan)):
        kind, subledger, loan_id = row[0], row[1], row[2]
        cached_fen, journal_fen = row[3 : 3 + width], row[3 + width : 3 + 2 * width]
        for (name, account), c, n in zip(BALANCES, cached_fen, journal_fen, strict=True):
            if kind == 1 and int(c) != int(n):
                loan_differences.append(
                    LoanDifference(
                        f"{_PREFIX}{loan_id}",
                        name,
                        account.code,
                        from_minor(int(c)),
                        from_minor(int(n)),
                        loan_id,
                    )
                )
            elif kind == 2 and int(n) != 0:
                orphans.append(
                    LoanDifference(str(subledger), name, account.code, None, from_minor(int(n)), None)
                )
    order = {name: k for k, (name, _) in enumerate(BALANCES)}
    loan_differences.sort(key=lambda d: (d.loan_id or 0, order[d.balance]))
    loan_differences.extend(sorted(orphans, key=lambda d: (d.subledger, d.balance)))
    live = (
        select(Loan.line_id, func.sum(type_coerce(Loan.outstanding_principal, BigInteger)).label("principal"))
        .where(Loan.status.in_(LIVE), Loan.line_id.is_not(None))
        .group_by(Loan.line_id)
        .subquery()
    )
    used = type_coerce(CreditLine.used_amount, BigInteger)
    principal = func.coalesce(live.c.principal, 0)
    line_rows = session.execute(
        select(CreditLine.id, used, principal)
        .select_from(CreditLine.__table__.outerjoin(live, live.c.line_id == CreditLine.id))
        .where(used != principal)
        .order_by(CreditLine.id)
    ).all()
    line_differences = [
        LineDifference(line_id, from_minor(int(u)), from_minor(int(p))) for line_id, u, p in line_rows
    ]
    return Reconciliation(
        loans_checked=int(session.scalar(select(func.count()).select_from(Loan)) or 0),
        lines_checked=int(session.scalar(select(func.count()).select_from(CreditLine)) or 0),
        loans=tuple(loan_differences),
        lines=tuple(line_differences),
    )


# ------------------------------------------------------------------ end of day


def check_reconciliation(ctx: StepContext) -> StepResult:
    """The end-of-day step: every loan and line agrees with the journal, or the close stops."""
    with ctx.uow() as uow:
        if uow.session.get_bind().dialect.name == "postgresql":
            uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        result = reconcile(uow.session)
    if not result.agrees:
        first = result.differing_loan_ids[:SHOWN]
        raise BooksDiffer(
            f"business date {ctx.business_date.isoformat()}: {result.summary()}",
            loans=list(first),
            lines=[d.line_id for d in result.lines[:SHOWN]],
            differences=len(result.differences),
        )
    return StepResult(
        items=result.loans_checked + result.lines_checked,
        details={"loans": result.loans_checked, "lines": result.lines_checked, "differences": 0},
    )


STEP = EodStep(
    "servicing.reconcile", 80, check_reconciliation, "Loan and line balances agree with the journal"
)


def register_step() -> EodStep:
    """Add ``servicing.reconcile`` to the end of day (after the servicing steps, before the
    trial balance); registering again is a no-op."""
    return registry.register(STEP)
