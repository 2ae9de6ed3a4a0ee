"""Decisions end to end through ``POST /v1/applications``: every outcome path, whitelisted and
not, the record, replay, idempotency, champion and challenger.

The bank is the factory extract (C0001..C0008) with a portrait at 2025-06-30, its graph, one
approved scorecard and the shipped example strategy (``tests/decisioning/deciding.py``).
C0001 and C0002 hold pre-approved offers (50,000 at 4.35% and 30,000 at 6.50%).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from creditfactory import decisioning, modeling, origination
from creditfactory.api.asgi import warm
from creditfactory.bootstrap import Container
from creditfactory.decisioning import records
from creditfactory.decisioning.replay import replay_decision
from creditfactory.security import idcard
from tests.decisioning.deciding import MODEL, Ready, Trained, make_ready, write_strategy
from tests.origination.conftest import ON, World, offered, world  # noqa: F401  (fixtures)
from tests.origination.test_api import Api, body, customer
from tests.whitelist.conftest import bank, publish  # noqa: F401  (fixtures)

D = Decimal
#: A valid ID number of someone the bank does not know (born 1990-03-15).
STRANGER_ID = idcard.make("330521", __import__("datetime").date(1990, 3, 15), 21)


@pytest.fixture
def ready(offered: World, bank: Container, tmp_path: Path, trained: Trained) -> Ready:  # noqa: F811
    for cid in [f"C000{i}" for i in range(1, 9)] + ["C0100"]:
        offered.consent(cid)
    return make_ready(offered.container, tmp_path, trained)


def apply(api: Api, cid: str = "C0001", key: str | None = None, **changes: Any) -> dict[str, Any]:
    payload = body(cid, **changes) if cid != "C0100" else {**body("C0001", **changes), "customer_id": cid}
    r = api.call("POST", "/v1/applications", as_=customer(cid), json=payload, key=key or uuid.uuid4().hex)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def record(ready: Ready, application_id: int) -> decisioning.DecisionView:
    (view,) = [v for v in ready.decisions(application_id) if v.applied]
    return view


def count_records(container: Container) -> int:
    with container.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(records.decision_table)) or 0)


class TestOutcomes:
    def test_a_whitelisted_customer_is_approved_on_the_offer(self, ready: Ready) -> None:
        api = Api(ready.container)
        app = apply(api, "C0001")
        assert app["status"] == "approved"
        assert app["decision"]["outcome"] == "approve"
        d = record(ready, app["id"])
        # scorecard 703.6 -> grade B; the limit is what was asked (20,000 < 0.4 x income, < offer)
        assert (d.outcome, d.grade, d.limit, d.annual_rate) == ("approve", "B", D("20000.00"), D("0.0435"))
        assert d.whitelisted and d.inputs["application"]["offer"]["limit"] == 50000.0
        assert "W_OFFER_PRICE" in d.reason_codes  # the offer's rate, not the grade's 5.20%
        assert d.inputs["portrait"]["as_of"] == "2025-06-30" and d.segment == "farmer"
        assert d.models["farmer"]["name"] == "tiny_scorecard" and d.models["farmer"]["version"] == 1
        assert set(d.timings) >= {"facts", "portrait", "scoring", "rules", "persist"}
        assert d.strategy["sha256"] == ready.champion.sha256
        # the customer sees the outcome, never the internals
        seen = api.call("GET", f"/v1/applications/{app['id']}", as_=customer("C0001")).json()
        assert seen["status"] == "approved" and seen["decision"]["limit"] == "20000.00"
        assert "review" not in seen or seen["review"] is None

    def test_a_customer_without_an_offer_gets_the_grade_s_price(self, ready: Ready) -> None:
        app = apply(Api(ready.container), "C0003")
        d = record(ready, app["id"])
        assert (d.outcome, d.grade, d.annual_rate, d.whitelisted) == ("approve", "B", D("0.052"), False)
        assert not any(c.startswith("W_") for c in d.reason_codes)

    @pytest.mark.parametrize(
        ("cid", "changes", "code", "stage"),
        [
            ("C0007", {}, "D_AGE", "knockouts"),  # 67 by the ID number
            (
                "C0005",
                {"applicant": {"name": "冒名", "id_number": "330521196901310579", "phone": "18656789012"}},
                "D_NAME_MISMATCH",
                "identity",
            ),
            (
                "C0006",
                {"device": {"fingerprint": "emu-1", "os": "Android", "model": "x", "is_emulator": True}},
                "D_DEVICE",
                "fraud",
            ),
            (
                "C0008",
                {"contacts": [{"name": "某人", "phone": "13700000009", "relation": "friend"}]},
                "D_GRAPH",
                "graph",
            ),  # a declared contact's phone is on the negative list: 1 hop
            ("C0004", {}, "D_SCORE", "cutoffs"),  # 12 days past due: scorecard 507 < merchant cut-off 580
        ],
        ids=["knock-out", "identity", "fraud", "graph", "score"],
    )
    def test_declines(self, ready: Ready, cid: str, changes: dict[str, Any], code: str, stage: str) -> None:
        app = apply(Api(ready.container), cid, **changes)
        assert app["status"] == "declined"
        d = record(ready, app["id"])
        assert d.outcome == "decline" and d.reason_code == code
        hit = next(h for h in d.hits if h["code"] == code)
        assert hit["stage"] == stage and hit["en"] and hit["zh"]
        assert d.limit is None and d.annual_rate is None
        # customers are told the general text, not the reason
        reasons = app["decision"]["reasons"]
        assert [r["en"] for r in reasons] == [origination.service.DEFAULT_CUSTOMER_REASONS["decline"][1]]

    def test_a_new_to_bank_applicant_is_referred(self, ready: Ready) -> None:
        app = apply(
            Api(ready.container),
            "C0100",
            applicant={"name": "新客户", "id_number": STRANGER_ID, "phone": "13111112222"},
        )
        assert app["status"] == "referred"
        d = record(ready, app["id"])
        assert d.reason_code == "R_NEW_TO_BANK" and d.segment == "new_to_bank"
        assert d.inputs["portrait"] == {"as_of": "2025-06-30", "row": None}
        assert d.inputs["facts"]["customer_known"] is False

    def test_a_whitelisted_customer_whose_situation_changed(self, ready: Ready) -> None:
        """C0002 holds an offer but applies with a phone that is not the one on file: referred,
        and the reasons say the offer is not honoured and why."""
        name, number, _ = ("王秀英", "330521197511020220", None)
        app = apply(
            Api(ready.container),
            "C0002",
            applicant={"name": name, "id_number": number, "phone": "13344445555"},
        )
        assert app["status"] == "referred"
        d = record(ready, app["id"])
        assert d.reason_codes[:1] == ["R_PHONE_MISMATCH"]
        assert "W_OFFER_NOT_HONOURED" in d.reason_codes

    def test_the_limit_never_exceeds_the_offer(self, ready: Ready, tmp_path: Path) -> None:
        """A champion that grants whatever income supports is capped at C0002's 30,000 offer."""
        path = write_strategy(
            tmp_path / "generous.yaml", **{"    - requested_amount # never more than asked for\n": ""}
        )
        ready.publish(path)
        app = apply(Api(ready.container), "C0002", amount="25000.00", declared_annual_income="500000.00")
        d = record(ready, app["id"])
        assert d.outcome == "approve" and d.limit == D("30000.00")
        assert "W_OFFER_LIMIT_CAP" in d.reason_codes and d.annual_rate == D("0.065")


