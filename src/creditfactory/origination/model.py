"""Pure rules of origination: the application's lifecycle, code lists, product and offer checks.

The application is an explicit state machine: one status enum, one event enum, one transition
table, a dry run for the console, and :class:`IllegalTransition` naming what is allowed::

    (new)      --submit-->         submitted
    submitted  --approve-->        approved
    submitted  --decline-->        declined                     (final)
    submitted  --refer-->          referred                     (a person decides later)
    referred   --approve-->        approved
    referred   --decline-->        declined                     (final)
    approved   --sign_contract-->  contract_signed
    contract_signed --open_line--> line_opened                  (final)
    submitted | referred | approved  --withdraw--> withdrawn    (final: by the customer)
    submitted | referred | approved  --cancel-->   cancelled    (final: e.g. a consent withdrawn)
    approved   --expire-->         expired                      (final: not signed in time)

Every move becomes a :class:`Transition` (actor, business date, reason) that the service stores
and announces under a dotted event name (``origination.application.approved``,
``origination.contract.accepted`` ...). Nothing here touches a database or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from creditfactory.errors import Conflict, InvalidInput

__all__ = [
    "APPLICATION",
    "IN_PROGRESS",
    "MIN_AGE",
    "REQUIRED_CONSENTS",
    "AmountAboveOffer",
    "AmountOutsideProduct",
    "ApplicationEvent",
    "ApplicationStatus",
    "ApplicantUnderAge",
    "Channel",
    "ConsentAction",
    "ConsentKind",
    "DecisionOutsideProduct",
    "DryRun",
    "IllegalTransition",
    "MethodNotOffered",
    "Outcome",
    "ProductTerms",
    "Purpose",
    "Relation",
    "TermNotOffered",
    "Transition",
    "check_age",
    "check_approval",
    "check_request",
    "dry_run",
    "yuan_in_words",
    "next_status",
    "submission",
]

_FEN = Decimal("0.01")


# ------------------------------------------------------------------ code lists


class Channel(StrEnum):
    """Where the customer applied or consented."""

    APP = "app"
    """The bank's mobile banking app."""
    WECHAT = "wechat"
    """WeChat banking (official account or mini programme)."""
    H5 = "h5"
    """A web page opened from a link (SMS, QR code)."""
    BRANCH = "branch"
    """At a branch, entered by staff with the customer present."""
    PARTNER = "partner"
    """An embedded-lending partner platform."""


class Purpose(StrEnum):
    """What the money is for (the code list a customer picks from).

    Buying a home, securities, futures or wealth products and paying other loans are not
    purposes of a consumer or operating loan and are therefore not on the list.
    """

    DAILY_CONSUMPTION = "daily_consumption"
    HOME_RENOVATION = "home_renovation"
    DURABLE_GOODS = "durable_goods"
    EDUCATION = "education"
    MEDICAL = "medical"
    TRAVEL = "travel"
    FARMING = "farming"
    BUSINESS_OPERATION = "business_operation"

    @property
    def label_zh(self) -> str:
        return _PURPOSE_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _PURPOSE_LABELS[self][1]


_PURPOSE_LABELS: Mapping[Purpose, tuple[str, str]] = {
    Purpose.DAILY_CONSUMPTION: ("日常消费", "Everyday spending"),
    Purpose.HOME_RENOVATION: ("家居装修", "Home renovation"),
    Purpose.DURABLE_GOODS: ("耐用消费品", "Durable goods"),
    Purpose.EDUCATION: ("教育培训", "Education"),
    Purpose.MEDICAL: ("医疗健康", "Medical care"),
    Purpose.TRAVEL: ("旅游出行", "Travel"),
    Purpose.FARMING: ("农业生产", "Farming"),
    Purpose.BUSINESS_OPERATION: ("个体经营", "Running a small business"),
}


