"""Use cases of origination: submit, withdraw, cancel, decide, sign, open, expire; and the reads.

Every change of an application's status goes through :func:`move`, which asks the state
machine in :mod:`.model` for the transition (refusing illegal moves), stores it in
``origination_application_event`` and appends the dotted event to the outbox in the same
transaction. The whitelist entry of the customer follows the application through the
whitelist's public API. Services flush; the boundary commits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditfactory import contract, whitelist
from creditfactory.db.base import write_changes
from creditfactory.db.reads import together
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Conflict, InvalidInput, NotFound
from creditfactory.events import Event, append
from creditfactory.jobs import BusinessDateNotOpen, current_business_date
from creditfactory.origination import store
from creditfactory.origination.model import (
    IN_PROGRESS,
    OUTCOME_EVENTS,
    REQUIRED_CONSENTS,
    ApplicationEvent,
    ApplicationStatus,
    Channel,
    ConsentAction,
    ConsentKind,
    Outcome,
    ProductTerms,
    Purpose,
    Relation,
    Transition,
    apply,
    check_age,
    check_approval,
    check_request,
    submission,
)
from creditfactory.origination.ports import ProductCatalogue
from creditfactory.origination.store import Application
from creditfactory.security import idcard, masking, phone
from creditfactory.security.audit import record_access
from creditfactory.security.pii import PiiVault
from creditfactory.security.roles import Permission, Principal, require

#: Days an approval may be signed, counted from the business date of the decision.
APPROVAL_VALID_DAYS = 30

#: The velocity windows of :func:`velocity`.
VELOCITY_WINDOWS: Mapping[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "30d": timedelta(days=30),
}

#: What a customer is told when a decision gives no texts of its own.
DEFAULT_CUSTOMER_REASONS: Mapping[Outcome, tuple[str, str]] = {
    Outcome.DECLINE: (
        "经综合评估，您的申请暂未通过。",
        "Having considered your application as a whole, we cannot approve it at this time.",
    ),
    Outcome.REFER: (
        "您的申请需要人工审核，我们会尽快处理并通知您。",
        "Your application needs a review by our staff; we will tell you as soon as it is decided.",
    ),
}


# ------------------------------------------------------------------ errors


class ApplicationNotFound(NotFound):
    code = "application_not_found"
    title = "Application not found"


class ApplicationInProgress(Conflict):
    code = "application_in_progress"
    title = "Another application is in progress"


class ConsentRequired(Conflict):
    code = "consent_required"
    title = "A required consent is missing or withdrawn"


class UnknownProduct(InvalidInput):
    code = "unknown_product"
    title = "Unknown loan product"


class OfferNotCurrent(Conflict):
    code = "offer_not_current"
    title = "The offer applied for is not the customer's current offer"


class ApplicationChanged(Conflict):
    code = "application_changed"
    title = "The application was changed by another request"


class DecisionConflict(Conflict):
    code = "decision_conflict"
    title = "The decision contradicts the one recorded under the same id"


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class Device:
    fingerprint: str
    os: str
    model: str
    is_emulator: bool = False
    is_rooted: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    phone: str
    relation: Relation


@dataclass(frozen=True, slots=True)
class Applicant:
    """The identity the applicant gives: name, ID number and mobile number (in clear, in memory)."""

    name: str
    id_number: str
    phone: str

    def __repr__(self) -> str:  # personal data stays out of logs and tracebacks
        return "Applicant(<personal data>)"


@dataclass(frozen=True, slots=True)
class ApplicationRequest:
    customer_id: str
    channel: Channel
    product_code: str
    amount: Decimal
    term_months: int
    purpose: Purpose
    applicant: Applicant
    device: Device
    ip: str
    repayment_method: str | None = None
    declared_annual_income: Decimal | None = None
    offer_version_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    contacts: tuple[Contact, ...] = ()


# ------------------------------------------------------------------ views


@dataclass(frozen=True, slots=True)
class OfferTerms:
    version_id: int
    limit: Decimal
    annual_rate: Decimal
    expiry_date: date | None


@dataclass(frozen=True, slots=True)
class DecisionView:
    decision_id: str
    outcome: Outcome
    limit: Decimal | None
    annual_rate: Decimal | None
    reasons: tuple[str, ...]
    customer_reasons: tuple[tuple[str, str], ...]
    decided_by: str
    decided_at: datetime
    decision_date: date
    approval_expiry_date: date | None


@dataclass(frozen=True, slots=True)
class ContractAcceptance:
    template: str
    sha256: str
    accepted_at: datetime
    channel: Channel
    ip: str
    device: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """An application as the other domains and the edges see it (no personal data in clear)."""

    id: int
    customer_id: str
    status: ApplicationStatus
    channel: Channel
    product_code: str
    amount: Decimal
    term_months: int
    purpose: Purpose
    repayment_method: str
    declared_annual_income: Decimal | None
    offer: OfferTerms | None
    business_date: date
    submitted_at: datetime
    submitted_by: str
    updated_at: datetime
    decision: DecisionView | None
    contract: ContractAcceptance | None
    line_id: int | None
    version: int


@dataclass(frozen=True, slots=True)
class TransitionView:
    event: ApplicationEvent
    from_status: ApplicationStatus | None
    to_status: ApplicationStatus
    actor: str
    business_date: date
    reason: str
    at: datetime


def view(app: Application) -> ApplicationView:
    offer = None
    if app.offer_version_id is not None:
        assert app.offer_limit is not None and app.offer_rate is not None
        offer = OfferTerms(app.offer_version_id, app.offer_limit, app.offer_rate, app.offer_expiry_date)
    decision = None
    if app.decision_id is not None:
        assert app.decided_by and app.decided_at and app.decision_date and app.decision_outcome
        decision = DecisionView(
            decision_id=app.decision_id,
            outcome=Outcome(app.decision_outcome),
            limit=app.approved_limit,
            annual_rate=app.approved_rate,
            reasons=tuple(json.loads(app.decision_reasons or "[]")),
            customer_reasons=tuple((r["zh"], r["en"]) for r in json.loads(app.customer_reasons or "[]")),
            decided_by=app.decided_by,
            decided_at=app.decided_at,
            decision_date=app.decision_date,
            approval_expiry_date=app.approval_expiry_date,
        )
    acceptance = None
    if app.contract_accepted_at is not None:
        assert app.contract_template and app.contract_sha256 and app.contract_channel and app.contract_ip
        acceptance = ContractAcceptance(
            template=app.contract_template,
            sha256=app.contract_sha256,
            accepted_at=app.contract_accepted_at,
            channel=app.contract_channel,
            ip=app.contract_ip,
            device=json.loads(app.contract_device or "{}"),
        )
    return ApplicationView(
        id=app.id,
        customer_id=app.customer_id,
        status=app.status,
        channel=app.channel,
        product_code=app.product_code,
        amount=app.amount,
        term_months=app.term_months,
        purpose=app.purpose,
        repayment_method=app.repayment_method,
        declared_annual_income=app.declared_annual_income,
        offer=offer,
        business_date=app.business_date,
        submitted_at=app.submitted_at,
        submitted_by=app.submitted_by,
        updated_at=app.updated_at,
        decision=decision,
        contract=acceptance,
        line_id=app.line_id,
        version=app.version,
    )


# ------------------------------------------------------------------ helpers


def current_date(session: Session, *, now: datetime, timezone: str = "Asia/Shanghai") -> date:
    """The date applications are made on: the open business date, or the bank's calendar day
    (in ``timezone``) before the first business date is opened."""
    try:
        return current_business_date(session)
    except BusinessDateNotOpen:
        return now.astimezone(ZoneInfo(timezone)).date()


def _write(session: Session, app: Application, *, at_commit: bool = False) -> None:
    """Write the application's changes now (``db.base.write_changes``): a change by another
    request since it was read is an :class:`ApplicationChanged` here. With ``at_commit`` the
    transaction's commit writes them (on PostgreSQL in its own statement) and refuses such a
    change instead."""

    def changed() -> ApplicationChanged:
        return ApplicationChanged(
            f"application {app.id} was changed by another request meanwhile; read it again and retry",
            application_id=app.id,
        )

    if not write_changes(session, app, at_commit=changed if at_commit else None):
        raise changed()


def load(session: Session, application_id: int) -> Application:
    app = store.get(session, application_id)
    if app is None:
        raise ApplicationNotFound(
            f"application {application_id} does not exist", application_id=application_id
        )
    return app


def _record(session: Session, app: Application, transition: Transition, *, now: datetime) -> None:
    store.add_transition(
        session,
        app,
        event=transition.event.value,
        from_status=transition.source,
        to_status=transition.target,
        actor=transition.actor,
        business_date=transition.business_date,
        reason=transition.reason[:400],
        at=now,
    )


def rate_text(rate: Decimal) -> str:
    """A rate as event payloads carry it: ``"0.0435"`` (no trailing zeros, never exponent form)."""
    return format(rate.normalize(), "f") if rate else "0"


def _payload(app: Application, transition: Transition, **extra: Any) -> dict[str, Any]:
    return {
        "application_id": app.id,
        "customer_id": app.customer_id,
        "product_code": app.product_code,
        "status": transition.target.value,
        "previous_status": transition.source.value if transition.source else None,
        "actor": transition.actor,
        "business_date": transition.business_date.isoformat(),
        "reason": transition.reason,
        **extra,
    }


def move(
    session: Session,
    app: Application,
    event: ApplicationEvent,
    *,
    actor: str,
    business_date: date,
    now: datetime,
    reason: str = "",
    payload: Mapping[str, Any] | None = None,
    at_commit: bool = False,
) -> Transition:
    """Move ``app`` by ``event``, record the transition and announce it. The move, with what the
    caller changed on ``app`` before, is written at once, so that a change by another request
    meanwhile is an :class:`ApplicationChanged` here; with ``at_commit``, by the transaction's
    commit, which refuses such a change (for an application this transaction submitted, which
    nobody else sees before the commit)."""
    transition = apply(app.status, event, actor=actor, business_date=business_date, reason=reason)
    app.status = transition.target
    if transition.target not in IN_PROGRESS:
        app.in_progress_customer_id = None
    app.updated_at = now
    _write(session, app, at_commit=at_commit)
    _record(session, app, transition, now=now)
    append(
        session,
        Event(transition.event_name, _payload(app, transition, **(payload or {}))),
        now=now,
    )
    return transition


def _whitelist(uow: UnitOfWork, app: Application, event: whitelist.EntryEvent, on: date, reason: str) -> int:
    """Move the customer's whitelist entries with an application made on an offer. An application
    made without one (no live offer when it was submitted) moves none: an offer that expired
    unswept is not applied for, nor declined, by it, and the statement is not sent."""
    if app.offer_version_id is None:
        return 0
    return whitelist.record_event(uow, customer_id=app.customer_id, event=event, on=on, reason=reason[:200])


def product_snapshot(terms: ProductTerms) -> dict[str, Any]:
    """The product's terms as stored with the application (JSON-plain)."""
    raw = asdict(terms)
    return {
        k: (str(v) if isinstance(v, Decimal) else list(v) if isinstance(v, tuple) else v)
        for k, v in raw.items()
    }


