"""HTTP routes of origination: applications, the e-contract and consents.

What mobile banking, WeChat banking and H5 pages call for a customer (signed in with our
bearer token or the bank's own), and what reviewers read. A customer sees and acts on their
own data only (403 ``permission_denied`` otherwise); staff need ``application.review`` (and
``customer.read`` to read consents). Every write takes an ``Idempotency-Key``: a retry returns
the first response with ``Idempotent-Replayed: true``, the same key with another body is
refused (422 ``idempotency_key_reused``). Each route parses, authorises, calls one service
function inside the request's unit of work and returns; errors are problem-details JSON.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from creditfactory.api.deps import ContainerDep, PrincipalDep, RequestIdDep, UowDep
from creditfactory.api.idempotency import run_idempotent
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import PermissionDenied
from creditfactory.jobs import business_date_ahead
from creditfactory.origination import consents, econtract, service
from creditfactory.origination.model import REQUIRED_CONSENTS, ApplicationStatus, ConsentKind
from creditfactory.origination.schemas import (
    CUSTOMER_ID_PATTERN,
    MAX_ID,
    ApplicantRead,
    ApplicationCreate,
    ApplicationPage,
    ApplicationRead,
    ApplicationSummaryRead,
    ConsentCreate,
    ConsentRead,
    ConsentsRead,
    ConsentTextRead,
    ConsentWithdraw,
    ConsentWithdrawRead,
    ContractAccept,
    ContractAcceptanceRead,
    ContractRead,
    DecisionRead,
    OfferRead,
    ReasonText,
    ReviewRead,
    TimelineEntryRead,
)
from creditfactory.security.roles import Permission, Principal, PrincipalKind, require

router = APIRouter(prefix="/v1", tags=["origination"])

ApplicationId = Annotated[int, Path(ge=1, le=MAX_ID, description="Application id.")]
CustomerIdPath = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, description="Customer id.")]


# ------------------------------------------------------------------ access


def _allow(principal: Principal, *, customer_id: str, permission: Permission) -> None:
    """A customer acts on their own data only; everyone else needs ``permission``."""
    if principal.kind == PrincipalKind.CUSTOMER:
        if principal.customer_id != customer_id:
            raise PermissionDenied(
                f"customer principal {principal.id} may act only on its own applications and consents",
                principal_id=principal.id,
            )
        return
    require(principal, permission)


def _owned(uow: UnitOfWork, principal: Principal, application_id: int) -> service.ApplicationView:
    app = service.get_application(uow, application_id=application_id)
    _allow(principal, customer_id=app.customer_id, permission=Permission.APPLICATION_REVIEW)
    return app


# ------------------------------------------------------------------ responses


def _summary(app: service.ApplicationView) -> ApplicationSummaryRead:
    return ApplicationSummaryRead(
        id=app.id,
        customer_id=app.customer_id,
        status=app.status.value,
        status_label_zh=app.status.label_zh,
        status_label_en=app.status.label_en,
        channel=app.channel.value,
        product_code=app.product_code,
        amount=app.amount,
        term_months=app.term_months,
        offer_version_id=app.offer.version_id if app.offer else None,
        submitted_at=app.submitted_at,
        updated_at=app.updated_at,
    )


def _read(
    uow: UnitOfWork,
    app: service.ApplicationView,
    *,
    review: service.ReviewDetails | None = None,
) -> ApplicationRead:
    staff = review is not None
    timeline = [
        TimelineEntryRead(
            event=t.event.value,
            status=t.to_status.value,
            label_zh=t.to_status.label_zh,
            label_en=t.to_status.label_en,
            business_date=t.business_date,
            at=t.at,
            actor=t.actor if staff else None,
            reason=t.reason if staff else None,
        )
        for t in service.timeline(uow, application_id=app.id)
    ]
    decision = None
    if app.decision is not None:
        d = app.decision
        decision = DecisionRead(
            outcome=d.outcome.value,
            limit=d.limit,
            annual_rate=d.annual_rate,
            reasons=[ReasonText(zh=zh, en=en) for zh, en in d.customer_reasons],
            decided_at=d.decided_at,
            approval_expiry_date=d.approval_expiry_date,
        )
    reviewed = None
    if review is not None:
        f = review.facts
        reviewed = ReviewRead(
            decision_id=app.decision.decision_id if app.decision else None,
            decided_by=app.decision.decided_by if app.decision else None,
            reason_codes=list(app.decision.reasons) if app.decision else [],
            applicant=ApplicantRead(
                name=review.name, id_number=review.id_number, phone=review.phone, masked=review.masked
            ),
            age=f["identity"]["age"],
            known_customer=f["identity"]["known_customer"],
            id_matches_record=f["identity"]["id_matches_record"],
            phone_matches_record=f["identity"]["phone_matches_record"],
            name_matches_record=f["identity"]["name_matches_record"],
            device=f["device"],
            ip=f["ip"],
            location=f["location"],
            contacts=len(f["contacts"]),
            velocity=service.velocity(uow, application_id=app.id),
        )
    return ApplicationRead(
        id=app.id,
        customer_id=app.customer_id,
        status=app.status.value,
        status_label_zh=app.status.label_zh,
        status_label_en=app.status.label_en,
        channel=app.channel.value,
        product_code=app.product_code,
        amount=app.amount,
        term_months=app.term_months,
        purpose=app.purpose.value,
        purpose_label_zh=app.purpose.label_zh,
        purpose_label_en=app.purpose.label_en,
        repayment_method=app.repayment_method,
        declared_annual_income=app.declared_annual_income,
        offer=None
        if app.offer is None
        else OfferRead(
            version_id=app.offer.version_id,
            limit=app.offer.limit,
            annual_rate=app.offer.annual_rate,
            expiry_date=app.offer.expiry_date,
        ),
        business_date=app.business_date,
        submitted_at=app.submitted_at,
        updated_at=app.updated_at,
        timeline=timeline,
        decision=decision,
        contract=None
        if app.contract is None
        else ContractAcceptanceRead(
            template=app.contract.template,
            sha256=app.contract.sha256,
            accepted_at=app.contract.accepted_at,
            channel=app.contract.channel.value,
        ),
        line_id=app.line_id,
        review=reviewed,
    )


def _consent_read(state: consents.ConsentState) -> ConsentRead:
    return ConsentRead(
        kind=state.kind.value,
        label_zh=state.kind.label_zh,
        label_en=state.kind.label_en,
        status=state.status,
        required_for_application=state.kind in REQUIRED_CONSENTS,
        version=state.version,
        language=state.language,
        text_sha256=state.text_sha256,
        channel=state.channel.value if state.channel else None,
        at=state.at,
    )


def _dump(model: object) -> object:
    assert hasattr(model, "model_dump")
    return model.model_dump(mode="json")


# ------------------------------------------------------------------ applications


@router.post("/applications", response_model=ApplicationRead, status_code=201)
async def submit_application(
    body: ApplicationCreate,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Apply for a loan or credit line (needs an ``Idempotency-Key``).

    Refused with 403 for someone else's customer id; 422 ``invalid_id_number``,
    ``invalid_phone``, ``applicant_under_age``, ``unknown_product``, ``amount_outside_product``,
    ``term_not_offered``, ``method_not_offered``, ``amount_above_offer``; 409
    ``consent_required`` (naming the consents), ``application_in_progress``,
    ``offer_not_current``. A refused request changes nothing.
    """
    _allow(principal, customer_id=body.customer_id, permission=Permission.APPLICATION_REVIEW)

    def work() -> tuple[int, object]:
        now = container.clock.now()
        view = service.submit_application(
            uow,
            request=service.ApplicationRequest(
                customer_id=body.customer_id,
                channel=body.channel,
                product_code=body.product_code,
                amount=body.amount,
                term_months=body.term_months,
                purpose=body.purpose,
                repayment_method=body.repayment_method,
                declared_annual_income=body.declared_annual_income,
                offer_version_id=body.offer_version_id,
                applicant=service.Applicant(
                    name=body.applicant.name, id_number=body.applicant.id_number, phone=body.applicant.phone
                ),
                device=service.Device(
                    fingerprint=body.device.fingerprint,
                    os=body.device.os,
                    model=body.device.model,
                    is_emulator=body.device.is_emulator,
                    is_rooted=body.device.is_rooted,
                ),
                ip=str(body.ip),
                lat=body.location.lat if body.location else None,
                lon=body.location.lon if body.location else None,
                contacts=tuple(
                    service.Contact(name=c.name, phone=c.phone, relation=c.relation) for c in body.contacts
                ),
            ),
            catalogue=container.catalogue,
            vault=container.vault,
            actor=principal.id,
            business_date=service.current_date(uow.session, now=now, timezone=container.settings.timezone),
            now=now,
        )
        if container.decider is not None:  # decided in the same transaction: the answer comes back now
            container.decider(uow, application_id=view.id, now=now)
            view = service.get_application(uow, application_id=view.id)
        return 201, _dump(_read(uow, view))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation="origination.application.submit",
        now=container.clock.now(),
        work=work,
        claim_apart=False,  # one commit: the claim, the application and its decision together
        along=business_date_ahead(),  # the work's first read, in the claim's statement
    )