class Relation(StrEnum):
    """How a contact the customer gives is related to them."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    RELATIVE = "relative"
    FRIEND = "friend"
    COLLEAGUE = "colleague"
    OTHER = "other"


class ConsentKind(StrEnum):
    BUREAU_INQUIRY = "bureau_inquiry"
    """征信查询授权: the bank may query the credit reference centre about the customer."""
    PERSONAL_INFORMATION = "personal_information"
    """个人信息使用授权: the bank may process the personal information an application needs."""
    MARKETING = "marketing"
    """营销推广授权: the bank may contact the customer with offers."""

    @property
    def label_zh(self) -> str:
        return _CONSENT_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _CONSENT_LABELS[self][1]


_CONSENT_LABELS: Mapping[ConsentKind, tuple[str, str]] = {
    ConsentKind.BUREAU_INQUIRY: ("征信查询授权", "Credit bureau inquiry authorisation"),
    ConsentKind.PERSONAL_INFORMATION: ("个人信息使用授权", "Personal information use authorisation"),
    ConsentKind.MARKETING: ("营销推广授权", "Marketing consent"),
}

#: Consents an application cannot go on without: submitting needs them given, and withdrawing
#: one cancels an application in progress.
REQUIRED_CONSENTS: tuple[ConsentKind, ...] = (ConsentKind.BUREAU_INQUIRY, ConsentKind.PERSONAL_INFORMATION)


class ConsentAction(StrEnum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


class Outcome(StrEnum):
    """A decision's outcome as recorded on an application."""

    APPROVE = "approve"
    DECLINE = "decline"
    REFER = "refer"


# ------------------------------------------------------------------ the state machine


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    DECLINED = "declined"
    REFERRED = "referred"
    CONTRACT_SIGNED = "contract_signed"
    LINE_OPENED = "line_opened"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def label_zh(self) -> str:
        return _STATUS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _STATUS_LABELS[self][1]

    @property
    def final(self) -> bool:
        return not allowed_events(self)


_STATUS_LABELS: Mapping[ApplicationStatus, tuple[str, str]] = {
    ApplicationStatus.SUBMITTED: ("已提交，审批中", "Submitted, being decided"),
    ApplicationStatus.APPROVED: ("审批通过，待签约", "Approved, waiting for your signature"),
    ApplicationStatus.DECLINED: ("未通过", "Declined"),
    ApplicationStatus.REFERRED: ("人工审核中", "Under review by our staff"),
    ApplicationStatus.CONTRACT_SIGNED: ("已签约，额度开通中", "Contract signed, opening your credit line"),
    ApplicationStatus.LINE_OPENED: ("额度已开通", "Credit line opened"),
    ApplicationStatus.WITHDRAWN: ("已撤回", "Withdrawn"),
    ApplicationStatus.CANCELLED: ("已取消", "Cancelled"),
    ApplicationStatus.EXPIRED: ("已过期", "Expired"),
}

#: Statuses in which the customer has an application in progress: a second one is refused.
IN_PROGRESS: frozenset[ApplicationStatus] = frozenset(
    {
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.REFERRED,
        ApplicationStatus.APPROVED,
        ApplicationStatus.CONTRACT_SIGNED,
    }
)