_SNAPSHOTS: dict[int, tuple[ProductTerms, str]] = {}


def _snapshot_text(terms: ProductTerms) -> str:
    """:func:`product_snapshot` as stored (JSON text), made once per terms object: the catalogue
    gives the same object back while a product's definition stays the same."""
    held = _SNAPSHOTS.get(id(terms))
    if held is not None and held[0] is terms:  # held, so its id is not reused meanwhile
        return held[1]
    text = json.dumps(product_snapshot(terms), ensure_ascii=False, sort_keys=True)
    if len(_SNAPSHOTS) >= 256:
        _SNAPSHOTS.clear()
    _SNAPSHOTS[id(terms)] = (terms, text)
    return text


def product_terms_of(app: Application) -> ProductTerms:
    """The product terms an application was made under."""
    raw = json.loads(app.product_terms)
    return ProductTerms(
        code=raw["code"],
        name=raw["name"],
        min_amount=Decimal(raw["min_amount"]),
        max_amount=Decimal(raw["max_amount"]),
        terms=tuple(raw["terms"]),
        methods=tuple(raw["methods"]),
        min_annual_rate=Decimal(raw["min_annual_rate"]),
        max_annual_rate=Decimal(raw["max_annual_rate"]),
        list_annual_rate=Decimal(raw["list_annual_rate"]),
        revolving=bool(raw["revolving"]),
        method_labels=dict(raw["method_labels"]),
        penalty_annual_rate=None
        if raw["penalty_annual_rate"] is None
        else Decimal(raw["penalty_annual_rate"]),
        day_count=raw["day_count"],
    )