@router.get("/applications", response_model=ApplicationPage)
def list_applications(
    uow: UowDep,
    principal: PrincipalDep,
    status: ApplicationStatus | None = None,
    customer_id: Annotated[str | None, Query(pattern=CUSTOMER_ID_PATTERN)] = None,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ApplicationPage:
    """Applications in id order: reviewers (``application.review``) filter by status, e.g.
    ``?status=referred`` for the review queue; a customer gets their own."""
    if principal.kind == PrincipalKind.CUSTOMER:
        if customer_id is not None and customer_id != principal.customer_id:
            raise PermissionDenied(f"customer principal {principal.id} may list only its own applications")
        customer_id = principal.customer_id
    else:
        require(principal, Permission.APPLICATION_REVIEW)
    items = service.list_applications(
        uow, status=status, customer_id=customer_id, after_id=after_id, limit=limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return ApplicationPage(
        items=[_summary(a) for a in items], next_after_id=items[-1].id if more and items else None
    )


@router.get("/applications/{application_id}", response_model=ApplicationRead)
def get_application(
    application_id: ApplicationId,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> JSONResponse:
    """An application: status, the timeline of its transitions (Chinese and English labels),
    the offer it was made against, and the outcome with the texts the customer is told.
    Reviewers also see reason codes, actors, identity checks (masked by role; audited)."""
    app = _owned(uow, principal, application_id)
    review = None
    if principal.kind != PrincipalKind.CUSTOMER:
        review = service.review_details(
            uow,
            application_id=application_id,
            vault=container.vault,
            principal=principal,
            purpose="application review",
            now=container.clock.now(),
            request_id=request_id,
        )
    body = _read(uow, app, review=review)
    uow.commit()  # the audit row of a staff read
    return JSONResponse(_dump(body))


@router.post("/applications/{application_id}/withdraw", response_model=ApplicationRead)
async def withdraw_application(
    application_id: ApplicationId,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """The customer gives up the application (409 ``illegal_transition`` once it is decided
    against, signed or closed); a pre-approved offer is offered again."""
    _owned(uow, principal, application_id)

    def work() -> tuple[int, object]:
        now = container.clock.now()
        view = service.withdraw_application(
            uow,
            application_id=application_id,
            actor=principal.id,
            business_date=service.current_date(uow.session, now=now, timezone=container.settings.timezone),
            now=now,
        )
        return 200, _dump(_read(uow, view))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"origination.application.{application_id}.withdraw",
        now=container.clock.now(),
        work=work,
    )


# ------------------------------------------------------------------ the e-contract


@router.get("/applications/{application_id}/contract", response_model=ContractRead)
def get_contract(
    application_id: ApplicationId, container: ContainerDep, uow: UowDep, principal: PrincipalDep
) -> ContractRead:
    """The loan contract of an approved application (Chinese with English) and its SHA-256,
    which the acceptance must echo; 409 ``contract_not_available`` before approval."""
    _owned(uow, principal, application_id)
    text = econtract.contract_text(uow, application_id=application_id, vault=container.vault)
    return ContractRead(
        application_id=text.application_id,
        template=text.template,
        text=text.text,
        sha256=text.sha256,
        signed=text.signed,
    )


@router.post("/applications/{application_id}/contract/accept", response_model=ApplicationRead)
async def accept_contract(
    application_id: ApplicationId,
    body: ContractAccept,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Sign the contract: records time, channel, IP, device and the text's hash, and moves the
    application to ``contract_signed``. 409 ``contract_changed`` when the hash is not the
    current text's, ``illegal_transition`` unless approved, ``approval_expired`` after the date."""
    app = _owned(uow, principal, application_id)
    if principal.kind != PrincipalKind.CUSTOMER:
        raise PermissionDenied(f"only the borrower, customer {app.customer_id}, may accept this contract")

    def work() -> tuple[int, object]:
        now = container.clock.now()
        view = econtract.accept_contract(
            uow,
            application_id=application_id,
            sha256=body.sha256,
            channel=body.channel,
            ip=str(body.ip),
            device=econtract.AcceptedDevice(
                fingerprint=body.device.fingerprint,
                os=body.device.os,
                model=body.device.model,
                is_emulator=body.device.is_emulator,
                is_rooted=body.device.is_rooted,
            ),
            actor=principal.id,
            vault=container.vault,
            business_date=service.current_date(uow.session, now=now, timezone=container.settings.timezone),
            now=now,
        )
        return 200, _dump(_read(uow, view))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"origination.application.{application_id}.contract.accept",
        now=container.clock.now(),
        work=work,
    )


# ------------------------------------------------------------------ consents


@router.get("/consent-texts", response_model=list[ConsentTextRead])
def list_consent_texts(kind: ConsentKind | None = None) -> list[ConsentTextRead]:
    """The current text of each consent in Chinese and English, with the SHA-256 that giving
    the consent must echo (public: no sign-in needed)."""
    return [
        ConsentTextRead(
            kind=t.kind.value,
            label_zh=t.kind.label_zh,
            label_en=t.kind.label_en,
            version=t.version,
            language=t.language,
            text=t.text,
            sha256=t.sha256,
        )
        for t in consents.current_texts()
        if kind is None or t.kind is kind
    ]


@router.get("/customers/{customer_id}/consents", response_model=ConsentsRead)
def get_consents(customer_id: CustomerIdPath, uow: UowDep, principal: PrincipalDep) -> ConsentsRead:
    """The customer's current consents: given, withdrawn or never, with the text agreed to."""
    _allow(principal, customer_id=customer_id, permission=Permission.CUSTOMER_READ)
    return ConsentsRead(
        customer_id=customer_id,
        consents=[_consent_read(s) for s in consents.current_consents(uow, customer_id=customer_id)],
    )


@router.post("/customers/{customer_id}/consents", response_model=ConsentRead, status_code=201)
async def give_consent(
    customer_id: CustomerIdPath,
    body: ConsentCreate,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Give a consent to one exact text (kind, version, language and its SHA-256; 409
    ``consent_text_changed`` when the hash is not that text's)."""
    _allow(principal, customer_id=customer_id, permission=Permission.APPLICATION_REVIEW)

    def work() -> tuple[int, object]:
        now = container.clock.now()
        state = consents.give_consent(
            uow,
            customer_id=customer_id,
            kind=body.kind,
            version=body.version,
            language=body.language,
            text_sha256=body.text_sha256,
            channel=body.channel,
            ip=None if body.ip is None else str(body.ip),
            actor=principal.id,
            business_date=service.current_date(uow.session, now=now, timezone=container.settings.timezone),
            now=now,
        )
        return 201, _dump(_consent_read(state))

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"origination.consent.{customer_id}.give",
        now=container.clock.now(),
        work=work,
    )


@router.post("/customers/{customer_id}/consents/{kind}/withdraw", response_model=ConsentWithdrawRead)
async def withdraw_consent(
    customer_id: CustomerIdPath,
    kind: ConsentKind,
    body: ConsentWithdraw,
    request: Request,
    container: ContainerDep,
    uow: UowDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Withdraw a consent (409 ``consent_not_given`` when it is not given). Withdrawing the
    credit-bureau or personal-information consent cancels an application in progress."""
    _allow(principal, customer_id=customer_id, permission=Permission.APPLICATION_REVIEW)

    def work() -> tuple[int, object]:
        now = container.clock.now()
        result = consents.withdraw_consent(
            uow,
            customer_id=customer_id,
            kind=kind,
            channel=body.channel,
            ip=None if body.ip is None else str(body.ip),
            actor=principal.id,
            business_date=service.current_date(uow.session, now=now, timezone=container.settings.timezone),
            now=now,
        )
        read = ConsentWithdrawRead(
            consent=_consent_read(result.state), cancelled_application_id=result.cancelled_application_id
        )
        return 200, _dump(read)

    return await run_idempotent(
        request,
        uow=uow,
        principal=principal,
        operation=f"origination.consent.{customer_id}.{kind.value}.withdraw",
        now=container.clock.now(),
        work=work,
    )