class ApplicationEvent(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    DECLINE = "decline"
    REFER = "refer"
    SIGN_CONTRACT = "sign_contract"
    OPEN_LINE = "open_line"
    WITHDRAW = "withdraw"
    CANCEL = "cancel"
    EXPIRE = "expire"


_S, _E = ApplicationStatus, ApplicationEvent

TRANSITIONS: Mapping[tuple[ApplicationStatus, ApplicationEvent], ApplicationStatus] = {
    (_S.SUBMITTED, _E.APPROVE): _S.APPROVED,
    (_S.SUBMITTED, _E.DECLINE): _S.DECLINED,
    (_S.SUBMITTED, _E.REFER): _S.REFERRED,
    (_S.REFERRED, _E.APPROVE): _S.APPROVED,
    (_S.REFERRED, _E.DECLINE): _S.DECLINED,
    (_S.APPROVED, _E.SIGN_CONTRACT): _S.CONTRACT_SIGNED,
    (_S.CONTRACT_SIGNED, _E.OPEN_LINE): _S.LINE_OPENED,
    (_S.SUBMITTED, _E.WITHDRAW): _S.WITHDRAWN,
    (_S.REFERRED, _E.WITHDRAW): _S.WITHDRAWN,
    (_S.APPROVED, _E.WITHDRAW): _S.WITHDRAWN,
    (_S.SUBMITTED, _E.CANCEL): _S.CANCELLED,
    (_S.REFERRED, _E.CANCEL): _S.CANCELLED,
    (_S.APPROVED, _E.CANCEL): _S.CANCELLED,
    (_S.APPROVED, _E.EXPIRE): _S.EXPIRED,
}

#: The dotted event each move emits through the outbox.
EMITTED: Mapping[ApplicationEvent, str] = {
    _E.SUBMIT: "origination.application.submitted",
    _E.APPROVE: "origination.application.approved",
    _E.DECLINE: "origination.application.declined",
    _E.REFER: "origination.application.referred",
    _E.SIGN_CONTRACT: "origination.contract.accepted",
    _E.OPEN_LINE: "origination.application.line_opened",
    _E.WITHDRAW: "origination.application.withdrawn",
    _E.CANCEL: "origination.application.cancelled",
    _E.EXPIRE: "origination.application.expired",
}

#: The event that records each decision outcome.
OUTCOME_EVENTS: Mapping[Outcome, ApplicationEvent] = {
    Outcome.APPROVE: _E.APPROVE,
    Outcome.DECLINE: _E.DECLINE,
    Outcome.REFER: _E.REFER,
}


class IllegalTransition(Conflict):
    """An event the application's current status does not allow."""

    code = "illegal_transition"
    title = "Illegal application status change"

    def __init__(
        self, state: ApplicationStatus, event: ApplicationEvent, allowed: tuple[ApplicationEvent, ...]
    ) -> None:
        allowed_text = ", ".join(e.value for e in allowed) or "nothing (final status)"
        super().__init__(
            f"cannot {event.value.replace('_', ' ')} an application that is {state.value}; "
            f"from {state.value} the allowed events are: {allowed_text}",
            machine="application",
            state=state.value,
            event=event.value,
            allowed=[e.value for e in allowed],
        )
        self.state = state
        self.event = event


def allowed_events(state: ApplicationStatus) -> tuple[ApplicationEvent, ...]:
    """The events the table allows from ``state``, in declaration order."""
    return tuple(e for e in ApplicationEvent if (state, e) in TRANSITIONS)


def next_status(state: ApplicationStatus, event: ApplicationEvent) -> ApplicationStatus:
    """The status after ``event``; raises :class:`IllegalTransition` if the table has no such move."""
    if not isinstance(state, ApplicationStatus):
        raise TypeError(f"application status must be an ApplicationStatus, got {state!r}")
    if not isinstance(event, ApplicationEvent):
        raise TypeError(f"application event must be an ApplicationEvent, got {event!r}")
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event, allowed_events(state)) from None


@dataclass(frozen=True, slots=True)
class DryRun:
    """What an event would do from a status: the target status, or why it is refused."""

    state: ApplicationStatus
    event: ApplicationEvent
    allowed: bool
    target: ApplicationStatus | None
    message: str


def dry_run(state: ApplicationStatus, event: ApplicationEvent) -> DryRun:
    """What ``event`` would do from ``state``, without raising (for the console)."""
    try:
        target = next_status(state, event)
    except IllegalTransition as exc:
        return DryRun(state, event, False, None, exc.message)
    return DryRun(state, event, True, target, f"{event.value}: {state.value} → {target.value}")


@dataclass(frozen=True, slots=True)
class Transition:
    """A move that happened: from (``None`` for the submission), to, event, who, when, why."""

    source: ApplicationStatus | None
    target: ApplicationStatus
    event: ApplicationEvent
    actor: str
    business_date: date
    reason: str
    event_name: str


def _checked(actor: str, business_date: date) -> None:
    if not actor:
        raise ValueError("a transition needs an actor")
    if isinstance(business_date, datetime) or not isinstance(business_date, date):
        raise TypeError(f"business_date must be a datetime.date, got {type(business_date).__name__}")


def apply(
    state: ApplicationStatus, event: ApplicationEvent, *, actor: str, business_date: date, reason: str = ""
) -> Transition:
    """The :class:`Transition` record of ``event`` from ``state`` (raises if illegal)."""
    _checked(actor, business_date)
    if event is ApplicationEvent.SUBMIT:
        raise IllegalTransition(state, event, allowed_events(state))
    target = next_status(state, event)
    return Transition(state, target, event, actor, business_date, reason, EMITTED[event])