def missing_consents(current: Mapping[ConsentKind, ConsentAction]) -> list[ConsentKind]:
    """The required consents not given, or withdrawn, by the newest action on each (``current``,
    as ``store.latest_consent_actions`` or ``store.consent_actions_of`` give it)."""
    return [kind for kind in REQUIRED_CONSENTS if current.get(kind) is not ConsentAction.GIVEN]


# ------------------------------------------------------------------ submit


def _applicant_reads(
    uow: UnitOfWork, *, customer_id: str, on: date
) -> tuple[whitelist.Offer | None, dict[ConsentKind, ConsentAction], contract.CustomerIdentity | None]:
    """What a submission reads of the customer before it writes: the offer live on ``on``, the
    newest action on each consent, and the customer's record. In one round trip on PostgreSQL
    (``db.reads.together``), each read as its own module makes it; one statement each else."""
    session = uow.session
    session.flush()  # as an ORM query would
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return (
            whitelist.find_offer(session, customer_id=customer_id, on=on),
            store.latest_consent_actions(session, customer_id),
            contract.customer_record(uow, customer_id=customer_id),
        )
    offer, consented, record = together(
        conn,
        (whitelist.LIVE_OFFER, store.CONSENT_ACTIONS_ONE_ROW, contract.CUSTOMER_RECORD),
        {"customer_id": customer_id, "on": on},
    )
    return (
        whitelist.offer_of(offer),
        store.consent_actions_of(consented),
        contract.record_of(uow, customer_id, record),
    )


