"""Tables of loan servicing: credit lines, loans, instalments and loan transactions.

Amounts are ``BIGINT`` fen through ``ScaledInt`` (Decimal in memory); rates ``BIGINT`` at scale
1e-8. Balances kept on the loan row (outstanding principal, accrued interest) are caches of the
journal: the ledger is the book of record and ``reconcile`` compares the two.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from creditfactory.db.base import Base
from creditfactory.db.types import Money, Rate, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class CreditLine(Base):
    __tablename__ = "servicing_credit_line"
    __table_args__ = (
        Index("ix_servicing_credit_line_customer", "customer_id"),
        Index("ux_servicing_credit_line_application", "application_id", unique=True),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(20))
    product_code: Mapped[str] = mapped_column(String(32))
    limit_amount: Mapped[Decimal] = mapped_column(Money)
    used_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    """Principal drawn and not yet repaid: the available limit is ``limit - used``."""
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    status: Mapped[str] = mapped_column(String(16))
    opened_date: Mapped[date] = mapped_column(Date())
    expiry_date: Mapped[date] = mapped_column(Date())
    closed_date: Mapped[date | None] = mapped_column(Date())
    application_id: Mapped[int | None] = mapped_column(BigInteger())
    """The origination application whose accepted contract opened the line (one line each)."""
    term_months: Mapped[int | None] = mapped_column(Integer)
    """The contract's term for a drawdown, when the line was opened from one."""
    repayment_method: Mapped[str | None] = mapped_column(String(24))
    """The contract's repayment method: a drawdown that names none uses it."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __mapper_args__ = {"version_id_col": version}


class Product(Base):
    """A loan product as defined (YAML or API); loans copy the terms they were made on."""

    __tablename__ = "servicing_product"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[str] = mapped_column(Text())
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Loan(Base):
    """One drawdown (or one term loan) with its own schedule."""

    __tablename__ = "servicing_loan"
    __table_args__ = (
        Index("ix_servicing_loan_customer", "customer_id"),
        # Only columns a day of servicing does not change (status rarely), so that the end of day's
        # updates stay on the page (PostgreSQL: fillfactor 50, set by the migration).
        Index("ix_servicing_loan_status", "status"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("servicing_credit_line.id"))
    customer_id: Mapped[str] = mapped_column(String(20))
    product_code: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(24))
    day_count: Mapped[str] = mapped_column(String(16))
    rounding: Mapped[str] = mapped_column(String(16))
    principal: Mapped[Decimal] = mapped_column(Money)
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    penalty_rate: Mapped[Decimal] = mapped_column(Rate)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    term: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date())
    maturity_date: Mapped[date] = mapped_column(Date())
    status: Mapped[str] = mapped_column(String(16))
    outstanding_principal: Mapped[Decimal] = mapped_column(Money)
    interest_receivable: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    penalty_receivable: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    accrual_carry: Mapped[int] = mapped_column(BigInteger(), default=0)
    """Interest accrued but not yet posted, in 1e-8 fen (posted amounts are whole fen)."""
    penalty_carry: Mapped[int] = mapped_column(BigInteger(), default=0)
    last_penalty_date: Mapped[date | None] = mapped_column(Date())
    last_accrued_date: Mapped[date] = mapped_column(Date())
    """Watermark: interest is accrued up to and including this date."""
    dpd: Mapped[int] = mapped_column(Integer, default=0)
    oldest_unpaid_due: Mapped[date | None] = mapped_column(Date())
    tier: Mapped[str] = mapped_column(String(16), default="normal")
    current_since: Mapped[date | None] = mapped_column(Date())
    """Months current count the month ends after this date: the day before the loan was drawn,
    or the last month end at which it was past due (see ``model.months_current``)."""
    last_classified_date: Mapped[date | None] = mapped_column(Date())
    closed_date: Mapped[date | None] = mapped_column(Date())
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Instalment(Base):
    __tablename__ = "servicing_instalment"
    __table_args__ = (
        UniqueConstraint("loan_id", "number"),
        Index("ix_servicing_instalment_due", "due_date", "status"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("servicing_loan.id"))
    number: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date())
    due_date: Mapped[date] = mapped_column(Date())
    days: Mapped[int] = mapped_column(Integer)
    """Days of the period under the loan's day count (30 for a full month under 30/360)."""
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    paid_principal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    paid_interest: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(16))
    """pending (not yet due), due, overdue, paid."""
    paid_date: Mapped[date | None] = mapped_column(Date())


class LoanTransaction(Base):
    __tablename__ = "servicing_transaction"
    __table_args__ = (Index("ix_servicing_transaction_loan", "loan_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("servicing_loan.id"))
    kind: Mapped[str] = mapped_column(String(24))
    value_date: Mapped[date] = mapped_column(Date())
    amount: Mapped[Decimal] = mapped_column(Money)
    principal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    interest: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    penalty: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    excess: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: a repayment's prepayment choice as its request gave it (None: the product's)
    prepayment: Mapped[str | None] = mapped_column(String(24))
