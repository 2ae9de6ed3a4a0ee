"""The e-contract: the loan contract text of an approved application, and its acceptance.

The text is rendered from a versioned Jinja2 template shipped with the package
(``texts/contract/loan_contract.v1.txt.j2``), in Chinese with English, from what the
application and its approval hold: the approved limit (in figures and in capital numerals),
rate, term, repayment method, purpose, the product, and the borrower's masked name and ID
number. Rendering is deterministic, so the same application gives the same text and the same
SHA-256 until something in it changes (a new template version, another approval).

To accept, the customer echoes the hash of the text they were shown; a different hash is
refused (409 ``contract_changed``) and nothing is recorded. An acceptance records the time,
channel, IP address, device and hash, moves the application to ``contract_signed`` and emits
``origination.contract.accepted``, from which servicing opens the credit line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache

import jinja2

from creditfactory import whitelist
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Conflict
from creditfactory.origination import service
from creditfactory.origination.model import (
    ApplicationEvent,
    ApplicationStatus,
    Channel,
    method_label_en,
    next_status,
    yuan_in_words,
)
from creditfactory.origination.store import Application
from creditfactory.security import masking
from creditfactory.security.pii import PiiVault

#: The template version new contracts are rendered with.
TEMPLATE = "loan_contract.v1"

LENDER_ZH = "本行"
LENDER_EN = "the Bank"

_DAY_COUNT_TEXT = {
    "30/360": ("每月按30天、每年按360天计息", "each month counted as 30 days of a 360-day year"),
    "actual/360": ("按实际天数计息，日利率 = 年利率 / 360", "on actual days at the annual rate / 360 a day"),
    "actual/365": ("按实际天数计息，日利率 = 年利率 / 365", "on actual days at the annual rate / 365 a day"),
}


class ContractNotAvailable(Conflict):
    code = "contract_not_available"
    title = "No contract to sign"


class ContractChanged(Conflict):
    code = "contract_changed"
    title = "The contract text changed"


class ApprovalExpired(Conflict):
    code = "approval_expired"
    title = "The approval has expired"


@dataclass(frozen=True, slots=True)
class ContractText:
    application_id: int
    template: str
    text: str
    sha256: str
    signed: bool


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("creditfactory.origination", "texts/contract"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text, never HTML
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def _rate_percent(rate: Decimal) -> str:
    # 0.0435 -> "4.35", 0.04 -> "4.00", 0.043512 -> "4.3512"
    value = (rate * 100).quantize(Decimal("0.0001")).normalize()
    places = max(2, -value.as_tuple().exponent)  # type: ignore[operator]
    return f"{value:.{places}f}"


def render(app: Application, *, vault: PiiVault, template: str = TEMPLATE) -> ContractText:
    """The contract text of an approved (or signed) application and its SHA-256."""
    if app.approved_limit is None or app.approved_rate is None or app.decision_date is None:
        raise ContractNotAvailable(
            f"application {app.id} is {app.status.value}; only an approved application has a contract",
            application_id=app.id,
            status=app.status.value,
        )
    terms = service.product_terms_of(app)
    penalty = (
        terms.penalty_annual_rate
        if terms.penalty_annual_rate is not None
        else app.approved_rate * Decimal("1.5")
    )
    day_zh, day_en = _DAY_COUNT_TEXT.get(terms.day_count, (terms.day_count, terms.day_count))
    context = {
        "contract_no": f"CF-{app.business_date:%Y%m%d}-{app.id:08d}",
        "template": template,
        "lender_zh": LENDER_ZH,
        "lender_en": LENDER_EN,
        "borrower_name": masking.mask_name(vault.decrypt(app.applicant_name_enc)),
        "borrower_id_number": masking.mask_id_number(vault.decrypt(app.id_number_enc)),
        "limit": f"{app.approved_limit:,.2f}",
        "limit_words": yuan_in_words(app.approved_limit),
        "revolving": terms.revolving,
        "product_name": terms.name,
        "product_code": terms.code,
        "purpose_zh": app.purpose.label_zh,
        "purpose_en": app.purpose.label_en,
        "term": app.term_months,
        "rate_percent": _rate_percent(app.approved_rate),
        "penalty_percent": _rate_percent(penalty),
        "day_count_zh": day_zh,
        "day_count_en": day_en,
        "method_zh": terms.method_labels.get(app.repayment_method, app.repayment_method),
        "method_en": method_label_en(app.repayment_method),
        "approved_on": app.decision_date.isoformat(),
        "sign_by": app.approval_expiry_date.isoformat() if app.approval_expiry_date else "",
    }
    try:
        source = _environment().get_template(f"{template}.txt.j2")
    except jinja2.TemplateNotFound:
        raise ContractNotAvailable(f"no contract template {template!r}", template=template) from None
    text = source.render(**context)
    return ContractText(
        application_id=app.id,
        template=template,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        signed=app.contract_sha256 is not None,
    )


def contract_text(uow: UnitOfWork, *, application_id: int, vault: PiiVault) -> ContractText:
    """The contract the customer is asked to sign, or the one they signed (its own template)."""
    app = service.load(uow.session, application_id)
    if app.status in (ApplicationStatus.SUBMITTED, ApplicationStatus.REFERRED, ApplicationStatus.DECLINED):
        raise ContractNotAvailable(
            f"application {app.id} is {app.status.value}; only an approved application has a contract",
            application_id=app.id,
            status=app.status.value,
        )
    return render(app, vault=vault, template=app.contract_template or TEMPLATE)


@dataclass(frozen=True, slots=True)
class AcceptedDevice:
    fingerprint: str
    os: str
    model: str
    is_emulator: bool = False
    is_rooted: bool = False


def accept_contract(
    uow: UnitOfWork,
    *,
    application_id: int,
    sha256: str,
    channel: Channel | str,
    ip: str,
    device: AcceptedDevice,
    actor: str,
    vault: PiiVault,
    business_date: date,
    now: datetime,
) -> service.ApplicationView:
    """Record the customer's acceptance of the contract whose text has ``sha256``.

    Only an approved application whose approval has not expired can be signed (409
    ``illegal_transition`` / ``approval_expired``); a hash other than the current text's is
    refused with 409 ``contract_changed``. The whitelist entry moves to ``accepted``.
    """
    session = uow.session
    app = service.load(session, application_id)
    if app.status is not ApplicationStatus.APPROVED:
        next_status(app.status, ApplicationEvent.SIGN_CONTRACT)  # raises, naming what is allowed
    if app.approval_expiry_date is not None and business_date > app.approval_expiry_date:
        raise ApprovalExpired(
            f"the approval of application {app.id} could be signed until {app.approval_expiry_date.isoformat()}",
            application_id=app.id,
        )
    shown = render(app, vault=vault)
    if sha256.lower() != shown.sha256:
        raise ContractChanged(
            f"the contract of application {app.id} now has SHA-256 {shown.sha256}, not {sha256}: "
            "show the customer the current text and ask again",
            application_id=app.id,
            sha256=shown.sha256,
        )
    chosen = Channel(channel)
    app.contract_template = shown.template
    app.contract_sha256 = shown.sha256
    app.contract_accepted_at = now
    app.contract_channel = chosen
    app.contract_ip = str(ip)
    app.contract_device = json.dumps(asdict(device), ensure_ascii=False, sort_keys=True)
    assert app.approved_limit is not None and app.approved_rate is not None
    service.move(
        session,
        app,
        ApplicationEvent.SIGN_CONTRACT,
        actor=actor,
        business_date=business_date,
        now=now,
        reason=f"contract {shown.template} accepted ({shown.sha256[:12]})",
        payload={
            "limit": str(app.approved_limit),
            "annual_rate": service.rate_text(app.approved_rate),
            "term_months": app.term_months,
            "repayment_method": app.repayment_method,
            "offer_version_id": app.offer_version_id,
            "decision_id": app.decision_id,
            "contract_template": shown.template,
            "contract_sha256": shown.sha256,
            "channel": chosen.value,
            "accepted_at": now.isoformat(),
        },
    )
    whitelist.record_event(
        uow,
        customer_id=app.customer_id,
        event=whitelist.EntryEvent.ACCEPT,
        on=business_date,
        reason=f"contract of application {app.id} accepted",
    )
    return service.view(app)