class TestRecord:
    def test_idempotent_submission_keeps_one_record(self, ready: Ready) -> None:
        api = Api(ready.container)
        k = uuid.uuid4().hex
        first = api.call("POST", "/v1/applications", as_=customer("C0001"), json=body("C0001"), key=k)
        again = api.call("POST", "/v1/applications", as_=customer("C0001"), json=body("C0001"), key=k)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json() and first.json()["status"] == "approved"
        assert count_records(ready.container) == 1
        with ready.container.uow() as uow:  # deciding again returns the same decision
            view = decisioning.decide_application(
                uow,
                application_id=first.json()["id"],
                lake=ready.container.lake_dir,
                models_dir=ready.container.models_dir,
                clock=ready.container.clock,
            )
            uow.commit()
        assert view.id == record(ready, first.json()["id"]).id and count_records(ready.container) == 1

    def test_no_champion_leaves_the_application_submitted(self, offered: World) -> None:  # noqa: F811
        offered.consent("C0001")
        app = apply(Api(offered.container), "C0001")
        assert app["status"] == "submitted" and count_records(offered.container) == 0

    def test_the_decision_is_remembered_for_velocity_and_graph(self, ready: Ready) -> None:
        api = Api(ready.container)
        first = apply(api, "C0008", contacts=[{"name": "某人", "phone": "13700000009", "relation": "friend"}])
        assert first["status"] == "declined"
        ready.container.clock.advance(minutes=10)  # type: ignore[attr-defined]
        again = apply(api, "C0008")
        d = record(ready, again["id"])
        assert d.inputs["facts"]["apps_per_id_1h"] == 1  # the declined one counts
        assert d.inputs["facts"]["graph_declined_neighbours"] == 0  # the applicant is not their own neighbour

    def test_every_outcome_path_replays_the_same(self, ready: Ready) -> None:
        api = Api(ready.container)
        ids = [
            apply(api, "C0001")["id"],
            apply(api, "C0003")["id"],
            apply(api, "C0004")["id"],
            apply(api, "C0007")["id"],
            apply(api, "C0006", device={"fingerprint": "emu", "os": "A", "model": "x", "is_rooted": True})[
                "id"
            ],
            apply(
                api, "C0100", applicant={"name": "新客户", "id_number": STRANGER_ID, "phone": "13111112222"}
            )["id"],
        ]
        outcomes = set()
        decided = [record(ready, aid) for aid in ids]
        with ready.container.uow() as uow:
            for d in decided:
                outcomes.add(d.outcome)
                replay = replay_decision(uow, decision_id=d.id, models_dir=ready.container.models_dir)
                assert replay.same, replay.differences
                assert replay.replayed["score"] == d.score
        assert outcomes == {"approve", "decline", "refer"}

    def test_replay_shows_a_difference_when_the_inputs_were_altered(self, ready: Ready) -> None:
        app = apply(Api(ready.container), "C0001")
        d = record(ready, app["id"])
        with ready.container.uow() as uow:
            inputs = dict(d.inputs)
            inputs["fields"] = {**inputs["fields"], "applicant_age": 70}
            uow.session.execute(
                records.decision_table.update()
                .where(records.decision_table.c.id == d.id)
                .values(inputs=records.dumps(inputs))
            )
            replay = replay_decision(uow, decision_id=d.id, models_dir=ready.container.models_dir)
        assert {x["field"] for x in replay.differences} >= {"outcome", "reason_code"}
        assert replay.replayed["outcome"] == "decline" and replay.recorded["outcome"] == "approve"