def submission(*, actor: str, business_date: date, reason: str = "") -> Transition:
    """The first transition of every application: into ``submitted``."""
    _checked(actor, business_date)
    return Transition(
        None,
        ApplicationStatus.SUBMITTED,
        ApplicationEvent.SUBMIT,
        actor,
        business_date,
        reason,
        EMITTED[ApplicationEvent.SUBMIT],
    )


APPLICATION = TRANSITIONS
"""The transition table, under the name the documentation uses."""


# ------------------------------------------------------------------ products and offers


@dataclass(frozen=True, slots=True)
class ProductTerms:
    """What origination needs to know about a loan product (from the product catalogue port).

    ``min_amount``..``max_amount`` bound what a customer may ask for; for a revolving product
    the upper bound is the line limit. ``terms`` are the terms in months it offers,
    ``methods`` its repayment methods (codes, with Chinese labels in ``method_labels``), and
    ``min_annual_rate``..``max_annual_rate`` the prices a decision may set.
    """

    code: str
    name: str
    min_amount: Decimal
    max_amount: Decimal
    terms: tuple[int, ...]
    methods: tuple[str, ...]
    min_annual_rate: Decimal
    max_annual_rate: Decimal
    list_annual_rate: Decimal
    revolving: bool = False
    method_labels: Mapping[str, str] = field(default_factory=dict)
    penalty_annual_rate: Decimal | None = None
    """The rate on overdue principal; ``None``: 1.5 times the loan's rate."""
    day_count: str = "actual/360"

    def __post_init__(self) -> None:
        if not (Decimal(0) < self.min_amount <= self.max_amount):
            raise ValueError(f"product {self.code}: need 0 < min_amount <= max_amount")
        if not self.terms or not self.methods:
            raise ValueError(f"product {self.code}: needs at least one term and one method")
        if not (Decimal(0) <= self.min_annual_rate <= self.max_annual_rate < Decimal(1)):
            raise ValueError(f"product {self.code}: need 0 <= min_annual_rate <= max_annual_rate < 1")


class AmountOutsideProduct(InvalidInput):
    code = "amount_outside_product"
    title = "Amount outside the product's bounds"


class TermNotOffered(InvalidInput):
    code = "term_not_offered"
    title = "Term not offered by the product"


class MethodNotOffered(InvalidInput):
    code = "method_not_offered"
    title = "Repayment method not offered by the product"


class AmountAboveOffer(InvalidInput):
    code = "amount_above_offer"
    title = "Amount above the pre-approved offer"


class DecisionOutsideProduct(InvalidInput):
    code = "decision_outside_product"
    title = "Decision outside the product's bounds"


class ApplicantUnderAge(InvalidInput):
    code = "applicant_under_age"
    title = "Applicant under the age of full capacity"


#: Age of full civil capacity: younger applicants cannot sign a loan contract.
MIN_AGE = 18


def _terms_text(terms: tuple[int, ...]) -> str:
    ordered = sorted(terms)
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]} to {ordered[-1]} months"
    return ", ".join(str(t) for t in ordered) + " months"


def check_request(
    product: ProductTerms,
    *,
    amount: Decimal,
    term: int,
    method: str,
    offer_limit: Decimal | None = None,
) -> None:
    """Raise unless the amount (on the fen), term and method fit the product and the offer."""
    if isinstance(amount, float) or not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, got {type(amount).__name__}")
    if not amount.is_finite() or amount != amount.quantize(_FEN):
        raise InvalidInput(f"amount {amount} is not a whole number of fen", field="amount")
    if not product.min_amount <= amount <= product.max_amount:
        raise AmountOutsideProduct(
            f"amount {amount} is outside product {product.code}'s bounds "
            f"{product.min_amount}..{product.max_amount}",
            field="amount",
            min_amount=str(product.min_amount),
            max_amount=str(product.max_amount),
        )
    if term not in product.terms:
        raise TermNotOffered(
            f"product {product.code} does not offer a term of {term} months; it offers {_terms_text(product.terms)}",
            field="term_months",
            terms=sorted(product.terms),
        )
    if method not in product.methods:
        raise MethodNotOffered(
            f"product {product.code} does not offer repayment by {method}; it offers {', '.join(product.methods)}",
            field="repayment_method",
            methods=list(product.methods),
        )
    if offer_limit is not None and amount > offer_limit:
        raise AmountAboveOffer(
            f"amount {amount} is above the pre-approved limit of {offer_limit}",
            field="amount",
            offer_limit=str(offer_limit),
        )