def _identity(applicant: Applicant, *, on: date) -> tuple[idcard.IdNumber, str, str]:
    try:
        parsed = idcard.parse(applicant.id_number, as_of=on)
    except idcard.InvalidIdNumber as exc:
        raise idcard.InvalidIdNumber(exc.message, field="applicant.id_number") from None
    check_age(parsed.age_on(on))
    try:
        mobile = phone.normalise(applicant.phone)
    except phone.InvalidPhone as exc:
        raise phone.InvalidPhone(exc.message, field="applicant.phone") from None
    name = applicant.name.strip()
    if not name:
        raise InvalidInput("applicant.name is empty", field="applicant.name")
    return parsed, mobile, name


def _contacts(contacts: Sequence[Contact]) -> list[tuple[str, str, Relation]]:
    out = []
    for i, c in enumerate(contacts):
        try:
            mobile = phone.normalise(c.phone)
        except phone.InvalidPhone as exc:
            raise phone.InvalidPhone(
                f"contacts[{i}].phone: {exc.message}", field=f"contacts.{i}.phone"
            ) from None
        name = c.name.strip()
        if not name:
            raise InvalidInput(f"contacts[{i}].name is empty", field=f"contacts.{i}.name")
        out.append((name, mobile, Relation(c.relation)))
    return out


def _fen(value: Decimal | None, field: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float) or not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInput(f"{field} must be a Decimal amount", field=field)
    if value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"{field}: {value} has more than 2 decimal places", field=field)
    return value.quantize(Decimal("0.01"))