class TestChampionChallenger:
    def test_assignment_is_a_stable_hash_of_the_applicant(self) -> None:
        tokens = [f"tok-{i}" for i in range(4_000)]
        first = [decisioning.in_challenger(t, salt="s1", share=0.1) for t in tokens]
        assert first == [decisioning.in_challenger(t, salt="s1", share=0.1) for t in tokens]
        assert 0.08 < sum(first) / len(tokens) < 0.12
        # a larger share keeps everyone already in the challenger
        wider = [decisioning.in_challenger(t, salt="s1", share=0.3) for t in tokens]
        assert all(w for f, w in zip(first, wider, strict=True) if f)

    @pytest.mark.parametrize("mode", ["shadow", "live"])
    def test_both_records_are_kept(self, ready: Ready, tmp_path: Path, mode: str) -> None:
        path = write_strategy(
            tmp_path / "challenger.yaml",
            **{
                "name: county_online_decision": "name: strict_challenger",
                "current_dpd > 30": "current_dpd > 5",
                "applicant_age NOT BETWEEN 18 AND 60": "applicant_age NOT BETWEEN 18 AND 40",
            },
        )
        challenger = ready.publish(path, challenger=True, share=1.0, mode=mode)
        api = Api(ready.container)
        app = apply(api, "C0005")  # 56: the champion approves, the challenger declines on age
        views = ready.decisions(app["id"])
        assert {v.role for v in views} == {"champion", "challenger"}
        assert views[0].applied  # the applied record comes first
        by_role = {v.role: v for v in views}
        assert by_role["champion"].outcome == "approve" and by_role["challenger"].outcome == "decline"
        assert by_role["challenger"].strategy["id"] == challenger.id
        applied = "challenger" if mode == "live" else "champion"
        assert [v.role for v in views if v.applied] == [applied]
        assert app["status"] == ("declined" if mode == "live" else "approved")
        with ready.container.uow() as uow:
            for v in views:
                assert replay_decision(uow, decision_id=v.id, models_dir=ready.container.models_dir).same

    def test_the_same_applicant_lands_on_the_same_side(self, ready: Ready, tmp_path: Path) -> None:
        path = write_strategy(tmp_path / "c.yaml", **{"name: county_online_decision": "name: half"})
        ready.publish(path, challenger=True, share=0.5)
        api = Api(ready.container)
        sides = {}
        for _ in range(2):
            for cid in ("C0001", "C0003", "C0005", "C0006", "C0008"):
                app = apply(api, cid)
                roles = {v.role for v in ready.decisions(app["id"])}
                sides.setdefault(cid, set()).add("challenger" in roles)
                if app["status"] != "declined":  # let the customer apply again
                    with ready.container.uow() as uow:
                        origination.cancel_application(
                            uow,
                            application_id=app["id"],
                            actor="S1",
                            business_date=ON,
                            now=ready.container.clock.now(),
                            reason="applies again",
                        )
                        uow.commit()
        assert all(len(s) == 1 for s in sides.values()), sides


