"""Consents: shipped texts, given and withdrawn, a withdrawal in the middle of an application."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from importlib import resources
from typing import Any

import pytest

from creditfactory import origination
from creditfactory.origination import consents, service
from tests.origination.conftest import ON, World

K = origination.ConsentKind


class TestTexts:
    def test_every_kind_ships_in_chinese_and_english_with_its_hash(self) -> None:
        texts = consents.current_texts()
        assert {(t.kind, t.language) for t in texts} == {(k, lang) for k in K for lang in ("zh", "en")}
        folder = resources.files("creditfactory.origination").joinpath("texts", "consent")
        for t in texts:
            raw = folder.joinpath(f"{t.kind.value}.{t.version}.{t.language}.txt").read_bytes()
            assert t.sha256 == hashlib.sha256(raw).hexdigest() and t.text == raw.decode()
        bureau = consents.consent_text(K.BUREAU_INQUIRY, language="zh")
        assert bureau.version == "v1" and "征信" in bureau.text
        assert "Credit Reference Center" in consents.consent_text(K.BUREAU_INQUIRY, language="en").text

    def test_an_unknown_version_or_language(self) -> None:
        with pytest.raises(origination.ConsentTextNotFound):
            consents.consent_text(K.MARKETING, language="zh", version="v9")
        with pytest.raises(origination.ConsentTextNotFound):
            consents.consent_text(K.MARKETING, language="fr")


def give(
    world: World, customer_id: str, kind: K, *, sha256: str | None = None, language: str = "zh"
) -> consents.ConsentState:
    text = consents.consent_text(kind, language=language)
    with world.container.uow() as uow:
        state = consents.give_consent(
            uow,
            customer_id=customer_id,
            kind=kind,
            version=text.version,
            language=language,
            text_sha256=sha256 or text.sha256,
            channel="wechat",
            ip="192.0.2.7",
            actor=f"cust-{customer_id}",
            business_date=ON,
            now=world.now,
        )
        uow.commit()
    return state


def withdraw(world: World, customer_id: str, kind: K) -> consents.WithdrawResult:
    with world.container.uow() as uow:
        result = consents.withdraw_consent(
            uow,
            customer_id=customer_id,
            kind=kind,
            channel="app",
            actor=f"cust-{customer_id}",
            business_date=ON,
            now=world.now,
        )
        uow.commit()
    return result


class TestGiveAndWithdraw:
    def test_a_consent_records_the_exact_text_and_reads_back(self, world: World) -> None:
        state = give(world, "C0001", K.BUREAU_INQUIRY, language="en")
        text = consents.consent_text(K.BUREAU_INQUIRY, language="en")
        assert (state.status, state.version, state.language, state.text_sha256, state.channel, state.at) == (
            "given",
            "v1",
            "en",
            text.sha256,
            origination.Channel.WECHAT,
            world.now,
        )
        with world.container.uow() as uow:
            current = {s.kind: s.status for s in consents.current_consents(uow, customer_id="C0001")}
            assert consents.has_consent(uow, customer_id="C0001", kind=K.BUREAU_INQUIRY)
            assert not consents.has_consent(uow, customer_id="C0001", kind=K.MARKETING)
        assert current == {K.BUREAU_INQUIRY: "given", K.PERSONAL_INFORMATION: "never", K.MARKETING: "never"}
        [(name, payload)] = world.events("origination.consent")
        assert name == "origination.consent.given" and payload["text_sha256"] == text.sha256

    def test_giving_the_same_consent_again_changes_nothing(self, world: World) -> None:
        give(world, "C0001", K.MARKETING)
        before = world.counts()
        give(world, "C0001", K.MARKETING)
        assert world.counts() == before

    def test_a_hash_that_is_not_the_texts_is_refused(self, world: World) -> None:
        before = world.counts()
        with pytest.raises(origination.ConsentTextChanged) as caught:
            give(world, "C0001", K.BUREAU_INQUIRY, sha256="0" * 64)
        assert caught.value.code == "consent_text_changed" and caught.value.http_status == 409
        assert world.counts() == before

    def test_withdrawing_what_was_never_given(self, world: World) -> None:
        with pytest.raises(origination.ConsentNotGiven):
            withdraw(world, "C0001", K.MARKETING)
        give(world, "C0001", K.MARKETING)
        withdraw(world, "C0001", K.MARKETING)
        with pytest.raises(origination.ConsentNotGiven):
            withdraw(world, "C0001", K.MARKETING)


class TestReadWithTheSubmission:
    def test_the_newest_action_of_each_kind_as_the_records_read_one_by_one(self, world: World) -> None:
        """A submission reads the consents with the offer and the record (on PostgreSQL one
        statement aggregating them in the records' order): given, withdrawn and given again,
        each kind's newest action is the one that counts, as reading the records says."""
        from creditfactory.origination import store
        from creditfactory.origination.service import _applicant_reads

        def both() -> tuple[dict[K, Any], dict[K, Any]]:
            with world.container.uow() as uow:
                _, together, _ = _applicant_reads(uow, customer_id="C0001", on=ON)
                return together, store.latest_consent_actions(uow.session, "C0001")

        assert both() == ({}, {})
        give(world, "C0001", K.MARKETING)
        give(world, "C0001", K.BUREAU_INQUIRY)
        withdraw(world, "C0001", K.MARKETING)
        together, alone = both()
        assert (
            together
            == alone
            == {K.MARKETING: consents.ConsentAction.WITHDRAWN, K.BUREAU_INQUIRY: consents.ConsentAction.GIVEN}
        )
        give(world, "C0001", K.MARKETING)
        withdraw(world, "C0001", K.BUREAU_INQUIRY)
        together, alone = both()
        assert (
            together
            == alone
            == {K.MARKETING: consents.ConsentAction.GIVEN, K.BUREAU_INQUIRY: consents.ConsentAction.WITHDRAWN}
        )


class TestWithdrawalMidApplication:
    @pytest.mark.parametrize("kind", [K.BUREAU_INQUIRY, K.PERSONAL_INFORMATION])
    def test_a_required_consent_withdrawn_cancels_the_application(self, offered: World, kind: K) -> None:
        offered.consent("C0001")
        app = offered.submit("C0001")
        offered.decide(app.id, "refer")
        assert offered.entry_status("C0001") == "applied"
        result = withdraw(offered, "C0001", kind)
        assert result.cancelled_application_id == app.id and result.state.status == "withdrawn"
        view = offered.application(app.id)
        assert view.status is origination.ApplicationStatus.CANCELLED
        with offered.container.uow() as uow:
            last = service.timeline(uow, application_id=app.id)[-1]
        assert (last.event.value, last.from_status, last.reason) == (
            "cancel",
            origination.ApplicationStatus.REFERRED,
            f"consent {kind.value} ({kind.label_zh}) withdrawn",
        )
        names = [n for n, _ in offered.events()]
        assert names[-2:] == ["origination.application.cancelled", "origination.consent.withdrawn"]
        assert offered.events("origination.consent.withdrawn")[0][1]["cancelled_application_id"] == app.id
        assert offered.entry_status("C0001") == "offered"
        # Nothing can be decided on it any more, and a new application needs the consent again.
        with pytest.raises(origination.IllegalTransition):
            offered.decide(app.id, "approve")
        with pytest.raises(service.ConsentRequired):
            offered.submit("C0001")

    def test_withdrawing_marketing_leaves_the_application_alone(self, world: World) -> None:
        world.consent("C0001", K.BUREAU_INQUIRY, K.PERSONAL_INFORMATION, K.MARKETING)
        app = world.submit("C0001")
        result = withdraw(world, "C0001", K.MARKETING)
        assert result.cancelled_application_id is None
        assert world.application(app.id).status is origination.ApplicationStatus.SUBMITTED

    def test_a_signed_contract_is_not_undone(self, world: World) -> None:
        from tests.origination.test_contract import sign

        world.consent("C0001")
        app = world.submit("C0001")
        world.decide(app.id, "approve")
        sign(world, app.id)
        result = withdraw(world, "C0001", K.BUREAU_INQUIRY)
        assert result.cancelled_application_id is None
        assert world.application(app.id).status is origination.ApplicationStatus.CONTRACT_SIGNED


class TestMarketingOptOuts:
    def test_outreach_reads_who_withdrew_marketing_consent(self, world: World) -> None:
        clock = world.container.clock
        for cid in ("C0001", "C0002", "C0003"):
            give(world, cid, K.MARKETING)
        withdraw(world, "C0001", K.MARKETING)
        clock.advance(days=1)  # type: ignore[attr-defined]
        withdrawn_at = world.now
        withdraw(world, "C0002", K.MARKETING)
        withdraw(world, "C0003", K.MARKETING)
        give(world, "C0003", K.MARKETING)  # changed their mind
        with world.container.uow() as uow:
            assert origination.marketing_opt_outs(uow) == {
                "C0001": withdrawn_at - timedelta(days=1),
                "C0002": withdrawn_at,
            }
            assert origination.marketing_opt_outs(uow, since=withdrawn_at) == {"C0002": withdrawn_at}
            history = consents.consent_history(uow, customer_id="C0003")
        assert [(c.kind.value, c.action.value) for c in history] == [
            ("marketing", "given"),
            ("marketing", "withdrawn"),
            ("marketing", "given"),
        ]