def submit_application(
    uow: UnitOfWork,
    *,
    request: ApplicationRequest,
    catalogue: ProductCatalogue,
    vault: PiiVault,
    actor: str,
    business_date: date,
    now: datetime,
) -> ApplicationView:
    """Record a new application in ``submitted`` and announce ``origination.application.submitted``.

    Refuses, changing nothing: an invalid ID number, phone or contact phone, an applicant under
    18 (422); an unknown product, an amount outside the product or above the offer, a term or
    method the product does not offer (422); a required consent missing or withdrawn (409
    ``consent_required``); another application of the customer in progress (409
    ``application_in_progress``, also when two submissions race); an offer version that is not
    the customer's current offer (409 ``offer_not_current``). The in-progress check is the insert
    itself (see :func:`store.insert_new`): the loser of a race waits for the winner's
    transaction, inserts nothing and is told the winner's application.
    """
    session = uow.session
    r = request
    parsed, mobile, name = _identity(r.applicant, on=business_date)
    contacts = _contacts(r.contacts)
    amount = _fen(r.amount, "amount")
    income = _fen(r.declared_annual_income, "declared_annual_income")
    assert amount is not None
    if income is not None and income < 0:
        raise InvalidInput("declared_annual_income may not be negative", field="declared_annual_income")
    terms = catalogue.product_terms(session, code=r.product_code)
    if terms is None:
        raise UnknownProduct(f"no loan product has the code {r.product_code!r}", field="product_code")
    method = r.repayment_method or terms.methods[0]
    offer, consented, record = _applicant_reads(uow, customer_id=r.customer_id, on=business_date)
    if r.offer_version_id is not None and (offer is None or offer.version_id != r.offer_version_id):
        raise OfferNotCurrent(
            f"customer {r.customer_id} has no current offer from whitelist version {r.offer_version_id}"
            + (f"; the current offer is from version {offer.version_id}" if offer else ""),
            offer_version_id=r.offer_version_id,
        )
    check_request(
        terms, amount=amount, term=r.term_months, method=method, offer_limit=offer.limit if offer else None
    )

    missing = missing_consents(consented)
    if missing:
        names = ", ".join(f"{k.value} ({k.label_zh})" for k in missing)
        raise ConsentRequired(
            f"customer {r.customer_id} has not given (or has withdrawn) the consents an application needs: {names}",
            missing=[k.value for k in missing],
        )
    id_token = vault.token(parsed.value, kind="id_number")
    phone_token = vault.token(mobile, kind="phone")
    name_matches: bool | None = None
    if record is not None and record.name_enc:
        name_matches = vault.decrypt(record.name_enc).strip() == name

    values: dict[str, Any] = dict(
        customer_id=r.customer_id,
        in_progress_customer_id=r.customer_id,
        status=ApplicationStatus.SUBMITTED,
        channel=Channel(r.channel),
        product_code=terms.code,
        product_terms=_snapshot_text(terms),
        amount=amount,
        term_months=r.term_months,
        purpose=Purpose(r.purpose),
        repayment_method=method,
        declared_annual_income=income,
        offer_version_id=offer.version_id if offer else None,
        offer_limit=offer.limit if offer else None,
        offer_rate=offer.annual_rate if offer else None,
        offer_expiry_date=offer.expiry_date if offer else None,
        applicant_name_enc=vault.encrypt(name),
        id_number_token=id_token,
        id_number_enc=vault.encrypt(parsed.value),
        phone_token=phone_token,
        phone_enc=vault.encrypt(mobile),
        birth_date=parsed.birth_date,
        sex=parsed.sex,
        age=parsed.age_on(business_date),
        region_code=parsed.region_code,
        known_customer=record is not None,
        id_matches_record=None if record is None else record.id_number_token == id_token,
        phone_matches_record=None
        if record is None or not record.phone_token
        else record.phone_token == phone_token,
        name_matches_record=name_matches,
        device_fingerprint=r.device.fingerprint,
        device_os=r.device.os,
        device_model=r.device.model,
        device_is_emulator=r.device.is_emulator,
        device_is_rooted=r.device.is_rooted,
        ip=str(r.ip),
        lat=r.lat,
        lon=r.lon,
        business_date=business_date,
        submitted_at=now,
        submitted_by=actor,
        updated_at=now,
    )
    contact_rows = [
        dict(
            position=position,
            name_enc=vault.encrypt(cname),
            phone_token=vault.token(cphone, kind="phone"),
            phone_enc=vault.encrypt(cphone),
            relation=relation,
        )
        for position, (cname, cphone, relation) in enumerate(contacts)
    ]
    app = store.insert_new(session, values, contact_rows)
    if app is None:  # another application in progress, committed before this one or racing it
        existing = store.get_in_progress(session, r.customer_id)
        if existing is None:  # it left progress between the insert and this read
            raise ApplicationInProgress(
                f"customer {r.customer_id} had another application in progress (submitted at the same time)"
            )
        raise ApplicationInProgress(
            f"customer {r.customer_id} already has application {existing.id} in progress ({existing.status.value})",
            application_id=existing.id,
        )
    transition = submission(actor=actor, business_date=business_date, reason="submitted")
    _record(session, app, transition, now=now)
    append(
        session,
        Event(
            transition.event_name,
            _payload(
                app,
                transition,
                amount=str(app.amount),
                term_months=app.term_months,
                channel=app.channel.value,
                offer_version_id=app.offer_version_id,
                submitted_at=now.isoformat(),
            ),
        ),
        now=now,
    )
    _whitelist(uow, app, whitelist.EntryEvent.APPLY, business_date, f"application {app.id} submitted")
    uow.keep(app)  # the decision and the response read it again in this unit of work
    return view(app)


# ------------------------------------------------------------------ customer moves


def withdraw_application(
    uow: UnitOfWork,
    *,
    application_id: int,
    actor: str,
    business_date: date,
    now: datetime,
    reason: str = "withdrawn by the customer",
) -> ApplicationView:
    """The customer gives up: ``withdrawn``; the offer goes back to ``offered``."""
    session = uow.session
    app = load(session, application_id)
    move(
        session,
        app,
        ApplicationEvent.WITHDRAW,
        actor=actor,
        business_date=business_date,
        now=now,
        reason=reason,
    )
    _whitelist(uow, app, whitelist.EntryEvent.WITHDRAW, business_date, f"application {app.id} withdrawn")
    return view(app)


def cancel_application(
    uow: UnitOfWork, *, application_id: int, actor: str, business_date: date, now: datetime, reason: str
) -> ApplicationView:
    """Cancel an application that cannot go on (a required consent was withdrawn ...)."""
    session = uow.session
    app = load(session, application_id)
    move(
        session,
        app,
        ApplicationEvent.CANCEL,
        actor=actor,
        business_date=business_date,
        now=now,
        reason=reason,
    )
    _whitelist(uow, app, whitelist.EntryEvent.WITHDRAW, business_date, f"application {app.id} cancelled")
    return view(app)


def cancel_in_progress(
    uow: UnitOfWork, *, customer_id: str, actor: str, business_date: date, now: datetime, reason: str
) -> ApplicationView | None:
    """Cancel the customer's application in progress, when there is one that may be cancelled."""
    app = store.get_in_progress(uow.session, customer_id)
    if app is None or (app.status, ApplicationEvent.CANCEL) not in _CANCELLABLE:
        return None
    return cancel_application(
        uow, application_id=app.id, actor=actor, business_date=business_date, now=now, reason=reason
    )