def test_a_decision_that_cannot_be_made_leaves_the_application_submitted(
    ready: Ready, tmp_path: Path
) -> None:
    """The champion's model was retired after publication: the customer still gets the
    application, left submitted, and nothing of the decision is written."""
    with pytest.raises(modeling.ModelNotFound):  # publishing checks the models it names
        ready.publish(write_strategy(tmp_path / "unknown.yaml", **{"tiny_scorecard": "nobody_trained_this"}))
    with ready.container.uow() as uow:
        modeling.retire_version(
            uow, name="tiny_scorecard", version=1, retired_by="S200", clock=ready.container.clock
        )
        uow.commit()
    app = apply(Api(ready.container), "C0001")
    assert app["status"] == "submitted" and count_records(ready.container) == 0
    with ready.container.uow() as uow:
        assert origination.velocity(uow, application_id=app["id"])["id_number_1h"] == 1
        with pytest.raises(modeling.ModelNotApproved):
            decisioning.decide_application(
                uow,
                application_id=app["id"],
                lake=ready.container.lake_dir,
                models_dir=ready.container.models_dir,
                clock=ready.container.clock,
            )


def test_the_view_returned_is_the_record_read_back(
    offered: World,  # noqa: F811
    bank: Container,  # noqa: F811
    tmp_path: Path,
    trained: Trained,
) -> None:
    """An application left submitted (no champion yet) is decided later; what the decision
    returns is what a read of the record gives."""
    offered.consent("C0003")
    app = apply(Api(offered.container), "C0003")
    assert app["status"] == "submitted"
    ready = make_ready(offered.container, tmp_path, trained)
    c = ready.container
    with c.uow() as uow:
        view = decisioning.decide_application(
            uow, application_id=app["id"], lake=c.lake_dir, models_dir=c.models_dir, clock=c.clock
        )
        uow.commit()
    with c.uow() as uow:
        assert decisioning.get_decision(uow, decision_id=view.id).to_json() == view.to_json()
        assert origination.get_application(uow, application_id=app["id"]).status.value == "approved"


class TestWarmUp:
    def test_the_published_strategy_its_model_and_the_portrait_are_made_ready(self, ready: Ready) -> None:
        ready_now = warm(ready.container)
        assert ready_now[0].startswith("strategy ") and f"model {MODEL} v1" in ready_now
        assert ready_now[-1] == "portrait 2025-06-30"
        engine = ready.container.decider.engine  # type: ignore[union-attr]
        assert engine._plans and (MODEL, 1) in engine._models and engine._portraits
        assert apply(Api(ready.container), "C0001")["status"] == "approved"  # decides as before

    def test_nothing_published_is_nothing_to_warm(self, offered: World) -> None:  # noqa: F811
        assert warm(offered.container) == []


