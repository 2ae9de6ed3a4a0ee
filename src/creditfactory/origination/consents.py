"""Consents: the texts a customer agrees to, and the record of each consent given or withdrawn.

The texts ship with the package as versioned files, one per kind, version and language
(``texts/consent/bureau_inquiry.v1.zh.txt``). A customer gives a consent to one exact text: the
request names the kind, version and language and echoes the text's SHA-256, so that what was
agreed to is provable later; a hash that does not match the shipped text is refused. Each act
is one row (kind, given or withdrawn, version, language, hash, channel, IP, time) and the
newest row per kind is the customer's current state.

Withdrawing the credit-bureau or personal-information consent cancels the customer's
application in progress; withdrawing the marketing consent is what outreach reads
(:func:`marketing_opt_outs`) to stop contacting the customer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources

from sqlalchemy import func, select

from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Conflict, NotFound
from creditfactory.events import Event, append
from creditfactory.origination import service, store
from creditfactory.origination.events import CONSENT_GIVEN, CONSENT_WITHDRAWN
from creditfactory.origination.model import REQUIRED_CONSENTS, Channel, ConsentAction, ConsentKind
from creditfactory.origination.store import Consent

LANGUAGES = ("zh", "en")

_FILE = re.compile(r"^(?P<kind>[a-z_]+)\.(?P<version>v\d+)\.(?P<language>zh|en)\.txt$")


class ConsentTextNotFound(NotFound):
    code = "consent_text_not_found"
    title = "Consent text not found"


class ConsentTextChanged(Conflict):
    code = "consent_text_changed"
    title = "The consent text agreed to is not the text on file"


class ConsentNotGiven(Conflict):
    code = "consent_not_given"
    title = "The consent is not given"


@dataclass(frozen=True, slots=True)
class ConsentText:
    kind: ConsentKind
    version: str
    language: str
    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A customer's current state of one consent (``never`` when no act was recorded)."""

    customer_id: str
    kind: ConsentKind
    status: str
    version: str | None = None
    language: str | None = None
    text_sha256: str | None = None
    channel: Channel | None = None
    at: datetime | None = None
    business_date: date | None = None

    @property
    def given(self) -> bool:
        return self.status == ConsentAction.GIVEN.value


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One consent act as recorded."""

    customer_id: str
    kind: ConsentKind
    action: ConsentAction
    version: str
    language: str
    text_sha256: str
    channel: Channel
    ip: str | None
    actor: str
    business_date: date
    at: datetime


@dataclass(frozen=True, slots=True)
class WithdrawResult:
    state: ConsentState
    cancelled_application_id: int | None


# ------------------------------------------------------------------ texts


def _version_number(version: str) -> int:
    return int(version[1:])


@cache
def _catalogue() -> dict[tuple[ConsentKind, str, str], ConsentText]:
    found: dict[tuple[ConsentKind, str, str], ConsentText] = {}
    folder = resources.files("creditfactory.origination").joinpath("texts", "consent")
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        raw = entry.read_bytes()
        kind = ConsentKind(match["kind"])
        found[(kind, match["version"], match["language"])] = ConsentText(
            kind=kind,
            version=match["version"],
            language=match["language"],
            text=raw.decode("utf-8"),
            sha256=hashlib.sha256(raw).hexdigest(),
        )
    return found


def current_version(kind: ConsentKind) -> str:
    """The newest version of a kind's text (the one customers are asked to agree to)."""
    versions = {v for (k, v, _) in _catalogue() if k is kind}
    if not versions:
        raise ConsentTextNotFound(f"no text is shipped for consent {kind.value}", kind=kind.value)
    return max(versions, key=_version_number)


def consent_text(kind: ConsentKind | str, *, language: str, version: str | None = None) -> ConsentText:
    """The text of a consent (the current version unless ``version`` is given)."""
    chosen = ConsentKind(kind)
    wanted = version or current_version(chosen)
    try:
        return _catalogue()[(chosen, wanted, language)]
    except KeyError:
        raise ConsentTextNotFound(
            f"no {language!r} text of version {wanted!r} for consent {chosen.value}",
            kind=chosen.value,
            version=wanted,
            language=language,
        ) from None


def current_texts() -> list[ConsentText]:
    """The current text of every kind in every language."""
    return [consent_text(kind, language=lang) for kind in ConsentKind for lang in LANGUAGES]


# ------------------------------------------------------------------ acts


def _state(customer_id: str, kind: ConsentKind, row: Consent | None) -> ConsentState:
    if row is None:
        return ConsentState(customer_id=customer_id, kind=kind, status="never")
    return ConsentState(
        customer_id=customer_id,
        kind=kind,
        status=row.action.value,
        version=row.text_version,
        language=row.language,
        text_sha256=row.text_sha256,
        channel=row.channel,
        at=row.at,
        business_date=row.business_date,
    )