_CANCELLABLE = {
    (s, ApplicationEvent.CANCEL)
    for s in (ApplicationStatus.SUBMITTED, ApplicationStatus.REFERRED, ApplicationStatus.APPROVED)
}


# ------------------------------------------------------------------ decisions


def _outcome(outcome: Outcome | str) -> Outcome:
    try:
        return Outcome(outcome)
    except ValueError:
        raise InvalidInput(
            f"outcome must be one of {', '.join(o.value for o in Outcome)}, got {outcome!r}", field="outcome"
        ) from None


def _checked(
    app: Application,
    chosen: Outcome,
    *,
    limit: Decimal | None,
    annual_rate: Decimal | None,
    decided_by: str,
    on: date,
) -> ApplicationEvent:
    event = OUTCOME_EVENTS[chosen]
    apply(app.status, event, actor=decided_by, business_date=on)  # refuses an illegal move first
    if chosen is Outcome.APPROVE:
        if limit is None or annual_rate is None:
            raise InvalidInput("an approval needs a limit and an annual rate", field="limit")
        check_approval(product_terms_of(app), limit=limit, annual_rate=annual_rate)
    elif limit is not None or annual_rate is not None:
        raise InvalidInput(f"a {chosen.value} carries no limit or rate", field="limit")
    return event


def check_decision(
    uow: UnitOfWork,
    *,
    application_id: int,
    outcome: Outcome | str,
    limit: Decimal | None,
    annual_rate: Decimal | None,
    decided_by: str,
    business_date: date,
) -> None:
    """Refuse, writing nothing, what :func:`record_decision` would refuse of a new decision (an
    unknown outcome, an illegal move, an approval outside the product), so that a caller may
    check before it writes anything of its own."""
    chosen = _outcome(outcome)
    if not decided_by:
        raise InvalidInput("a decision needs a decision_id and decided_by")
    app = load(uow.session, application_id)
    _checked(app, chosen, limit=limit, annual_rate=annual_rate, decided_by=decided_by, on=business_date)


def record_decision(
    uow: UnitOfWork,
    *,
    application_id: int,
    outcome: Outcome | str,
    limit: Decimal | None,
    annual_rate: Decimal | None,
    reasons: Sequence[str],
    decision_id: str,
    decided_by: str,
    business_date: date,
    now: datetime,
    reason_texts: Mapping[str, tuple[str, str]] | None = None,
    approval_valid_days: int = APPROVAL_VALID_DAYS,
    at_commit: bool = False,
) -> ApplicationView:
    """Record a decision's outcome on an application and move it (approve, decline, refer).

    A submitted application may be approved, declined or referred; a referred one approved or
    declined (by a person: ``decided_by`` is then the staff id). An approval needs ``limit`` and
    ``annual_rate`` within the product the application was made under, and may be signed until
    ``approval_valid_days`` after ``business_date``. ``reasons`` are the decision's reason codes
    (kept for staff); ``reason_texts`` maps the codes the customer may see to (Chinese, English)
    texts, and without any a general text per outcome is shown. A decline of an application made
    on an offer moves the whitelist entry to ``declined``. Recording the same ``decision_id`` with
    the same outcome again changes nothing (a retried handler); with another outcome it is a
    :class:`DecisionConflict`. With ``at_commit`` the move is written by the transaction's
    commit (:func:`move`): for a decision made in the transaction that submitted the application.
    """
    session = uow.session
    chosen = _outcome(outcome)
    if not decision_id or not decided_by:
        raise InvalidInput("a decision needs a decision_id and decided_by")
    app = load(session, application_id)
    if app.decision_id == decision_id:
        if app.decision_outcome == chosen.value:
            return view(app)
        raise DecisionConflict(
            f"decision {decision_id} was recorded on application {application_id} as {app.decision_outcome}, "
            f"not {chosen.value}",
            application_id=application_id,
            decision_id=decision_id,
        )
    event = _checked(
        app, chosen, limit=limit, annual_rate=annual_rate, decided_by=decided_by, on=business_date
    )
    codes = [str(c) for c in reasons]
    texts = [reason_texts[c] for c in codes if reason_texts and c in reason_texts]
    if not texts and chosen in DEFAULT_CUSTOMER_REASONS:
        texts = [DEFAULT_CUSTOMER_REASONS[chosen]]
    app.decision_id = decision_id
    app.decision_outcome = chosen.value
    app.approved_limit = None if limit is None else limit.quantize(Decimal("0.01"))
    app.approved_rate = annual_rate
    app.decision_reasons = json.dumps(codes, ensure_ascii=False)
    app.customer_reasons = json.dumps([{"zh": zh, "en": en} for zh, en in texts], ensure_ascii=False)
    app.decided_by = decided_by
    app.decided_at = now
    app.decision_date = business_date
    app.approval_expiry_date = (
        business_date + timedelta(days=approval_valid_days) if chosen is Outcome.APPROVE else None
    )
    move(
        session,
        app,
        event,
        actor=decided_by,
        business_date=business_date,
        now=now,
        reason=" ".join(codes)[:400] or chosen.value,
        at_commit=at_commit,
        payload={
            "decision_id": decision_id,
            "outcome": chosen.value,
            "limit": None if limit is None else f"{limit:.2f}",
            "annual_rate": None if annual_rate is None else rate_text(annual_rate),
            "reasons": codes,
            "decided_by": decided_by,
            "approval_expiry_date": app.approval_expiry_date.isoformat()
            if app.approval_expiry_date
            else None,
        },
    )
    if chosen is Outcome.DECLINE:
        _whitelist(uow, app, whitelist.EntryEvent.DECLINE, business_date, f"application {app.id} declined")
    return view(app)