class TestStatements:
    def test_a_decided_submission_reads_the_application_once_and_writes_the_graph_set_based(
        self, ready: Ready
    ) -> None:
        from sqlalchemy import event

        sent: list[str] = []

        def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(" ".join(statement.split()))

        api = Api(ready.container)
        apply(api, "C0001")  # plans, models and portrait loaded
        event.listen(ready.container.engine, "before_cursor_execute", listen)
        try:
            assert apply(api, "C0003")["status"] in ("approved", "declined", "referred")
        finally:
            event.remove(ready.container.engine, "before_cursor_execute", listen)
        by_id = [s for s in sent if "FROM origination_application WHERE origination_application.id =" in s]
        assert by_id == []  # the submitted row is kept in the unit of work, never read back
        node_writes = [
            s
            for s in sent
            if "INSERT INTO decisioning_graph_node" in s or s.startswith("UPDATE decisioning_graph_node")
        ]
        assert sum("INSERT INTO decisioning_graph_node" in s for s in node_writes) == 1
        seen_writes = [s for s in sent if "INSERT INTO decisioning_seen" in s]
        assert len(seen_writes) == 1
        if ready.container.engine.dialect.name == "postgresql":  # the seen row and the nodes together
            assert seen_writes[0].startswith("WITH s AS (INSERT INTO decisioning_seen")
            assert "INSERT INTO decisioning_graph_node" in seen_writes[0]
        assert not any(s.startswith("SELECT modeling_model_version.id") for s in sent)
        # the application's decided move is written once, by the commit; on PostgreSQL in its
        # statement, with the rows only ever added and the stored response
        moves = [s for s in sent if "UPDATE origination_application SET" in s]
        assert len(moves) == 1
        if ready.container.engine.dialect.name == "postgresql":
            assert moves[0].startswith("WITH append_0 AS (INSERT INTO origination_application_event")
            assert "last_write_0 AS (UPDATE origination_application SET" in moves[0]
            assert "last_write_1 AS (UPDATE command_log SET" in moves[0]
            assert moves[0] is sent[-1]
        else:  # one by one, after the rows only ever added and before the stored response
            at = sent.index(moves[0])
            assert sent[at - 1].startswith("INSERT INTO events_outbox")
            assert sent[at + 1].startswith("UPDATE command_log SET") and at + 2 == len(sent)
        assert len(sent) <= 45, "\n".join(sent)

    def test_a_strategy_s_text_is_read_only_where_it_is_compiled(self, ready: Ready) -> None:
        from sqlalchemy import event

        sent: list[str] = []

        def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(" ".join(statement.split()))

        def text_reads() -> int:
            return sum("decisioning_strategy.text" in s for s in sent)

        api = Api(ready.container)
        engine = ready.container.decider.engine  # type: ignore[union-attr]
        engine._plans.clear()  # as after a start: nothing compiled yet
        event.listen(ready.container.engine, "before_cursor_execute", listen)
        try:
            assert apply(api, "C0001")["status"] == "approved"
            assert text_reads() == 1  # compiled on first use, from its text
            sent.clear()
            assert apply(api, "C0003")["status"] in ("approved", "declined", "referred")
            assert text_reads() == 0  # the plan is kept: the text is not read again
            # nothing published meanwhile: the active strategies are not asked again either
            # (kept under the reference data's stamp, read with the business date)
            assert not any(s.startswith("SELECT decisioning_strategy.id") for s in sent)
        finally:
            event.remove(ready.container.engine, "before_cursor_execute", listen)
        with ready.container.uow() as uow:
            (head,) = records.active_strategies(uow.session.connection())
            published = decisioning.PublishedStrategy.of(head)
            assert published.text is None
            with pytest.raises(ValueError, match="read without its text"):
                type(engine)(  # a new engine, asked without a connection
                    lake=engine.lake, models_dir=engine.models_dir, facts=engine.facts
                ).plan(published)
