"""Request and response models of the origination API.

Amounts travel as JSON strings with two decimal places (``"20000.00"``); a request amount is
refused as a JSON number, because a binary float may already have lost the fen the caller
meant. Rates are strings (``"0.0435"``), dates and times ISO. Free text may not hold control
characters; ids and codes keep to their patterns, so that nothing a client sends can reach the
database in a form it refuses.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from creditfactory.origination.model import Channel, ConsentKind, Purpose, Relation

#: Digits an amount may have in all (two after the point): up to 9,999,999,999,999.99.
AMOUNT_DIGITS = 15
#: The largest id a BIGINT column holds.
MAX_ID = 2**63 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _not_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f'send amounts as text such as "{value:.2f}", not as a JSON number')
    return value


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("may not contain control characters")
    return value


def _fen_text(value: Decimal) -> str:
    return f"{value:.2f}"


def _rate_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


#: A request amount: text (or an integer), positive, at most two decimal places.
AmountIn = Annotated[
    Decimal,
    BeforeValidator(_not_float),
    Field(gt=0, max_digits=AMOUNT_DIGITS, decimal_places=2, allow_inf_nan=False, examples=["20000.00"]),
]
IncomeIn = Annotated[
    Decimal,
    BeforeValidator(_not_float),
    Field(ge=0, max_digits=AMOUNT_DIGITS, decimal_places=2, allow_inf_nan=False, examples=["96000.00"]),
]
Amount = Annotated[Decimal, PlainSerializer(_fen_text, return_type=str)]
Rate = Annotated[Decimal, PlainSerializer(_rate_text, return_type=str)]
Text = Annotated[str, AfterValidator(_no_control)]

CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,20}$"
CustomerId = Annotated[str, Field(pattern=CUSTOMER_ID_PATTERN, examples=["C0000001"])]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


def _no_zone(value: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address:
    # "fe80::1%eth0": a zone names an interface of the sending machine, not where the request
    # came from, and would make one address count as many in the velocity checks
    if isinstance(value, IPv6Address) and value.scope_id is not None:
        raise ValueError("send the IPv6 address without a zone (the part from '%')")
    return value


IpAddress = Annotated[IPv4Address | IPv6Address, AfterValidator(_no_zone)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ requests


class DeviceIn(_In):
    fingerprint: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    os: Text = Field(min_length=1, max_length=32, examples=["iOS 17.5"])
    model: Text = Field(min_length=1, max_length=64, examples=["iPhone15,2"])
    is_emulator: bool = False
    is_rooted: bool = False


class LocationIn(_In):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class ContactIn(_In):
    name: Text = Field(min_length=1, max_length=32)
    phone: Text = Field(min_length=1, max_length=20, examples=["13912345678"])
    relation: Relation


class ApplicantIn(_In):
    """Who applies, as they state it: checked (ID check character, region, birth date, age,
    mobile format) and kept only as tokens and ciphertext."""

    name: Text = Field(min_length=1, max_length=32)
    id_number: Text = Field(min_length=1, max_length=32, examples=["330521198005170117"])
    phone: Text = Field(min_length=1, max_length=20, examples=["13812345678"])


class ApplicationCreate(_In):
    customer_id: CustomerId
    channel: Channel
    product_code: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$", examples=["consumer_equal_installment"])
    amount: AmountIn
    term_months: int = Field(ge=1, le=600)
    purpose: Purpose
    repayment_method: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{0,23}$")
    declared_annual_income: IncomeIn | None = None
    offer_version_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The whitelist version of the offer shown, if any."
    )
    applicant: ApplicantIn
    device: DeviceIn
    ip: IpAddress
    location: LocationIn | None = None
    contacts: list[ContactIn] = Field(default_factory=list, max_length=10)


class ContractAccept(_In):
    sha256: Sha256 = Field(description="The SHA-256 of the contract text the customer was shown.")
    channel: Channel
    ip: IpAddress
    device: DeviceIn


class ConsentCreate(_In):
    kind: ConsentKind
    version: str = Field(pattern=r"^v[0-9]{1,4}$", examples=["v1"])
    language: Literal["zh", "en"]
    text_sha256: Sha256 = Field(description="The SHA-256 of the text the customer agreed to.")
    channel: Channel
    ip: IpAddress | None = None


class ConsentWithdraw(_In):
    channel: Channel
    ip: IpAddress | None = None


# ------------------------------------------------------------------ responses


class ReasonText(_Out):
    zh: str
    en: str


class OfferRead(_Out):
    version_id: int
    limit: Amount
    annual_rate: Rate
    expiry_date: date | None


class DecisionRead(_Out):
    outcome: str
    limit: Amount | None
    annual_rate: Rate | None
    reasons: list[ReasonText]
    """What the customer is told (texts, not internal codes)."""
    decided_at: datetime
    approval_expiry_date: date | None


class ContractAcceptanceRead(_Out):
    template: str
    sha256: str
    accepted_at: datetime
    channel: str


class TimelineEntryRead(_Out):
    event: str
    status: str
    label_zh: str
    label_en: str
    business_date: date
    at: datetime
    actor: str | None = None
    reason: str | None = None
    """Actor and reason are shown to staff only."""


class ApplicantRead(_Out):
    name: str
    id_number: str
    phone: str
    masked: bool


class ReviewRead(_Out):
    """What a reviewer sees beyond the customer's view (personal data masked by role, audited)."""

    decision_id: str | None
    decided_by: str | None
    reason_codes: list[str]
    applicant: ApplicantRead
    age: int
    known_customer: bool
    id_matches_record: bool | None
    phone_matches_record: bool | None
    name_matches_record: bool | None
    device: dict[str, str | bool]
    ip: str
    location: dict[str, float] | None
    contacts: int
    velocity: dict[str, int]


class ApplicationRead(_Out):
    id: int
    customer_id: str
    status: str
    status_label_zh: str
    status_label_en: str
    channel: str
    product_code: str
    amount: Amount
    term_months: int
    purpose: str
    purpose_label_zh: str
    purpose_label_en: str
    repayment_method: str
    declared_annual_income: Amount | None
    offer: OfferRead | None
    business_date: date
    submitted_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntryRead]
    decision: DecisionRead | None
    contract: ContractAcceptanceRead | None
    line_id: int | None
    review: ReviewRead | None = None


class ApplicationSummaryRead(_Out):
    id: int
    customer_id: str
    status: str
    status_label_zh: str
    status_label_en: str
    channel: str
    product_code: str
    amount: Amount
    term_months: int
    offer_version_id: int | None
    submitted_at: datetime
    updated_at: datetime


class ApplicationPage(_Out):
    items: list[ApplicationSummaryRead]
    next_after_id: int | None
    """Pass as ``after_id`` for the next page; ``None`` on the last page."""


class ContractRead(_Out):
    application_id: int
    template: str
    text: str
    sha256: str
    signed: bool


class ConsentRead(_Out):
    kind: str
    label_zh: str
    label_en: str
    status: str
    """``given``, ``withdrawn``, or ``never``."""
    required_for_application: bool
    version: str | None
    language: str | None
    text_sha256: str | None
    channel: str | None
    at: datetime | None


class ConsentsRead(_Out):
    customer_id: str
    consents: list[ConsentRead]


class ConsentWithdrawRead(_Out):
    consent: ConsentRead
    cancelled_application_id: int | None


class ConsentTextRead(_Out):
    kind: str
    label_zh: str
    label_en: str
    version: str
    language: str
    text: str
    sha256: str