def record_line_opened(
    uow: UnitOfWork,
    *,
    application_id: int,
    line_id: int,
    business_date: date,
    now: datetime,
    actor: str = "system",
) -> ApplicationView:
    """Servicing opened the credit line of a signed application: ``line_opened`` (final).

    Recording the same line again changes nothing; another line is a conflict.
    """
    session = uow.session
    app = load(session, application_id)
    if app.status is ApplicationStatus.LINE_OPENED:
        if app.line_id == line_id:
            return view(app)
        raise Conflict(
            f"application {application_id} already opened credit line {app.line_id}",
            application_id=application_id,
            line_id=app.line_id,
        )
    app.line_id = line_id
    move(
        session,
        app,
        ApplicationEvent.OPEN_LINE,
        actor=actor,
        business_date=business_date,
        now=now,
        reason=f"credit line {line_id} opened",
        payload={"line_id": line_id},
    )
    return view(app)


def expire_approvals(uow: UnitOfWork, *, business_date: date, now: datetime, actor: str = "system") -> int:
    """Approvals not signed by their expiry date become ``expired``; their offers go back to
    ``offered``. Returns how many expired."""
    session = uow.session
    due = session.scalars(
        select(Application)
        .where(
            Application.status == ApplicationStatus.APPROVED,
            Application.approval_expiry_date < business_date,
        )
        .order_by(Application.id)
    ).all()
    for app in due:
        assert app.approval_expiry_date is not None
        move(
            session,
            app,
            ApplicationEvent.EXPIRE,
            actor=actor,
            business_date=business_date,
            now=now,
            reason=f"not signed by {app.approval_expiry_date.isoformat()}",
        )
        _whitelist(uow, app, whitelist.EntryEvent.WITHDRAW, business_date, f"application {app.id} expired")
    return len(due)


# ------------------------------------------------------------------ reads


def get_application(uow: UnitOfWork, *, application_id: int) -> ApplicationView:
    """One application (404 ``application_not_found`` when there is none)."""
    return view(load(uow.session, application_id))


def find_in_progress(uow: UnitOfWork, *, customer_id: str) -> ApplicationView | None:
    """The customer's application in progress, if any."""
    app = store.get_in_progress(uow.session, customer_id)
    return None if app is None else view(app)