def check_approval(product: ProductTerms, *, limit: Decimal, annual_rate: Decimal) -> None:
    """Raise unless an approval's limit (on the fen) and price fit the product."""
    for name, value in (("limit", limit), ("annual_rate", annual_rate)):
        if isinstance(value, float) or not isinstance(value, Decimal) or not value.is_finite():
            raise DecisionOutsideProduct(f"{name} must be a finite Decimal, got {value!r}", field=name)
    if limit != limit.quantize(_FEN) or not product.min_amount <= limit <= product.max_amount:
        raise DecisionOutsideProduct(
            f"approved limit {limit} is not a fen amount within product {product.code}'s bounds "
            f"{product.min_amount}..{product.max_amount}",
            field="limit",
        )
    if not product.min_annual_rate <= annual_rate <= product.max_annual_rate:
        raise DecisionOutsideProduct(
            f"approved rate {annual_rate} is outside product {product.code}'s range "
            f"{product.min_annual_rate}..{product.max_annual_rate}",
            field="annual_rate",
        )
    if annual_rate.as_tuple().exponent < -8:  # type: ignore[operator]
        raise DecisionOutsideProduct(f"approved rate {annual_rate} has more than 8 decimal places")


def check_age(age: int) -> None:
    if age < MIN_AGE:
        raise ApplicantUnderAge(
            f"the applicant is {age} by the ID number; a loan contract needs an applicant of {MIN_AGE} or more",
            field="applicant.id_number",
            age=age,
        )


#: English names of the usual repayment methods (products give their Chinese labels).
METHOD_LABELS_EN: Mapping[str, str] = {
    "equal_installment": "equal monthly instalments of principal and interest",
    "equal_principal": "equal monthly principal with interest on the balance",
    "interest_only": "monthly interest, principal at maturity",
    "bullet": "principal and interest in one payment at maturity",
}


def method_label_en(code: str) -> str:
    return METHOD_LABELS_EN.get(code, code.replace("_", " "))


# ------------------------------------------------------------------ amounts in words

_DIGITS_ZH = "零壹贰叁肆伍陆柒捌玖"
_UNITS_ZH = ("", "拾", "佰", "仟")
_GROUPS_ZH = ("", "万", "亿", "万亿")


def _group_words(group: int) -> str:
    text = ""
    zero = False
    for pos in (3, 2, 1, 0):
        digit = group // 10**pos % 10
        if digit == 0:
            zero = zero or bool(text)
            continue
        if zero:
            text += "零"
            zero = False
        text += _DIGITS_ZH[digit] + _UNITS_ZH[pos]
    return text


def yuan_in_words(amount: Decimal) -> str:
    """An amount in yuan in capital Chinese numerals, as contracts and cheques write it
    (the rules of the PBOC's payment and settlement measures): ``Decimal("107000.53")`` is
    ``壹拾万柒仟元零伍角叁分``, ``Decimal("50000")`` is ``伍万元整``."""
    if isinstance(amount, float) or not isinstance(amount, Decimal) or not amount.is_finite():
        raise TypeError(f"amount must be a finite Decimal, got {amount!r}")
    if amount < 0 or amount != amount.quantize(_FEN):
        raise ValueError(f"amount {amount} must be a non-negative whole number of fen")
    fen_total = int(amount * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if yuan >= 10**16:
        raise ValueError(f"amount {amount} is too large to write in words")
    groups = []
    rest = yuan
    while rest:
        groups.append(rest % 10_000)
        rest //= 10_000
    text = ""
    pending_zero = False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            pending_zero = bool(text)
            continue
        if text and (pending_zero or group < 1000):
            text += "零"
        text += _group_words(group) + _GROUPS_ZH[index]
        pending_zero = False
    if not jiao and not fen:
        return (text or "零") + "元整"
    if text:
        text += "元"
        if yuan % 10 == 0 or not jiao:
            text += "零"
    if jiao:
        text += _DIGITS_ZH[jiao] + "角"
    if fen:
        text += _DIGITS_ZH[fen] + "分"
    return text
