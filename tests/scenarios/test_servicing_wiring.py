"""Servicing wired to the other domains: every domain's end-of-day steps in one registry, an
accepted e-contract opening its credit line through the outbox, and overdue customers leaving
the whitelist at the end of day."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from creditfactory import jobs, ledger
from creditfactory.bootstrap import Container, register_eod_steps
from creditfactory.events import OutboxMessage, OutboxStatus
from creditfactory.jobs import current_business_date, open_business_date, run_eod
from creditfactory.origination import ApplicationStatus, econtract
from creditfactory.origination import events as origination_events
from creditfactory.servicing import jobs as servicing_jobs
from creditfactory.servicing import service
from creditfactory.servicing.handlers import LineOpener
from creditfactory.servicing.store import CreditLine, Loan
from creditfactory.whitelist.store import WhitelistEntry
from tests.origination.conftest import (  # noqa: F401  (fixtures)
    ON,
    World,
    lines,
    offered,
    publish,
    world,
)

D = Decimal
DEVICE = econtract.AcceptedDevice(fingerprint="dev-C0001", os="Android 14", model="HUAWEI P60")

EVERY_STEP = [
    "servicing.accrue_interest",
    "servicing.mark_overdue",
    "servicing.exit_overdue_customers",
    "servicing.classify",
    "servicing.expire_lines",
    "origination.expire_approvals",
    "whitelist.expire_offers",
    "ledger.fold",
    "servicing.reconcile",
    "ledger.trial_balance",
]


class TestCentralRegistration:
    def test_every_domain_step_is_registered_once_in_order(self) -> None:
        assert [s.name for s in register_eod_steps()] == EVERY_STEP
        assert [s.name for s in register_eod_steps()] == EVERY_STEP  # registering again is a no-op
        orders = [s.order for s in jobs.registry.steps()]
        assert orders == sorted(orders)

    def test_a_built_container_runs_every_step(self, container: Container) -> None:
        with container.uow() as uow:
            ledger.ensure_chart(uow.session)
            open_business_date(uow.session, on=ON, clock=container.clock)
            uow.commit()
        report = run_eod(sessions=container.sessions, clock=container.clock)
        assert [s.name for s in report.steps] == EVERY_STEP
        assert {s.status for s in report.steps} == {"completed"}


# ------------------------------------------------------------------ contract → line


def accept(w: World, application_id: int) -> None:
    with w.container.uow() as uow:
        digest = econtract.contract_text(uow, application_id=application_id, vault=w.container.vault).sha256
    with w.container.uow() as uow:
        econtract.accept_contract(
            uow,
            application_id=application_id,
            sha256=digest,
            channel="app",
            ip="10.20.30.40",
            device=DEVICE,
            actor="cust-C0001",
            vault=w.container.vault,
            business_date=ON,
            now=w.now,
        )
        uow.commit()


def lines_of(w: World, customer_id: str) -> list[CreditLine]:
    with w.container.uow() as uow:
        rows = list(uow.session.scalars(select(CreditLine).where(CreditLine.customer_id == customer_id)))
        uow.session.expunge_all()
        return rows


@pytest.fixture
def signed(offered: World) -> tuple[World, int]:  # noqa: F811
    """C0001 applied for 24 months, was approved for 30,000 at 4.35% and accepted the contract."""
    offered.consent("C0001")
    app = offered.submit("C0001", term_months=24)
    offered.decide(app.id, "approve", limit=D("30000.00"), annual_rate=D("0.0435"))
    accept(offered, app.id)
    return offered, app.id


class TestAcceptedContractOpensTheLine:
    def test_dispatching_the_acceptance_opens_the_line_with_the_contract_terms(
        self, signed: tuple[World, int]
    ) -> None:
        w, app_id = signed
        assert lines_of(w, "C0001") == []
        report = w.container.dispatcher.run_once()
        assert report.dead == 0 and report.retried == 0
        (line,) = lines_of(w, "C0001")
        assert (line.application_id, line.product_code, line.status) == (
            app_id,
            "consumer_equal_installment",
            "active",
        )
        assert (line.limit_amount, line.annual_rate, line.used_amount) == (D("30000.00"), D("0.0435"), 0)
        assert (line.term_months, line.repayment_method, line.opened_date) == (24, "equal_installment", ON)
        view = w.application(app_id)
        assert (view.status, view.line_id) == (ApplicationStatus.LINE_OPENED, line.id)
        names = [name for name, _ in w.events()]
        assert names[-1] == origination_events.APPLICATION_LINE_OPENED
        assert w.events()[-1][1]["line_id"] == line.id
        with w.container.uow() as uow:
            msg = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.name == origination_events.CONTRACT_ACCEPTED)
            ).one()
            assert msg.status is OutboxStatus.DELIVERED

    def test_a_drawdown_on_the_line_uses_the_contract_method(self, signed: tuple[World, int]) -> None:
        w, _ = signed
        w.container.dispatcher.run_once()
        (line,) = lines_of(w, "C0001")
        with w.container.uow() as uow:
            drawn = service.draw_down(
                uow.session,
                line_id=line.id,
                amount=D("12000.00"),
                term=24,
                business_date=ON,
                clock=w.container.clock,
                key="first",
            )
            uow.commit()
            assert drawn.loan.method == "equal_installment" and len(drawn.instalments) == 24

    def test_the_same_event_delivered_twice_opens_one_line(self, signed: tuple[World, int]) -> None:
        w, app_id = signed
        w.container.dispatcher.run_once()
        with w.container.uow() as uow:  # the broker redelivers: the message is pending again
            uow.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.name == origination_events.CONTRACT_ACCEPTED)
                .values(status=OutboxStatus.PENDING)
            )
            uow.commit()
        assert w.container.dispatcher.run_once().delivered >= 1
        (line,) = lines_of(w, "C0001")
        assert w.application(app_id).line_id == line.id
        opened = [e for e in w.events() if e[0] == origination_events.APPLICATION_LINE_OPENED]
        assert len(opened) == 1

    def test_calling_the_handler_twice_in_one_transaction_opens_one_line(
        self, signed: tuple[World, int]
    ) -> None:
        w, app_id = signed
        payload = next(p for n, p in w.events() if n == origination_events.CONTRACT_ACCEPTED)
        handler = LineOpener(w.container.clock)
        with w.container.uow() as uow:
            handler(uow.session, "e1", payload)
            handler(uow.session, "e2", payload)
            uow.commit()
        assert len(lines_of(w, "C0001")) == 1

    def test_a_failing_open_rolls_back_and_the_message_is_retried(self, signed: tuple[World, int]) -> None:
        w, app_id = signed
        with w.container.uow() as uow:  # the contract names a term the product does not offer
            msg = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.name == origination_events.CONTRACT_ACCEPTED)
            ).one()
            msg.payload = msg.payload.replace('"term_months": 24', '"term_months": 99')
            uow.commit()
        report = w.container.dispatcher.run_once()
        assert report.retried == 1 and report.dead == 0  # the other events were delivered
        assert lines_of(w, "C0001") == []
        assert w.application(app_id).status is ApplicationStatus.CONTRACT_SIGNED
        with w.container.uow() as uow:
            msg = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.name == origination_events.CONTRACT_ACCEPTED)
            ).one()
            assert msg.status is OutboxStatus.PENDING and "term 99 months" in (msg.last_error or "")


# ------------------------------------------------------------------ overdue leaves the whitelist


def entry_status(c: Container, customer_id: str) -> str:
    with c.uow() as uow:
        status = uow.session.scalar(
            select(WhitelistEntry.status).where(WhitelistEntry.customer_id == customer_id)
        )
    return str(getattr(status, "value", status))


def close_days_until(c: Container, last: date, before_each: Any = None) -> None:
    while True:
        with c.uow() as uow:
            today = current_business_date(uow.session)
        if today > last:
            return
        if before_each is not None:
            before_each(today)
        run_eod(sessions=c.sessions, clock=c.clock)


class TestOverdueCustomersLeaveTheWhitelist:
    def test_the_customer_who_misses_an_instalment_is_exited_the_one_who_pays_stays(
        self,
        world: World,  # noqa: F811
        publish: Any,  # noqa: F811
    ) -> None:
        c = world.container
        publish(
            lines(
                [
                    ("C0001", "eligible", "A", 50_000, 435),
                    ("C0002", "eligible", "B", 30_000, 650),
                    ("C0003", "eligible", "B", 30_000, 650),
                ]
            )
        )
        with c.uow() as uow:
            ledger.ensure_chart(uow.session)
            open_business_date(uow.session, on=ON, clock=c.clock)
            loans = {}
            for cid in ("C0001", "C0002"):
                line = service.open_line(
                    uow.session,
                    customer_id=cid,
                    product_code="farmer_revolving_line",
                    limit=D("20000.00"),
                    business_date=ON,
                    clock=c.clock,
                )
                loans[cid] = service.draw_down(
                    uow.session,
                    line_id=line.id,
                    amount=D("6000.00"),
                    term=6,
                    business_date=ON,
                    clock=c.clock,
                    method="equal_installment",
                    key=cid,
                ).loan.id
            uow.commit()
        first_due = ON + timedelta(days=31)  # 1 August 2025; three grace days

        def c0002_pays_on_time(today: date) -> None:
            if today != first_due:
                return
            with c.uow() as uow:
                _, inst = service.get_loan(uow.session, loans["C0002"])
                service.repay(
                    uow.session,
                    loan_id=loans["C0002"],
                    amount=inst[0].principal + inst[0].interest,
                    business_date=today,
                    clock=c.clock,
                    key="on-time",
                )
                uow.commit()

        close_days_until(c, first_due + timedelta(days=3), c0002_pays_on_time)
        # Within the grace days nobody is overdue and every offer stands.
        assert {cid: entry_status(c, cid) for cid in ("C0001", "C0002", "C0003")} == dict.fromkeys(
            ("C0001", "C0002", "C0003"), "offered"
        )
        report = run_eod(sessions=c.sessions, clock=c.clock)  # 5 August: C0001 is 4 days past due
        step = next(s for s in report.steps if s.name == "servicing.exit_overdue_customers")
        assert step.items == 1
        with c.uow() as uow:
            assert uow.session.get(Loan, loans["C0001"]).status == "overdue"  # type: ignore[union-attr]
        assert entry_status(c, "C0001") == "exited"
        assert (entry_status(c, "C0002"), entry_status(c, "C0003")) == ("offered", "offered")
        with c.uow() as uow:
            reason = uow.session.scalar(
                select(WhitelistEntry.status_reason).where(WhitelistEntry.customer_id == "C0001")
            )
            assert reason == servicing_jobs.EXIT_REASON
            n_exited = uow.session.scalar(
                select(func.count()).select_from(WhitelistEntry).where(WhitelistEntry.status == "exited")
            )
        report = run_eod(sessions=c.sessions, clock=c.clock)  # the next day changes nothing more
        step = next(s for s in report.steps if s.name == "servicing.exit_overdue_customers")
        assert step.items == 0
        with c.uow() as uow:
            assert (
                uow.session.scalar(
                    select(func.count()).select_from(WhitelistEntry).where(WhitelistEntry.status == "exited")
                )
                == n_exited
                == 1
            )
