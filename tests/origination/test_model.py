"""The application's state machine and the pure checks of origination (no database)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from creditfactory.origination.model import (
    EMITTED,
    IN_PROGRESS,
    TRANSITIONS,
    AmountAboveOffer,
    AmountOutsideProduct,
    ApplicantUnderAge,
    ApplicationEvent,
    ApplicationStatus,
    DecisionOutsideProduct,
    IllegalTransition,
    MethodNotOffered,
    ProductTerms,
    TermNotOffered,
    allowed_events,
    apply,
    check_age,
    check_approval,
    check_request,
    dry_run,
    next_status,
    submission,
    yuan_in_words,
)

S, E = ApplicationStatus, ApplicationEvent
D = Decimal
ON = date(2025, 7, 1)

#: Every legal move, written out by hand from the lifecycle the business describes.
LEGAL = {
    (S.SUBMITTED, E.APPROVE): S.APPROVED,
    (S.SUBMITTED, E.DECLINE): S.DECLINED,
    (S.SUBMITTED, E.REFER): S.REFERRED,
    (S.REFERRED, E.APPROVE): S.APPROVED,
    (S.REFERRED, E.DECLINE): S.DECLINED,
    (S.APPROVED, E.SIGN_CONTRACT): S.CONTRACT_SIGNED,
    (S.CONTRACT_SIGNED, E.OPEN_LINE): S.LINE_OPENED,
    (S.SUBMITTED, E.WITHDRAW): S.WITHDRAWN,
    (S.REFERRED, E.WITHDRAW): S.WITHDRAWN,
    (S.APPROVED, E.WITHDRAW): S.WITHDRAWN,
    (S.SUBMITTED, E.CANCEL): S.CANCELLED,
    (S.REFERRED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.EXPIRE): S.EXPIRED,
}

EVENT_NAMES = {
    E.SUBMIT: "origination.application.submitted",
    E.APPROVE: "origination.application.approved",
    E.DECLINE: "origination.application.declined",
    E.REFER: "origination.application.referred",
    E.SIGN_CONTRACT: "origination.contract.accepted",
    E.OPEN_LINE: "origination.application.line_opened",
    E.WITHDRAW: "origination.application.withdrawn",
    E.CANCEL: "origination.application.cancelled",
    E.EXPIRE: "origination.application.expired",
}


class TestStateMachine:
    def test_the_table_is_exactly_the_lifecycle(self) -> None:
        assert dict(TRANSITIONS) == LEGAL

    @pytest.mark.parametrize(("move", "target"), list(LEGAL.items()), ids=lambda v: str(v))
    def test_every_legal_move(
        self, move: tuple[ApplicationStatus, ApplicationEvent], target: ApplicationStatus
    ) -> None:
        state, event = move
        assert next_status(state, event) is target
        t = apply(state, event, actor="S001", business_date=ON, reason="why")
        assert (t.source, t.target, t.event, t.actor, t.business_date, t.reason) == (
            state,
            target,
            event,
            "S001",
            ON,
            "why",
        )
        assert t.event_name == EVENT_NAMES[event]
        assert dry_run(state, event).allowed and dry_run(state, event).target is target

    @pytest.mark.parametrize(
        ("state", "event"),
        [(s, e) for s in S for e in E if (s, e) not in LEGAL],
        ids=lambda v: str(v),
    )
    def test_every_other_move_is_refused_naming_what_is_allowed(
        self, state: ApplicationStatus, event: ApplicationEvent
    ) -> None:
        with pytest.raises(IllegalTransition) as caught:
            next_status(state, event)
        allowed = [e.value for (s, e) in LEGAL if s is state]
        assert caught.value.details["allowed"] == allowed
        assert caught.value.http_status == 409 and caught.value.code == "illegal_transition"
        if allowed:
            assert f"allowed events are: {', '.join(allowed)}" in caught.value.message
        else:
            assert "nothing (final status)" in caught.value.message
        run = dry_run(state, event)
        assert not run.allowed and run.target is None and run.message == caught.value.message

    def test_final_and_in_progress_statuses(self) -> None:
        assert {s for s in S if s.final} == {S.DECLINED, S.LINE_OPENED, S.WITHDRAWN, S.CANCELLED, S.EXPIRED}
        assert IN_PROGRESS == {S.SUBMITTED, S.REFERRED, S.APPROVED, S.CONTRACT_SIGNED}
        assert allowed_events(S.REFERRED) == (E.APPROVE, E.DECLINE, E.WITHDRAW, E.CANCEL)

    def test_submission_is_the_only_way_in(self) -> None:
        t = submission(actor="cust-1", business_date=ON)
        assert (t.source, t.target, t.event_name) == (None, S.SUBMITTED, "origination.application.submitted")
        with pytest.raises(IllegalTransition):
            apply(S.SUBMITTED, E.SUBMIT, actor="x", business_date=ON)

    def test_every_event_has_a_dotted_name(self) -> None:
        assert dict(EMITTED) == EVENT_NAMES

    def test_a_transition_needs_an_actor_and_a_plain_date(self) -> None:
        with pytest.raises(ValueError, match="actor"):
            apply(S.SUBMITTED, E.APPROVE, actor="", business_date=ON)
        with pytest.raises(TypeError, match="datetime.date"):
            apply(S.SUBMITTED, E.APPROVE, actor="x", business_date=datetime(2025, 7, 1))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            next_status("submitted", E.APPROVE)  # type: ignore[arg-type]

    def test_labels_in_both_languages(self) -> None:
        assert (S.REFERRED.label_zh, S.REFERRED.label_en) == ("人工审核中", "Under review by our staff")
        assert all(s.label_zh and s.label_en for s in S)


PRODUCT = ProductTerms(
    code="consumer",
    name="薪金消费贷",
    min_amount=D("5000"),
    max_amount=D("300000"),
    terms=(6, 12, 24, 36),
    methods=("equal_installment", "equal_principal"),
    min_annual_rate=D("0.03"),
    max_annual_rate=D("0.24"),
    list_annual_rate=D("0.0435"),
)


class TestRequestChecks:
    def test_a_fitting_request_passes(self) -> None:
        check_request(PRODUCT, amount=D("5000.00"), term=12, method="equal_installment")
        check_request(PRODUCT, amount=D("300000"), term=36, method="equal_principal", offer_limit=D("300000"))

    @pytest.mark.parametrize("amount", ["4999.99", "300000.01", "0.01"])
    def test_amounts_outside_the_product(self, amount: str) -> None:
        with pytest.raises(AmountOutsideProduct) as caught:
            check_request(PRODUCT, amount=D(amount), term=12, method="equal_installment")
        assert caught.value.code == "amount_outside_product" and caught.value.http_status == 422

    def test_an_amount_off_the_fen_grid(self) -> None:
        with pytest.raises(Exception, match="whole number of fen"):
            check_request(PRODUCT, amount=D("5000.001"), term=12, method="equal_installment")
        with pytest.raises(TypeError):
            check_request(PRODUCT, amount=5000.0, term=12, method="equal_installment")  # type: ignore[arg-type]

    def test_a_term_the_product_does_not_offer(self) -> None:
        with pytest.raises(TermNotOffered, match="offers 6, 12, 24, 36 months"):
            check_request(PRODUCT, amount=D("6000"), term=18, method="equal_installment")

    def test_a_method_the_product_does_not_offer(self) -> None:
        with pytest.raises(MethodNotOffered, match="bullet"):
            check_request(PRODUCT, amount=D("6000"), term=12, method="bullet")

    def test_an_amount_above_the_offer(self) -> None:
        with pytest.raises(AmountAboveOffer) as caught:
            check_request(
                PRODUCT, amount=D("50000.01"), term=12, method="equal_installment", offer_limit=D("50000")
            )
        assert caught.value.details["offer_limit"] == "50000"

    def test_approvals_within_the_product(self) -> None:
        check_approval(PRODUCT, limit=D("300000.00"), annual_rate=D("0.24"))
        for limit, rate in (
            (D("300000.01"), D("0.05")),
            (D("100.00"), D("0.05")),
            (D("6000.001"), D("0.05")),
        ):
            with pytest.raises(DecisionOutsideProduct, match="limit"):
                check_approval(PRODUCT, limit=limit, annual_rate=rate)
        with pytest.raises(DecisionOutsideProduct, match="rate"):
            check_approval(PRODUCT, limit=D("6000"), annual_rate=D("0.2401"))
        with pytest.raises(DecisionOutsideProduct):
            check_approval(PRODUCT, limit=6000.0, annual_rate=D("0.05"))  # type: ignore[arg-type]

    def test_age(self) -> None:
        check_age(18)
        with pytest.raises(ApplicantUnderAge):
            check_age(17)


class TestAmountInWords:
    # Examples from the PBOC's payment and settlement measures (支付结算办法) and bank practice.
    @pytest.mark.parametrize(
        ("amount", "words"),
        [
            ("1409.50", "壹仟肆佰零玖元伍角"),
            ("6007.14", "陆仟零柒元壹角肆分"),
            ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),
            ("107000.53", "壹拾万柒仟元零伍角叁分"),
            ("325.04", "叁佰贰拾伍元零肆分"),
            ("16.00", "壹拾陆元整"),
            ("50000", "伍万元整"),
            ("100010000", "壹亿零壹万元整"),
            ("100500", "壹拾万零伍佰元整"),
            ("0.05", "伍分"),
            ("0", "零元整"),
        ],
    )
    def test_worked_examples(self, amount: str, words: str) -> None:
        assert yuan_in_words(D(amount)) == words

    def test_refuses_floats_and_sub_fen(self) -> None:
        with pytest.raises(TypeError):
            yuan_in_words(1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            yuan_in_words(D("1.005"))
