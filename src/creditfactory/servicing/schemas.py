"""Request and response models of the servicing API.

Amounts travel as JSON strings with exactly two decimal places (``"12000.00"``); a request amount
must be positive with at most two places and is refused as a JSON number, because a binary float
may already have lost the fen the caller meant. Rates are strings too (``"0.0395"``), dates ISO.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from creditfactory.api.params import CUSTOMER_ID_MAX, MULTILINE_TEXT, PLAIN_TEXT, PRODUCT_CODE
from creditfactory.clock import DayCount
from creditfactory.money import from_minor, to_minor
from creditfactory.servicing.model import LoanProduct, ReamortiseOption, RepaymentMethod

__all__ = [
    "AMOUNT_DIGITS",
    "AllocationRead",
    "Amount",
    "AmountIn",
    "BalancesRead",
    "BucketRead",
    "DrawdownCreate",
    "EodReportRead",
    "EodRunCreate",
    "EodRunRead",
    "EodStatusRead",
    "EodStepRead",
    "InstalmentRead",
    "LineAction",
    "LineCreate",
    "LineRead",
    "LoanRead",
    "PayoffRead",
    "PortfolioRead",
    "ProductVersionRead",
    "RateText",
    "Ratio",
    "RepaymentCreate",
    "ScheduleInstalmentRead",
    "ScheduleRead",
    "ScheduleTotalsRead",
    "TierRead",
    "WriteOffCreate",
    "dump",
]

#: Digits an amount may have in all (two of them after the point): up to 9,999,999,999,999.99.
AMOUNT_DIGITS = 15


def _not_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f'send amounts as text such as "{value:.2f}", not as a JSON number')
    return value


def _fen_text(value: Decimal) -> str:
    # Exactly two places; an amount off the fen grid is a bug upstream and raises here.
    return str(from_minor(to_minor(value)))


def _rate_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _ratio_text(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


#: A request amount: text (or an integer), positive, at most two decimal places.
AmountIn = Annotated[
    Decimal,
    BeforeValidator(_not_float),
    Field(gt=0, max_digits=AMOUNT_DIGITS, decimal_places=2, examples=["12000.00"]),
]
#: A response amount: text with exactly two decimal places.
Amount = Annotated[Decimal, PlainSerializer(_fen_text, return_type=str, when_used="json")]
#: A response rate (annual fraction): text without trailing zeros, e.g. ``"0.0395"``.
RateText = Annotated[Decimal, PlainSerializer(_rate_text, return_type=str, when_used="json")]
#: A response ratio: text with four places, rounded half up (``"0.0123"`` is 1.23%).
Ratio = Annotated[Decimal, PlainSerializer(_ratio_text, return_type=str, when_used="json")]


# ------------------------------------------------------------------ products


class ProductVersionRead(BaseModel):
    """A product as defined, with the version the definition now has (it grows on each change)."""

    code: str
    version: int
    updated_at: datetime
    product: LoanProduct


# ------------------------------------------------------------------ the calculator


class ScheduleInstalmentRead(BaseModel):
    number: int
    start_date: date
    due_date: date
    days: int = Field(description="Days of the period under the day count (30 a month under 30/360).")
    principal: Amount
    interest: Amount
    total: Amount
    balance_after: Amount


class ScheduleTotalsRead(BaseModel):
    principal: Amount
    interest: Amount
    total: Amount


class ScheduleRead(BaseModel):
    principal: Amount
    annual_rate: RateText
    method: RepaymentMethod
    method_label: str = Field(description="The method's Chinese name, e.g. 等额本息.")
    day_count: DayCount
    start: date
    term: int
    level_instalment: Amount | None = Field(description="The equal instalment (等额本息 only).")
    instalments: list[ScheduleInstalmentRead]
    totals: ScheduleTotalsRead


# ------------------------------------------------------------------ credit lines


class LineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(max_length=CUSTOMER_ID_MAX, pattern=PLAIN_TEXT, examples=["C0000001"])
    product_code: str = Field(max_length=64, pattern=PRODUCT_CODE, examples=["farmer_revolving_line"])
    limit: AmountIn
    term_months: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="The contract's term in months; a drawdown that names no term uses it.",
        examples=[12],
    )
    repayment_method: RepaymentMethod | None = Field(
        default=None, description="The contract's repayment method; a drawdown that names none uses it."
    )


class LineAction(StrEnum):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CLOSE = "close"


class LineRead(BaseModel):
    id: int
    customer_id: str
    product_code: str
    limit: Amount
    used: Amount = Field(description="Principal drawn and not yet repaid.")
    available: Amount = Field(description="What may still be drawn: limit less used.")
    annual_rate: RateText
    status: str
    opened_date: date
    expiry_date: date
    closed_date: date | None
    term_months: int | None = Field(default=None, description="The contract's term, if it set one.")
    repayment_method: RepaymentMethod | None = Field(
        default=None, description="The contract's repayment method, if it set one."
    )


# ------------------------------------------------------------------ loans


class DrawdownCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountIn
    term: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="Number of monthly instalments (default: the line's contract term).",
        examples=[12],
    )
    method: RepaymentMethod | None = Field(
        default=None,
        description="Repayment method (default: the line's contract method, else the product's first).",
    )


class InstalmentRead(BaseModel):
    number: int
    start_date: date
    due_date: date
    days: int
    principal: Amount
    interest: Amount
    total: Amount
    paid_principal: Amount
    paid_interest: Amount
    status: str = Field(description="pending, due, overdue or paid.")
    paid_date: date | None


class BalancesRead(BaseModel):
    principal: Amount = Field(description="Principal outstanding.")
    interest: Amount = Field(description="Interest accrued and not yet paid.")
    penalty: Amount = Field(description="Penalty interest accrued and not yet paid.")


class LoanRead(BaseModel):
    id: int
    line_id: int | None
    customer_id: str
    product_code: str
    method: RepaymentMethod
    method_label: str
    day_count: DayCount
    principal: Amount
    annual_rate: RateText
    penalty_rate: RateText
    term: int
    start_date: date
    maturity_date: date
    status: str
    balances: BalancesRead
    dpd: int = Field(description="Days past due.")
    bucket: str = Field(description="DPD bucket: current, 1-30, 31-60, 61-90, 91-180, 181+.")
    tier: str = Field(description="Five-tier class: normal, special_mention, substandard, doubtful, loss.")
    tier_label: str = Field(description="The class's Chinese name: 正常, 关注, 次级, 可疑, 损失.")
    closed_date: date | None
    instalments: list[InstalmentRead]


class PayoffRead(BaseModel):
    loan_id: int
    status: str
    amount: Amount = Field(description="What settles the loan today.")
    balances: BalancesRead


class RepaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: AmountIn
    prepayment: ReamortiseOption | None = Field(
        default=None,
        description="What an early partial repayment changes: keep_instalment (the term shortens) or "
        "keep_term (the instalment falls); default: the product's choice",
    )


class AllocationRead(BaseModel):
    """How a repayment was applied: the parts always add up to ``amount``."""

    loan_id: int
    transaction_id: int
    value_date: date
    amount: Amount
    principal: Amount
    interest: Amount
    penalty: Amount
    excess: Amount = Field(description="What no amount owed could take (an overpayment).")
    settled: bool
    loan_status: str
    outstanding_principal: Amount


class WriteOffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=500, pattern=MULTILINE_TEXT, examples=["uncollectable after litigation"])


# ------------------------------------------------------------------ portfolio


class TierRead(BaseModel):
    tier: str
    label: str
    loans: int
    principal: Amount


class BucketRead(BaseModel):
    bucket: str
    loans: int
    principal: Amount


class PortfolioRead(BaseModel):
    principal: Amount = Field(description="Principal outstanding of live (active and overdue) loans.")
    npl_ratio: Ratio = Field(
        description='Substandard, doubtful and loss principal over all principal, e.g. "0.0123".'
    )
    by_tier: list[TierRead]
    by_bucket: list[BucketRead]


# ------------------------------------------------------------------ end of day


class EodRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_date: date | None = Field(
        default=None,
        description="The open business date to close (default: it). A date already closed reports "
        "that there is nothing to do.",
    )


class EodStepRead(BaseModel):
    """One step of an end of day; what the step reports about its work follows as extra fields."""

    model_config = ConfigDict(extra="allow")

    name: str
    status: str
    items: int
    failed: int
    seconds: float


class EodReportRead(BaseModel):
    business_date: date
    next_date: date | None = Field(description="The business date now open; null when nothing ran.")
    already_closed: bool
    steps: list[EodStepRead]


class EodRunRead(BaseModel):
    name: str
    status: str
    attempts: int
    items: int
    failed: int
    seconds: float
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class EodStatusRead(BaseModel):
    business_date: date
    steps: list[EodRunRead]


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a response model (amounts as text), as the command log stores it."""
    return model.model_dump(mode="json")