def list_applications(
    uow: UnitOfWork,
    *,
    status: ApplicationStatus | str | None = None,
    customer_id: str | None = None,
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[ApplicationView]:
    """Applications in id order (filtered; ``after_id`` pages on)."""
    rows = store.list_applications(
        uow.session,
        status=None if status is None else ApplicationStatus(status),
        customer_id=customer_id,
        submitted_from=submitted_from,
        submitted_to=submitted_to,
        after_id=after_id,
        limit=limit,
    )
    return [view(a) for a in rows]


def timeline(uow: UnitOfWork, *, application_id: int) -> list[TransitionView]:
    """Every transition of the application, oldest first (404 ``application_not_found`` when
    there is none). Read from the session when it holds them all (an application submitted in
    this unit of work); otherwise one read of the transitions alone, not of the application
    again: a read that showed the application (``get_application``) no longer holds it."""
    app = store.held(uow.session, application_id)
    rows = None if app is None else store.transitions_in_memory(app)
    if rows is None:
        rows = list(store.list_transitions(uow.session, application_id))
        if not rows:
            load(uow.session, application_id)  # every application has one; none: is it there?
    return [
        TransitionView(
            event=ApplicationEvent(t.event),
            from_status=t.from_status,
            to_status=t.to_status,
            actor=t.actor,
            business_date=t.business_date,
            reason=t.reason,
            at=t.at.astimezone(UTC),
        )
        for t in rows
    ]


def application_facts(uow: UnitOfWork, *, application_id: int) -> dict[str, Any]:
    """What a decision needs to know about an application, as a plain dict.

    Amounts and rates are ``Decimal``; personal data only as tokens (ID number, phone,
    contacts' phones) and the facts derived from them (birth date, age, sex, region, and
    whether they agree with the bank's record of the customer). ``offer`` is ``None`` for an
    applicant without a pre-approved offer; ``product`` is the product's terms as they stood
    when the application was made (amounts and rates as text).
    """
    app = load(uow.session, application_id)
    return {
        "application_id": app.id,
        "customer_id": app.customer_id,
        "status": app.status.value,
        "channel": app.channel.value,
        "product_code": app.product_code,
        "product": json.loads(app.product_terms),
        "amount": app.amount,
        "term_months": app.term_months,
        "purpose": app.purpose.value,
        "repayment_method": app.repayment_method,
        "declared_annual_income": app.declared_annual_income,
        "offer": None
        if app.offer_version_id is None
        else {
            "version_id": app.offer_version_id,
            "limit": app.offer_limit,
            "annual_rate": app.offer_rate,
            "expiry_date": app.offer_expiry_date,
        },
        "identity": {
            "id_number_token": app.id_number_token,
            "phone_token": app.phone_token,
            "birth_date": app.birth_date,
            "age": app.age,
            "sex": app.sex,
            "region_code": app.region_code,
            "known_customer": app.known_customer,
            "id_matches_record": app.id_matches_record,
            "phone_matches_record": app.phone_matches_record,
            "name_matches_record": app.name_matches_record,
        },
        "device": {
            "fingerprint": app.device_fingerprint,
            "os": app.device_os,
            "model": app.device_model,
            "is_emulator": app.device_is_emulator,
            "is_rooted": app.device_is_rooted,
        },
        "ip": app.ip,
        "location": None if app.lat is None or app.lon is None else {"lat": app.lat, "lon": app.lon},
        "contacts": [{"phone_token": c.phone_token, "relation": c.relation.value} for c in app.contacts],
        "business_date": app.business_date,
        "submitted_at": app.submitted_at,
    }


def velocity(
    uow: UnitOfWork, *, application_id: int, windows: Mapping[str, timedelta] = VELOCITY_WINDOWS
) -> dict[str, int]:
    """How many applications (this one included) shared this one's ID number, phone, device and
    IP address within each window before its submission: ``{"id_number_1h": 1, "device_24h": 3, ...}``."""
    session = uow.session
    app = load(session, application_id)
    keys = {
        "id_number": ("id_number_token", app.id_number_token),
        "phone": ("phone_token", app.phone_token),
        "device": ("device_fingerprint", app.device_fingerprint),
        "ip": ("ip", app.ip),
    }
    session.flush()  # as an ORM query would
    counts = store.count_sharing(
        session,
        values=dict(keys.values()),
        since={name: app.submitted_at - span for name, span in windows.items()},
        until=app.submitted_at,
    )
    return {
        f"{label}_{name}": counts[(column, name)] for label, (column, _) in keys.items() for name in windows
    }


@dataclass(frozen=True, slots=True)
class ReviewDetails:
    """A reviewer's view of an application's applicant: identity masked by role, and the facts."""

    name: str
    id_number: str
    phone: str
    masked: bool
    facts: dict[str, Any]


def review_details(
    uow: UnitOfWork,
    *,
    application_id: int,
    vault: PiiVault,
    principal: Principal,
    purpose: str,
    now: datetime,
    request_id: str | None = None,
) -> ReviewDetails:
    """The applicant's identity for staff: in full only for a role that may see personal data,
    masked otherwise; every read is written to the staff-access audit in the same transaction."""
    require(principal, Permission.APPLICATION_REVIEW)
    app = load(uow.session, application_id)
    unmasked = principal.can(Permission.CUSTOMER_READ_PII)
    name = vault.decrypt(app.applicant_name_enc)
    number = vault.decrypt(app.id_number_enc)
    mobile = vault.decrypt(app.phone_enc)
    if not unmasked:
        name, number, mobile = (
            masking.mask_name(name),
            masking.mask_id_number(number),
            masking.mask_phone(mobile),
        )
    record_access(
        uow.session,
        principal=principal,
        action="application.read",
        subject_type="application",
        subject_id=str(app.id),
        fields=("name", "id_number", "phone"),
        unmasked=unmasked,
        purpose=purpose,
        now=now,
        request_id=request_id,
    )
    return ReviewDetails(
        name=name,
        id_number=number,
        phone=mobile,
        masked=not unmasked,
        facts=application_facts(uow, application_id=application_id),
    )