def give_consent(
    uow: UnitOfWork,
    *,
    customer_id: str,
    kind: ConsentKind | str,
    version: str,
    language: str,
    text_sha256: str,
    channel: Channel | str,
    actor: str,
    business_date: date,
    now: datetime,
    ip: str | None = None,
) -> ConsentState:
    """Record that the customer agreed to one exact text (409 ``consent_text_changed`` when the
    hash is not that text's). Agreeing again to the text already agreed to changes nothing."""
    session = uow.session
    chosen = ConsentKind(kind)
    text = consent_text(chosen, language=language, version=version)
    if text_sha256.lower() != text.sha256:
        raise ConsentTextChanged(
            f"the {chosen.value} text {version} ({language}) on file has SHA-256 {text.sha256}, "
            f"not {text_sha256}: show the customer the text on file and ask again",
            kind=chosen.value,
            sha256=text.sha256,
        )
    current = store.latest_consents(session, customer_id).get(chosen)
    if (
        current is not None
        and current.action is ConsentAction.GIVEN
        and (current.text_version, current.language, current.text_sha256) == (version, language, text.sha256)
    ):
        return _state(customer_id, chosen, current)
    row = Consent(
        customer_id=customer_id,
        kind=chosen,
        action=ConsentAction.GIVEN,
        text_version=version,
        language=language,
        text_sha256=text.sha256,
        channel=Channel(channel),
        ip=ip,
        actor=actor,
        business_date=business_date,
        at=now,
    )
    session.add(row)
    session.flush()
    append(
        session,
        Event(
            CONSENT_GIVEN,
            {
                "customer_id": customer_id,
                "kind": chosen.value,
                "version": version,
                "language": language,
                "text_sha256": text.sha256,
                "channel": row.channel.value,
                "business_date": business_date.isoformat(),
                "at": now.isoformat(),
            },
        ),
        now=now,
    )
    return _state(customer_id, chosen, row)


def withdraw_consent(
    uow: UnitOfWork,
    *,
    customer_id: str,
    kind: ConsentKind | str,
    channel: Channel | str,
    actor: str,
    business_date: date,
    now: datetime,
    ip: str | None = None,
) -> WithdrawResult:
    """Record the withdrawal of a consent (409 ``consent_not_given`` when it is not given).

    Withdrawing a consent an application needs cancels the customer's application in progress
    (``cancelled``, with the consent as the reason; a signed contract is not undone).
    """
    session = uow.session
    chosen = ConsentKind(kind)
    current = store.latest_consents(session, customer_id).get(chosen)
    if current is None or current.action is not ConsentAction.GIVEN:
        raise ConsentNotGiven(
            f"customer {customer_id} has no {chosen.value} consent to withdraw", kind=chosen.value
        )
    row = Consent(
        customer_id=customer_id,
        kind=chosen,
        action=ConsentAction.WITHDRAWN,
        text_version=current.text_version,
        language=current.language,
        text_sha256=current.text_sha256,
        channel=Channel(channel),
        ip=ip,
        actor=actor,
        business_date=business_date,
        at=now,
    )
    session.add(row)
    session.flush()
    cancelled = None
    if chosen in REQUIRED_CONSENTS:
        view = service.cancel_in_progress(
            uow,
            customer_id=customer_id,
            actor=actor,
            business_date=business_date,
            now=now,
            reason=f"consent {chosen.value} ({chosen.label_zh}) withdrawn",
        )
        cancelled = view.id if view is not None else None
    append(
        session,
        Event(
            CONSENT_WITHDRAWN,
            {
                "customer_id": customer_id,
                "kind": chosen.value,
                "channel": row.channel.value,
                "business_date": business_date.isoformat(),
                "at": now.isoformat(),
                "cancelled_application_id": cancelled,
            },
        ),
        now=now,
    )
    return WithdrawResult(_state(customer_id, chosen, row), cancelled)


# ------------------------------------------------------------------ reads


def current_consents(uow: UnitOfWork, *, customer_id: str) -> list[ConsentState]:
    """The customer's current state of every kind of consent."""
    latest = store.latest_consents(uow.session, customer_id)
    return [_state(customer_id, kind, latest.get(kind)) for kind in ConsentKind]


def consent_history(uow: UnitOfWork, *, customer_id: str) -> list[ConsentRecord]:
    """Every consent act of the customer, oldest first."""
    return [
        ConsentRecord(
            customer_id=r.customer_id,
            kind=r.kind,
            action=r.action,
            version=r.text_version,
            language=r.language,
            text_sha256=r.text_sha256,
            channel=r.channel,
            ip=r.ip,
            actor=r.actor,
            business_date=r.business_date,
            at=r.at,
        )
        for r in store.list_consents(uow.session, customer_id)
    ]


def has_consent(uow: UnitOfWork, *, customer_id: str, kind: ConsentKind | str) -> bool:
    """Whether the customer's consent of ``kind`` is given now."""
    row = store.latest_consents(uow.session, customer_id).get(ConsentKind(kind))
    return row is not None and row.action is ConsentAction.GIVEN


def marketing_opt_outs(uow: UnitOfWork, *, since: datetime | None = None) -> dict[str, datetime]:
    """Customers whose marketing consent is withdrawn now, with when they withdrew it
    (``since``: only withdrawals at or after it). Outreach excludes them from campaigns."""
    newest = (
        select(Consent.customer_id, func.max(Consent.id).label("id"))
        .where(Consent.kind == ConsentKind.MARKETING)
        .group_by(Consent.customer_id)
        .subquery()
    )
    query = (
        select(Consent.customer_id, Consent.at)
        .join(newest, newest.c.id == Consent.id)
        .where(Consent.action == ConsentAction.WITHDRAWN)
    )
    if since is not None:
        query = query.where(Consent.at >= since)
    return {cid: at for cid, at in uow.session.execute(query.order_by(Consent.customer_id))}
