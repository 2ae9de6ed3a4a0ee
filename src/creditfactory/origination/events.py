"""The dotted events origination emits through the outbox, and what their payloads hold.

Application events (one per state-machine move; payload: ``application_id``, ``customer_id``,
``product_code``, ``status``, ``previous_status``, ``actor``, ``business_date``, ``reason``, and
the extra fields listed):

* ``origination.application.submitted`` — ``amount``, ``term_months``, ``channel``,
  ``offer_version_id``, ``submitted_at``
* ``origination.application.approved`` / ``.declined`` / ``.referred`` — ``decision_id``,
  ``outcome``, ``limit``, ``annual_rate``, ``reasons``, ``decided_by``, ``approval_expiry_date``
* ``origination.contract.accepted`` — ``limit``, ``annual_rate``, ``term_months``,
  ``repayment_method``, ``offer_version_id``, ``decision_id``, ``contract_template``,
  ``contract_sha256``, ``channel``, ``accepted_at`` (servicing opens the credit line from it)
* ``origination.application.line_opened`` — ``line_id``
* ``origination.application.withdrawn`` / ``.cancelled`` / ``.expired``

Consent events (payload: ``customer_id``, ``kind``, ``channel``, ``business_date``, ``at``):

* ``origination.consent.given`` — ``version``, ``language``, ``text_sha256``
* ``origination.consent.withdrawn`` — ``cancelled_application_id`` (or ``None``)

Amounts and rates travel as decimal strings, dates and times as ISO text.
"""

from __future__ import annotations

from creditfactory.origination.model import EMITTED, ApplicationEvent

APPLICATION_SUBMITTED = EMITTED[ApplicationEvent.SUBMIT]
APPLICATION_APPROVED = EMITTED[ApplicationEvent.APPROVE]
APPLICATION_DECLINED = EMITTED[ApplicationEvent.DECLINE]
APPLICATION_REFERRED = EMITTED[ApplicationEvent.REFER]
CONTRACT_ACCEPTED = EMITTED[ApplicationEvent.SIGN_CONTRACT]
APPLICATION_LINE_OPENED = EMITTED[ApplicationEvent.OPEN_LINE]
APPLICATION_WITHDRAWN = EMITTED[ApplicationEvent.WITHDRAW]
APPLICATION_CANCELLED = EMITTED[ApplicationEvent.CANCEL]
APPLICATION_EXPIRED = EMITTED[ApplicationEvent.EXPIRE]
CONSENT_GIVEN = "origination.consent.given"
CONSENT_WITHDRAWN = "origination.consent.withdrawn"

ALL = (
    APPLICATION_SUBMITTED,
    APPLICATION_APPROVED,
    APPLICATION_DECLINED,
    APPLICATION_REFERRED,
    CONTRACT_ACCEPTED,
    APPLICATION_LINE_OPENED,
    APPLICATION_WITHDRAWN,
    APPLICATION_CANCELLED,
    APPLICATION_EXPIRED,
    CONSENT_GIVEN,
    CONSENT_WITHDRAWN,
)
