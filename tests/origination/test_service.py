"""Applications through the real unit of work on SQLite and PostgreSQL: submit, decide, withdraw."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from creditfactory import origination
from creditfactory.bootstrap import Container
from creditfactory.errors import DomainError, InvalidInput
from creditfactory.origination import service
from creditfactory.security import idcard, phone
from tests.origination.conftest import MINOR_ID, ON, World, applicant, request

D = Decimal


def refused(
    world: World, error: type[DomainError], code: str, customer_id: str = "C0001", **changes: Any
) -> DomainError:
    """Submitting is refused with ``error`` (and ``code``) and changes nothing."""
    before = world.counts()
    with pytest.raises(error) as caught:
        world.submit(customer_id, **changes)
    assert caught.value.code == code
    assert world.counts() == before
    return caught.value


class TestSubmit:
    def test_a_new_application_is_held_as_written_its_decision_reads_nothing_back(self, world: World) -> None:
        """The application and its contacts go out in their own INSERTs and stay in the unit of
        work as loaded rows: the decision's facts, its checks and its move read none of them
        again, and the move is one UPDATE of the application, its event and messages INSERTs at
        the flush."""
        from sqlalchemy import event

        world.consent("C0001")
        seen: list[str] = []
        full: list[str] = []

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(" ".join(statement.split()[:3]))
            full.append(statement)

        with world.container.uow() as uow:
            view = world.submit_in(uow)
            # only its transition and message wait for the flush; the application is written
            assert {type(o).__name__ for o in uow.session.new} == {"ApplicationTransition", "OutboxMessage"}
            assert not uow.session.dirty
            event.listen(world.container.engine, "before_cursor_execute", before)
            try:
                facts = service.application_facts(uow, application_id=view.id)
                assert [c["relation"] for c in facts["contacts"]] == ["spouse"]
                args: dict[str, Any] = dict(
                    limit=D("30000.00"), annual_rate=D("0.0435"), decided_by="decisioning", business_date=ON
                )
                service.check_decision(uow, application_id=view.id, outcome="approve", **args)
                decided = service.record_decision(
                    uow,
                    application_id=view.id,
                    outcome="approve",
                    reasons=["A_GRADE_B"],
                    decision_id="dec-1",
                    now=world.now,
                    **args,
                )
                # nothing read; the move written at once, with one UPDATE, and left unchanged
                assert seen == ["UPDATE origination_application SET"]
                assert not uow.session.dirty
                uow.commit()  # its flush: the rows only ever added, without a savepoint
            finally:
                event.remove(world.container.engine, "before_cursor_execute", before)
        assert decided.status.value == "approved"
        if world.container.engine.dialect.name == "postgresql":
            # the rows only ever added, of both tables, in one statement (db.append_only)
            assert seen == ["UPDATE origination_application SET", "WITH append_0 AS"]
            assert "INSERT INTO origination_application_event" in full[1]
            assert "INSERT INTO events_outbox" in full[1]
        else:
            assert seen[:3] == [
                "UPDATE origination_application SET",
                "INSERT INTO origination_application_event",
                "INSERT INTO events_outbox",
            ]
        assert not any("SAVEPOINT" in s for s in seen)
        with world.container.uow() as uow:
            steps = service.timeline(uow, application_id=view.id)
        assert [t.to_status.value for t in steps] == ["submitted", "approved"]
        assert world.application(view.id).version == 2

    def test_the_insert_leaves_out_what_later_steps_fill_and_the_row_is_as_held(self, world: World) -> None:
        """The decision's, the contract's and the line's columns are empty at submission and left
        out of the ``INSERT``: at most 50 parameters, which psycopg converts once and keeps. The
        row read back in a new unit of work is the one held, column for column."""
        from sqlalchemy import event, inspect

        from creditfactory.origination import store

        world.consent("C0001")
        sent: list[tuple[list[str], int]] = []

        def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            # on PostgreSQL the insert is the first clause of the submission's one statement
            # (its contacts' rows the other parameter), on SQLite a statement of its own
            at = statement.find("INSERT INTO origination_application (")
            if at >= 0:
                named = statement[at:].split("(", 1)[1].split(")", 1)[0]
                sent.append(([c.strip() for c in named.split(",")], len(parameters)))

        event.listen(world.container.engine, "before_cursor_execute", before)
        try:
            with world.container.uow() as uow:
                view = world.submit_in(uow)
                held = store.get(uow.session, view.id)
                assert held is not None
                columns = [c.key for c in inspect(store.Application).column_attrs]
                as_held = {k: getattr(held, k) for k in columns}
                uow.commit()
        finally:
            event.remove(world.container.engine, "before_cursor_execute", before)
        ((named, count),) = sent
        contact_rows = 1 if world.container.engine.dialect.name == "postgresql" else 0
        assert count == len(named) + contact_rows <= 50 and not (set(named) & store._FILLED_LATER)
        with world.container.uow() as uow:
            read = store.get(uow.session, view.id)
            assert read is not None
            assert {k: getattr(read, k) for k in columns} == as_held
        assert all(as_held[k] is None for k in store._FILLED_LATER)

    def test_an_application_is_recorded_with_its_transition_and_event(self, world: World) -> None:
        world.consent("C0001")
        view = world.submit("C0001")
        assert (view.status, view.amount, view.term_months, view.repayment_method) == (
            origination.ApplicationStatus.SUBMITTED,
            D("20000.00"),
            12,
            "equal_installment",
        )
        assert view.offer is None and view.decision is None and view.business_date == ON
        with world.container.uow() as uow:
            steps = service.timeline(uow, application_id=view.id)
        assert [(t.event.value, t.from_status, t.to_status.value, t.actor) for t in steps] == [
            ("submit", None, "submitted", "cust-C0001")
        ]
        [(name, payload)] = world.events("origination.application")
        assert name == "origination.application.submitted"
        assert payload | {"submitted_at": None} == {
            "application_id": view.id,
            "customer_id": "C0001",
            "product_code": "consumer_equal_installment",
            "status": "submitted",
            "previous_status": None,
            "actor": "cust-C0001",
            "business_date": "2025-07-01",
            "reason": "submitted",
            "amount": "20000.00",
            "term_months": 12,
            "channel": "app",
            "offer_version_id": None,
            "submitted_at": None,
        }

    def test_the_facts_for_a_decision_hold_tokens_never_clear_identity(self, world: World) -> None:
        world.consent("C0001")
        view = world.submit("C0001")
        vault = world.container.vault
        name, number, mobile = "张伟", applicant("C0001").id_number, "13812345678"
        with world.container.uow() as uow:
            facts = origination.application_facts(uow, application_id=view.id)
        assert facts["identity"] | {"birth_date": None} == {
            "id_number_token": vault.token(number, kind="id_number"),
            "phone_token": vault.token(mobile, kind="phone"),
            "birth_date": None,
            "age": 45,
            "sex": "M",
            "region_code": "330521",
            "known_customer": False,
            "id_matches_record": None,
            "phone_matches_record": None,
            "name_matches_record": None,
        }
        assert facts["identity"]["birth_date"] == date(1980, 5, 17)
        assert facts["contacts"] == [
            {"phone_token": vault.token("13900001111", kind="phone"), "relation": "spouse"}
        ]
        assert facts["device"] == {
            "fingerprint": "dev-C0001",
            "os": "Android 14",
            "model": "HUAWEI P60",
            "is_emulator": False,
            "is_rooted": False,
        }
        assert (facts["amount"], facts["declared_annual_income"], facts["ip"]) == (
            D("20000.00"),
            D("96000.00"),
            "10.20.30.40",
        )
        assert facts["location"] == {"lat": 30.55, "lon": 119.98} and facts["offer"] is None
        text = repr(facts)
        for secret in (name, number, mobile, "13900001111", "王芳"):
            assert secret not in text
        # The database holds ciphertext that the vault opens, and never the clear values.
        from creditfactory.origination.store import Application

        with world.container.uow() as uow:
            row = uow.session.get(Application, view.id)
            assert row is not None
            assert (
                vault.decrypt(row.id_number_enc) == number and vault.decrypt(row.applicant_name_enc) == name
            )
            stored = " ".join(str(v) for v in vars(row).values())
            assert number not in stored and mobile not in stored and name not in stored

    def test_an_offer_is_recorded_and_the_whitelist_entry_applied(self, offered: World) -> None:
        offered.consent("C0001")
        assert offered.entry_status("C0001") == "offered"
        view = offered.submit("C0001", amount=D("50000.00"))
        assert view.offer is not None
        assert (view.offer.limit, view.offer.annual_rate, view.offer.expiry_date) == (
            D("50000.00"),
            D("0.0435"),
            date(2025, 9, 30),
        )
        assert offered.entry_status("C0001") == "applied"

    def test_an_offer_expired_but_not_yet_swept_is_neither_applied_for_nor_declined(
        self, offered: World
    ) -> None:
        # C0001's offer expired on 30 September; the end of day that marks it expired has not run
        offered.consent("C0001")
        after = date(2025, 10, 1)
        c = offered.container
        with c.uow() as uow:
            view = service.submit_application(
                uow,
                request=request("C0001", amount=D("20000.00")),
                catalogue=c.catalogue,
                vault=c.vault,
                actor="cust-C0001",
                business_date=after,
                now=offered.now,
            )
            uow.commit()
        assert view.offer is None
        assert offered.entry_status("C0001") == "offered"
        offered.decide(view.id, "decline", business_date=after)
        assert offered.entry_status("C0001") == "offered"
        assert offered.application(view.id).status.value == "declined"

    def test_the_offer_version_shown_must_be_the_current_one(self, offered: World) -> None:
        offered.consent("C0001")
        err = refused(offered, service.OfferNotCurrent, "offer_not_current", offer_version_id=999)
        assert err.http_status == 409
        offered.consent("C0004")
        refused(offered, service.OfferNotCurrent, "offer_not_current", "C0004", offer_version_id=1)

    def test_an_amount_above_the_offer_is_refused(self, offered: World) -> None:
        offered.consent("C0001")
        refused(offered, origination.AmountAboveOffer, "amount_above_offer", amount=D("50000.01"))
        assert offered.entry_status("C0001") == "offered"

    @pytest.mark.parametrize(
        ("changes", "error", "code"),
        [
            ({"amount": D("4999.99")}, origination.AmountOutsideProduct, "amount_outside_product"),
            ({"amount": D("300000.01")}, origination.AmountOutsideProduct, "amount_outside_product"),
            ({"amount": D("20000.005")}, InvalidInput, "invalid_input"),
            ({"term_months": 48}, origination.TermNotOffered, "term_not_offered"),
            ({"repayment_method": "bullet"}, origination.MethodNotOffered, "method_not_offered"),
            ({"product_code": "no_such_product"}, service.UnknownProduct, "unknown_product"),
        ],
        ids=["below-min", "above-max", "sub-fen", "term", "method", "product"],
    )
    def test_requests_that_do_not_fit_the_product(
        self, world: World, changes: dict[str, Any], error: type[DomainError], code: str
    ) -> None:
        world.consent("C0001")
        refused(world, error, code, **changes)

    def test_identity_checks(self, world: World) -> None:
        world.consent("C0001")
        good = applicant("C0001")
        bad_check = good.id_number[:17] + ("0" if good.id_number[17] != "0" else "1")
        err = refused(
            world,
            idcard.InvalidIdNumber,
            "invalid_id_number",
            applicant=applicant("C0001", id_number=bad_check),
        )
        assert "check character" in err.message and err.details["field"] == "applicant.id_number"
        bad_region = "99" + good.id_number[2:17]
        refused(
            world,
            idcard.InvalidIdNumber,
            "invalid_id_number",
            applicant=applicant("C0001", id_number=bad_region + idcard.check_char(bad_region)),
        )
        refused(
            world,
            origination.ApplicantUnderAge,
            "applicant_under_age",
            applicant=applicant("C0001", id_number=MINOR_ID),
        )
        refused(world, phone.InvalidPhone, "invalid_phone", applicant=applicant("C0001", phone="12812345678"))
        err = refused(
            world,
            phone.InvalidPhone,
            "invalid_phone",
            contacts=(service.Contact(name="李四", phone="555-1234", relation=origination.Relation.FRIEND),),
        )
        assert err.details["field"] == "contacts.0.phone"

    def test_a_required_consent_missing_or_withdrawn(self, world: World) -> None:
        err = refused(world, service.ConsentRequired, "consent_required")
        assert err.details["missing"] == ["bureau_inquiry", "personal_information"] and err.http_status == 409
        world.consent("C0001", origination.ConsentKind.BUREAU_INQUIRY, origination.ConsentKind.MARKETING)
        err = refused(world, service.ConsentRequired, "consent_required")
        assert err.details["missing"] == ["personal_information"]
        assert "个人信息使用授权" in err.message

    def test_one_application_in_progress_per_customer(self, world: World) -> None:
        world.consent("C0001")
        first = world.submit("C0001")
        err = refused(world, service.ApplicationInProgress, "application_in_progress", amount=D("8000.00"))
        assert err.details["application_id"] == first.id
        with world.container.uow() as uow:
            service.withdraw_application(
                uow, application_id=first.id, actor="cust-C0001", business_date=ON, now=world.now
            )
            uow.commit()
        second = world.submit("C0001", amount=D("8000.00"))
        assert second.id != first.id and second.status is origination.ApplicationStatus.SUBMITTED

    def test_the_claimed_identity_is_compared_with_the_banks_record(
        self, world: World, bank: Container
    ) -> None:
        for cid in ("C0001", "C0002", "C0003"):
            world.consent(cid)
        same = world.submit("C0001")
        other_name_phone = world.submit(
            "C0002", applicant=applicant("C0002", name="王秀", phone="13800000000")
        )
        other_id = world.submit("C0003", applicant=applicant("C0003", id_number=applicant("C0004").id_number))
        with world.container.uow() as uow:
            facts = [
                origination.application_facts(uow, application_id=a.id)["identity"]
                for a in (same, other_name_phone, other_id)
            ]
        keys = ("known_customer", "id_matches_record", "phone_matches_record", "name_matches_record")
        assert [tuple(f[k] for k in keys) for f in facts] == [
            (True, True, True, True),
            (True, True, False, False),
            (True, False, True, True),
        ]


class TestDecisions:
    def test_an_approval(self, offered: World) -> None:
        offered.consent("C0001")
        app = offered.submit("C0001")
        view = offered.decide(
            app.id,
            "approve",
            limit=D("50000.00"),
            annual_rate=D("0.0435"),
            reasons=["A1", "A2"],
            decided_by="engine",
        )
        assert view.status is origination.ApplicationStatus.APPROVED
        assert view.decision is not None
        d = view.decision
        assert (d.outcome, d.limit, d.annual_rate, d.reasons, d.decided_by) == (
            origination.Outcome.APPROVE,
            D("50000.00"),
            D("0.0435"),
            ("A1", "A2"),
            "engine",
        )
        assert d.approval_expiry_date == ON + timedelta(days=30) and d.customer_reasons == ()
        name, payload = offered.events("origination.application")[-1]
        assert name == "origination.application.approved"
        assert (payload["limit"], payload["annual_rate"], payload["decision_id"], payload["reasons"]) == (
            "50000.00",
            "0.0435",
            f"dec-{app.id}-approve",
            ["A1", "A2"],
        )
        assert offered.entry_status("C0001") == "applied"

    def test_a_decline_frees_the_customer_and_declines_the_offer(self, offered: World) -> None:
        offered.consent("C0001")
        app = offered.submit("C0001")
        view = offered.decide(
            app.id,
            "decline",
            reasons=["D_DEBT", "F_DEVICE"],
            reason_texts={"D_DEBT": ("负债较高", "Your debts are high")},
        )
        assert view.status is origination.ApplicationStatus.DECLINED
        assert view.decision is not None and view.decision.customer_reasons == (
            ("负债较高", "Your debts are high"),
        )
        assert offered.entry_status("C0001") == "declined"
        again = offered.submit("C0001", amount=D("6000.00"))
        assert again.offer is None  # the declined offer is no longer live

    def test_a_referral_decided_later_by_a_person(self, world: World) -> None:
        world.consent("C0001")
        world.consent("C0002")
        one, two = world.submit("C0001"), world.submit("C0002")
        for app in (one, two):
            view = world.decide(app.id, "refer", reasons=["R_INCOME_CHECK"])
            assert view.status is origination.ApplicationStatus.REFERRED
            assert view.decision is not None and view.decision.customer_reasons[0][1].startswith(
                "Your application needs"
            )
        approved = world.decide(
            one.id, "approve", decided_by="U007", decision_id="manual-1", reasons=["M_OK"]
        )
        declined = world.decide(
            two.id, "decline", decided_by="U007", decision_id="manual-2", reasons=["M_NO"]
        )
        assert (
            approved.status is origination.ApplicationStatus.APPROVED
            and approved.decision.decided_by == "U007"
        )  # type: ignore[union-attr]
        assert declined.status is origination.ApplicationStatus.DECLINED
        with world.container.uow() as uow:
            steps = service.timeline(uow, application_id=one.id)
        assert [(t.event.value, t.to_status.value, t.actor) for t in steps] == [
            ("submit", "submitted", "cust-C0001"),
            ("refer", "referred", "decisioning"),
            ("approve", "approved", "U007"),
        ]

    def test_a_recorded_decision_is_not_recorded_twice(self, world: World) -> None:
        world.consent("C0001")
        app = world.submit("C0001")
        first = world.decide(app.id, "approve")
        before = world.counts()
        assert world.decide(app.id, "approve") == first
        assert world.counts() == before
        with pytest.raises(service.DecisionConflict):
            world.decide(app.id, "decline", decision_id=f"dec-{app.id}-approve")

    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            ({"limit": D("300000.01")}, origination.DecisionOutsideProduct),
            ({"annual_rate": D("0.25")}, origination.DecisionOutsideProduct),
            ({"limit": None}, InvalidInput),
            ({"outcome": "maybe"}, InvalidInput),
        ],
    )
    def test_approvals_outside_the_product_change_nothing(
        self, world: World, changes: dict[str, Any], error: type[DomainError]
    ) -> None:
        world.consent("C0001")
        app = world.submit("C0001")
        before = world.counts()
        changes = dict(changes)  # the parameter is shared by the runs on both databases
        outcome = changes.pop("outcome", "approve")
        with pytest.raises(error):
            world.decide(app.id, outcome, **changes)
        assert world.counts() == before
        assert world.application(app.id).status is origination.ApplicationStatus.SUBMITTED

    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            ({"limit": D("300000.01")}, origination.DecisionOutsideProduct),
            ({"limit": None}, InvalidInput),
            ({"outcome": "maybe"}, InvalidInput),
            ({"outcome": "decline"}, InvalidInput),  # a decline with a limit
        ],
    )
    def test_a_decision_is_checked_before_anything_is_written(
        self, world: World, changes: dict[str, Any], error: type[DomainError]
    ) -> None:
        """``check_decision`` refuses what ``record_decision`` would, and writes nothing."""
        world.consent("C0001")
        app = world.submit("C0001")
        before = world.counts()
        args: dict[str, Any] = {"outcome": "approve", "limit": D("30000.00"), "annual_rate": D("0.0435")}
        args.update(changes)
        with world.container.uow() as uow:
            with pytest.raises(error):
                origination.check_decision(
                    uow, application_id=app.id, decided_by="decisioning", business_date=ON, **args
                )
            origination.check_decision(
                uow,
                application_id=app.id,
                outcome="approve",
                limit=D("30000.00"),
                annual_rate=D("0.0435"),
                decided_by="decisioning",
                business_date=ON,
            )
            uow.commit()
        assert world.counts() == before

    def test_a_decline_carries_no_limit(self, world: World) -> None:
        world.consent("C0001")
        app = world.submit("C0001")
        with pytest.raises(InvalidInput):
            world.decide(app.id, "decline", limit=D("1000.00"))

    def test_no_decision_on_a_closed_application(self, world: World) -> None:
        world.consent("C0001")
        app = world.submit("C0001")
        with world.container.uow() as uow:
            service.withdraw_application(
                uow, application_id=app.id, actor="cust-C0001", business_date=ON, now=world.now
            )
            uow.commit()
        with pytest.raises(origination.IllegalTransition) as caught:
            world.decide(app.id, "approve")
        assert caught.value.details["allowed"] == []

    def test_an_unknown_application(self, world: World) -> None:
        with world.container.uow() as uow, pytest.raises(service.ApplicationNotFound):
            service.get_application(uow, application_id=12345)


class TestWithdrawAndExpire:
    def test_withdrawing_an_approval_gives_the_offer_back(self, offered: World) -> None:
        offered.consent("C0001")
        app = offered.submit("C0001")
        offered.decide(app.id, "approve")
        with offered.container.uow() as uow:
            view = service.withdraw_application(
                uow, application_id=app.id, actor="cust-C0001", business_date=ON, now=offered.now
            )
            uow.commit()
        assert view.status is origination.ApplicationStatus.WITHDRAWN
        assert offered.entry_status("C0001") == "offered"
        assert offered.events("origination.application")[-1][0] == "origination.application.withdrawn"

    def test_approvals_not_signed_in_time_expire(self, offered: World) -> None:
        offered.consent("C0001")
        offered.consent("C0002")
        late, fresh = offered.submit("C0001"), offered.submit("C0002", amount=D("9000.00"))
        offered.decide(late.id, "approve")
        offered.decide(fresh.id, "approve", business_date=ON + timedelta(days=5))
        with offered.container.uow() as uow:
            assert service.expire_approvals(uow, business_date=ON + timedelta(days=30), now=offered.now) == 0
            assert service.expire_approvals(uow, business_date=ON + timedelta(days=31), now=offered.now) == 1
            uow.commit()
        assert offered.application(late.id).status is origination.ApplicationStatus.EXPIRED
        assert offered.application(fresh.id).status is origination.ApplicationStatus.APPROVED
        assert offered.entry_status("C0001") == "offered"


class TestVelocity:
    def test_each_count_has_an_index_of_its_own(self) -> None:
        """A reviewer's view counts, for each of the applicant's ID number, phone, device and IP
        address, the applications sharing it in a window before submission: one range scan of
        an index led by that column and the submission time, not a scan of every application."""
        from creditfactory.origination.store import Application

        led = {tuple(c.name for c in index.columns)[:2] for index in Application.__table__.indexes}
        for column in ("id_number_token", "phone_token", "device_fingerprint", "ip"):
            assert (column, "submitted_at") in led, column

    def test_applications_sharing_a_device_and_ip(self, world: World) -> None:
        for cid in ("C0001", "C0002", "C0003"):
            world.consent(cid)
        clock = world.container.clock
        world.submit("C0001", device=service.Device("shared-device", "Android 14", "X"))
        clock.advance(hours=2)  # type: ignore[attr-defined]
        world.submit("C0002", device=service.Device("shared-device", "Android 14", "X"))
        clock.advance(minutes=10)  # type: ignore[attr-defined]
        third = world.submit(
            "C0003", device=service.Device("shared-device", "Android 14", "X"), ip="10.0.0.9"
        )
        from sqlalchemy import event

        sent: list[str] = []

        def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(statement)

        event.listen(world.container.engine, "before_cursor_execute", listen)
        try:
            with world.container.uow() as uow:
                counts = origination.velocity(uow, application_id=third.id)
        finally:
            event.remove(world.container.engine, "before_cursor_execute", listen)
        # the twelve counts in one statement (the application itself read before it)
        assert len([s for s in sent if "sum(" in s.lower()]) == 1, sent
        assert counts == {
            "id_number_1h": 1,
            "id_number_24h": 1,
            "id_number_30d": 1,
            "phone_1h": 1,
            "phone_24h": 1,
            "phone_30d": 1,
            "device_1h": 2,
            "device_24h": 3,
            "device_30d": 3,
            "ip_1h": 1,
            "ip_24h": 1,
            "ip_30d": 1,
        }


class TestEndOfDay:
    def test_the_step_expires_approvals_of_the_business_date(self, world: World) -> None:
        from creditfactory.jobs import StepContext
        from creditfactory.origination import jobs as origination_jobs

        world.consent("C0001")
        app = world.submit("C0001")
        world.decide(app.id, "approve")
        assert [s.name for s in origination_jobs.STEPS] == ["origination.expire_approvals"]
        ctx = StepContext(
            sessions=world.container.sessions,
            clock=world.container.clock,
            business_date=ON + timedelta(days=31),
        )
        assert origination_jobs.expire_approvals(ctx).items == 1
        assert origination_jobs.expire_approvals(ctx).items == 0  # a re-run finds nothing
        assert world.application(app.id).status is origination.ApplicationStatus.EXPIRED


class TestSubmissionStatements:
    """An application and its contacts are written together: in one statement on PostgreSQL,
    held in the session as they are in the database, none of them when another application of
    the customer is in progress."""

    @pytest.mark.parametrize("count", [0, 1, 3])
    def test_the_application_and_its_contacts_are_written_as_held(self, world: World, count: int) -> None:
        from sqlalchemy import event, select

        from creditfactory.origination import store

        world.consent("C0001")
        relations = [origination.Relation.SPOUSE, origination.Relation.PARENT, origination.Relation.FRIEND]
        contacts = tuple(
            service.Contact(name=f"联系人{i}", phone=f"1390000{i:04d}", relation=relations[i])
            for i in range(count)
        )
        writes: list[str] = []

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "origination_application" in statement and "INSERT" in statement:
                writes.append(statement)

        event.listen(world.container.engine, "before_cursor_execute", before)
        try:
            with world.container.uow() as uow:
                view = world.submit_in(uow, contacts=contacts)
                held = store.get(uow.session, view.id)
                assert held is not None
                as_held = [(c.id, c.position, c.phone_token, c.relation) for c in held.contacts]
                uow.commit()
        finally:
            event.remove(world.container.engine, "before_cursor_execute", before)
        inserts = [w for w in writes if "origination_application_event" not in w]
        if world.container.engine.dialect.name == "postgresql":
            assert len(inserts) == 1  # the application and its contacts
        else:
            assert len(inserts) == 1 + count
        with world.container.uow() as uow:
            rows = uow.session.execute(
                select(
                    store.ApplicationContact.id,
                    store.ApplicationContact.position,
                    store.ApplicationContact.phone_token,
                    store.ApplicationContact.relation,
                )
                .where(store.ApplicationContact.application_id == view.id)
                .order_by(store.ApplicationContact.position)
            ).all()
        assert [tuple(r) for r in rows] == as_held
        assert [r.position for r in rows] == list(range(count))
        assert [r.relation for r in rows] == relations[:count]
        assert len({r.phone_token for r in rows}) == count

    def test_a_second_application_in_progress_writes_no_contacts(self, world: World) -> None:
        from sqlalchemy import func, select

        from creditfactory.origination import store

        world.consent("C0001")
        first = world.submit()
        with world.container.uow() as uow:
            before = uow.session.scalar(select(func.count()).select_from(store.ApplicationContact))
        with pytest.raises(DomainError) as raised:
            world.submit()
        assert raised.value.code == "application_in_progress"
        with world.container.uow() as uow:
            after = uow.session.scalar(select(func.count()).select_from(store.ApplicationContact))
            mine = uow.session.scalar(
                select(func.count())
                .select_from(store.ApplicationContact)
                .where(store.ApplicationContact.application_id == first.id)
            )
        assert after == before and mine == 1
