"""The e-contract: its text and hash, acceptance, the line opened, and what is refused."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest

from creditfactory import origination
from creditfactory.origination import econtract
from tests.origination.conftest import ON, World, applicant

D = Decimal
DEVICE = econtract.AcceptedDevice(fingerprint="dev-C0001", os="Android 14", model="HUAWEI P60")


def text_of(world: World, application_id: int) -> econtract.ContractText:
    with world.container.uow() as uow:
        return econtract.contract_text(uow, application_id=application_id, vault=world.container.vault)


def sign(
    world: World, application_id: int, *, sha256: str | None = None, on=ON
) -> origination.ApplicationView:  # type: ignore[no-untyped-def]
    digest = sha256 or text_of(world, application_id).sha256
    with world.container.uow() as uow:
        view = econtract.accept_contract(
            uow,
            application_id=application_id,
            sha256=digest,
            channel="app",
            ip="10.20.30.40",
            device=DEVICE,
            actor="cust-C0001",
            vault=world.container.vault,
            business_date=on,
            now=world.now,
        )
        uow.commit()
    return view


@pytest.fixture
def approved(offered: World) -> tuple[World, int]:
    offered.consent("C0001")
    app = offered.submit("C0001", term_months=24)
    offered.decide(app.id, "approve", limit=D("30000.00"), annual_rate=D("0.0435"))
    return offered, app.id


class TestText:
    def test_the_contract_states_the_terms_and_the_masked_borrower(self, approved: tuple[World, int]) -> None:
        world, app_id = approved
        contract = text_of(world, app_id)
        text = contract.text
        assert contract.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert contract.template == "loan_contract.v1" and not contract.signed
        name, number, _ = (applicant("C0001").name, applicant("C0001").id_number, applicant("C0001").phone)
        assert '借款人（乙方）/ Borrower ("Party B"): 张*' in text
        assert f"证件号码 / ID number: {number[:3]}{'*' * 11}{number[-4:]}" in text
        assert number not in text and name not in text
        assert "人民币叁万元整（¥30,000.00）的贷款" in text and "lend Party B CNY 30,000.00." in text
        assert "年利率为4.35%（单利），每月按30天、每年按360天计息" in text
        assert "逾期本金按年利率6.525%计收罚息" in text  # the product's penalty rate, 1.5 x 4.35%
        assert "借款期限为24个月" in text and "The term is 24 months." in text
        assert "等额本息 / equal monthly instalments of principal and interest" in text
        assert "借款用途 / Purpose: 家居装修 / Home renovation" in text
        assert f"合同编号 / Contract No.: CF-20250701-{app_id:08d}" in text
        assert "请于 2025-07-31 前签署" in text
        assert "{{" not in text and "}}" not in text

    def test_the_same_application_gives_the_same_text(self, approved: tuple[World, int]) -> None:
        world, app_id = approved
        assert text_of(world, app_id) == text_of(world, app_id)

    def test_a_revolving_line_reads_as_a_line(self, world: World) -> None:
        world.consent("C0001")
        app = world.submit(
            "C0001",
            product_code="farmer_revolving_line",
            repayment_method="interest_only",
            term_months=12,
            purpose=origination.Purpose.FARMING,
        )
        world.decide(app.id, "approve", limit=D("100000.50"), annual_rate=D("0.0395"))
        text = text_of(world, app.id).text
        assert "人民币壹拾万元零伍角（¥100,000.50）的循环授信额度" in text
        assert "grant Party B a revolving credit line of CNY 100,000.50." in text
        assert "每笔提款的期限" in text and "按实际天数计息，日利率 = 年利率 / 360" in text
        assert "先息后本 / monthly interest, principal at maturity" in text

    def test_no_contract_before_approval(self, world: World) -> None:
        world.consent("C0001")
        app = world.submit("C0001")
        with pytest.raises(origination.ContractNotAvailable) as caught:
            text_of(world, app.id)
        assert caught.value.code == "contract_not_available" and caught.value.http_status == 409


class TestAcceptance:
    def test_accepting_signs_the_application_and_tells_servicing(self, approved: tuple[World, int]) -> None:
        world, app_id = approved
        contract = text_of(world, app_id)
        view = sign(world, app_id)
        assert view.status is origination.ApplicationStatus.CONTRACT_SIGNED
        assert view.contract is not None
        c = view.contract
        assert (c.template, c.sha256, c.accepted_at, c.channel, c.ip) == (
            "loan_contract.v1",
            contract.sha256,
            world.now,
            origination.Channel.APP,
            "10.20.30.40",
        )
        assert c.device == {
            "fingerprint": "dev-C0001",
            "os": "Android 14",
            "model": "HUAWEI P60",
            "is_emulator": False,
            "is_rooted": False,
        }
        name, payload = world.events("origination.contract")[-1]
        assert name == "origination.contract.accepted"
        assert {
            k: payload[k] for k in ("application_id", "customer_id", "limit", "annual_rate", "term_months")
        } == {
            "application_id": app_id,
            "customer_id": "C0001",
            "limit": "30000.00",
            "annual_rate": "0.0435",
            "term_months": 24,
        }
        assert (
            payload["contract_sha256"] == contract.sha256
            and payload["repayment_method"] == "equal_installment"
        )
        assert world.entry_status("C0001") == "accepted"
        signed = text_of(world, app_id)
        assert signed.signed and signed.sha256 == contract.sha256

    def test_a_different_hash_changes_nothing(self, approved: tuple[World, int]) -> None:
        world, app_id = approved
        before = world.counts()
        with pytest.raises(origination.ContractChanged) as caught:
            sign(world, app_id, sha256="a" * 64)
        assert (
            caught.value.code == "contract_changed"
            and caught.value.details["sha256"] == text_of(world, app_id).sha256
        )
        assert world.counts() == before
        assert world.application(app_id).status is origination.ApplicationStatus.APPROVED

    def test_only_an_approved_application_is_signed(self, world: World) -> None:
        world.consent("C0001")
        app = world.submit("C0001")
        with pytest.raises(origination.IllegalTransition) as caught:
            sign(world, app.id, sha256="b" * 64)
        assert "sign contract" in caught.value.message

    def test_an_expired_approval_cannot_be_signed(self, approved: tuple[World, int]) -> None:
        world, app_id = approved
        digest = text_of(world, app_id).sha256
        with pytest.raises(origination.ApprovalExpired):
            sign(world, app_id, sha256=digest, on=ON + timedelta(days=31))
        sign(world, app_id, sha256=digest, on=ON + timedelta(days=30))

    def test_the_line_opened_closes_the_application(self, approved: tuple[World, int]) -> None:
        world, app_id = approved
        sign(world, app_id)
        with world.container.uow() as uow:
            view = origination.record_line_opened(
                uow, application_id=app_id, line_id=77, business_date=ON, now=world.now
            )
            again = origination.record_line_opened(
                uow, application_id=app_id, line_id=77, business_date=ON, now=world.now
            )
            uow.commit()
        assert (
            view.status is origination.ApplicationStatus.LINE_OPENED and view.line_id == 77 and again == view
        )
        assert world.events("origination.application.line_opened")[0][1]["line_id"] == 77
        # The customer may apply again once the line is open.
        assert world.submit("C0001", amount=D("6000.00")).status is origination.ApplicationStatus.SUBMITTED
