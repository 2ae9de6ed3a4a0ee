"""The relationship graph on the hand-made bank of ``conftest.py``: hops to the negative list,
super-nodes, sharing, groups, declined and defaulted neighbours, and incremental = bulk."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from creditfactory import decisioning
from creditfactory.bootstrap import Container
from creditfactory.decisioning import Contact, FactSettings, Outcome
from creditfactory.decisioning.bulk import reach
from tests.decisioning.conftest import AT, DAY, applicant, build, facts, token


@pytest.fixture
def built(world: Container) -> Container:
    build(world)
    return world


def hops(container: Container, who: str, **settings: Any) -> Any:
    return facts(container, applicant(who), **settings)["graph_hops_to_negative"]


class TestHopsToNegative:
    @pytest.mark.parametrize(
        ("who", "expected"),
        [
            ("A", 0),  # own ID number listed
            ("B", 1),  # own device listed
            ("D", 1),  # own phone listed
            ("E", 2),  # lists F's phone; F's ID number is listed
            ("C", 3),  # shares a tablet with D, whose phone is listed
            ("G", 3),
            ("J", 3),  # J -ip- K -phone*
            ("I", None),  # five hops away: beyond max_hops = 4
            ("H", None),  # nobody near
        ],
    )
    def test_hand_made_graph(self, built: Container, who: str, expected: int | None) -> None:
        assert hops(built, who) == expected

    def test_the_cap_is_a_setting(self, built: Container) -> None:
        assert hops(built, "I", max_hops=5) == 5
        assert hops(built, "C", max_hops=2) is None

    def test_an_unknown_applicant_is_searched_from_what_the_application_brings(
        self, built: Container
    ) -> None:
        stranger = applicant("Q", device_fingerprint="dB")  # the listed device
        assert facts(built, stranger)["graph_hops_to_negative"] == 1
        via_contact = applicant("Q", contacts=[token("phone", "F")])
        assert facts(built, via_contact)["graph_hops_to_negative"] == 2
        assert facts(built, applicant("Q"))["graph_hops_to_negative"] is None

    def test_a_customer_applying_from_a_new_device_keeps_its_old_links(self, built: Container) -> None:
        app = applicant("C", device_fingerprint="new-phone", ip_address="10.7.7.7")
        assert facts(built, app)["graph_hops_to_negative"] == 3

    def test_gathering_writes_nothing(self, built: Container) -> None:
        before = _snapshot(built)
        facts(built, applicant("Q", device_fingerprint="dB", ip_address="10.0.0.9"))
        assert _snapshot(built) == before


class TestSuperNodes:
    def test_a_node_above_the_degree_cap_is_not_expanded(self, built: Container) -> None:
        # S1..S5 share 10.9.9.9; S5's ID number is listed.
        wide = facts(built, applicant("S1"), degree_cap=100)
        assert wide["graph_hops_to_negative"] == 2
        assert wide["graph_truncated"] is False
        assert wide["graph_shared_ip_customers"] == 4
        capped = facts(built, applicant("S1"), degree_cap=4)
        assert capped["graph_hops_to_negative"] is None
        assert capped["graph_truncated"] is True
        # The people behind the skipped IP are counted by its degree (5 links, one of them S1's).
        assert capped["graph_shared_ip_customers"] == 4
        assert capped["graph_component_size"] == 1

    def test_a_node_at_the_cap_is_still_expanded(self, built: Container) -> None:
        newcomer = applicant("Q", ip_address="10.9.9.9")
        assert facts(built, newcomer, degree_cap=4)["graph_hops_to_negative"] is None
        assert facts(built, newcomer, degree_cap=5)["graph_hops_to_negative"] == 2

    def test_a_listed_super_node_is_still_reached(self, built: Container) -> None:
        from creditfactory.decisioning import store

        with built.uow() as uow:
            conn = uow.session.connection()
            ip = store.nodes_by_key(conn, [("ip", "10.9.9.9")])[("ip", "10.9.9.9")]
            store.save_flag(conn, flag="negative", ids=[ip.id])
            uow.commit()
        values = facts(built, applicant("Q", ip_address="10.9.9.9"), degree_cap=4)
        assert values["graph_hops_to_negative"] == 1
        assert values["graph_negative_neighbours"] == 1
        assert values["graph_truncated"] is True

    def test_the_bulk_reach_applies_the_same_cap(self, built: Container) -> None:
        with built.uow() as uow:
            nodes, edges = decisioning.graph_frames(uow)
        for cap, expected in ((100, 2), (4, None)):
            frame = reach(nodes, edges, FactSettings(degree_cap=cap))
            got = frame.filter(pl.col("customer_id") == "S1")["hops_to_negative"].item()
            assert got == expected


class TestSharingAndGroups:
    def test_shared_device(self, built: Container) -> None:
        values = facts(built, applicant("C", device_fingerprint="dC"))
        assert values["graph_shared_device_customers"] == 2  # D and G
        assert values["device_shared_people"] == 2
        assert values["device_first_seen_date"] == date(2024, 2, 1)  # D's first login
        assert values["device_age_days"] == (DAY - date(2024, 2, 1)).days
        assert values["device_negative"] is False
        assert values["graph_component_size"] == 3
        listed = facts(built, applicant("B", device_fingerprint="dB"))
        assert listed["device_negative"] is True
        assert listed["device_shared_people"] == 0

    def test_shared_contact_both_ways(self, built: Container) -> None:
        assert facts(built, applicant("E"))["graph_shared_contact_customers"] == 1  # E lists F
        assert facts(built, applicant("F"))["graph_shared_contact_customers"] == 1  # F is listed by E
        both = applicant("Q", contacts=[Contact(token("phone", "F"), "friend")])
        assert facts(built, both)["graph_shared_contact_customers"] == 2  # F owns it, E lists it too
        # A contact is not a group link: F and E stay in groups of one.
        assert facts(built, applicant("E"))["graph_component_size"] == 1

    def test_group_crosses_devices_and_ips(self, built: Container) -> None:
        # I -ip9- J -ip8- K: one group of three.
        assert facts(built, applicant("I"))["graph_component_size"] == 3
        assert facts(built, applicant("I"), group_cap=2)["graph_component_size"] == 2
        assert facts(built, applicant("I"), group_cap=2)["graph_truncated"] is True

    def test_new_device_joins_a_group_before_it_is_added(self, built: Container) -> None:
        app = applicant("H", device_fingerprint="dC")
        values = facts(built, app)
        assert values["graph_component_size"] == 4
        assert values["graph_shared_device_customers"] == 3


class TestNeighbours:
    def test_negative_neighbours_within_two_hops(self, built: Container) -> None:
        assert facts(built, applicant("E"))["graph_negative_neighbours"] == 1  # F
        assert facts(built, applicant("A"))["graph_negative_neighbours"] == 0  # only itself
        assert facts(built, applicant("C"))["graph_negative_neighbours"] == 0  # pD is 3 hops off
        assert facts(built, applicant("D"))["graph_negative_neighbours"] == 1  # its phone

    def test_defaulted_neighbours_come_from_the_loans(self, built: Container) -> None:
        assert facts(built, applicant("E"))["graph_defaulted_neighbours"] == 1  # F: written off
        assert facts(built, applicant("J"))["graph_defaulted_neighbours"] == 1  # K: 95 days past due
        assert facts(built, applicant("C"))["graph_defaulted_neighbours"] == 0

    def test_declined_neighbours_follow_recorded_outcomes(self, built: Container) -> None:
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 0
        with built.uow() as uow:
            decisioning.record_seen(uow, applicant=applicant("D"), application_ref="APP-D")
            decisioning.add_applicant(uow, applicant=applicant("D"))
            decisioning.record_outcome(uow, application_ref="APP-D", outcome=Outcome.DECLINE, at=AT)
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 1
        assert facts(built, applicant("D"))["graph_declined_neighbours"] == 0  # not oneself

    def test_an_overturned_decline_no_longer_counts(self, built: Container) -> None:
        with built.uow() as uow:
            decisioning.remember_application(uow, applicant=applicant("D"), application_ref="APP-D")
            decisioning.record_outcome(uow, application_ref="APP-D", outcome="decline", at=AT)
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 1
        with built.uow() as uow:
            decisioning.record_outcome(uow, application_ref="APP-D", outcome="approve", at=AT)
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 0
        _rebuild_agrees(built)

    def test_a_decline_before_the_graph_knows_the_applicant(self, built: Container) -> None:
        newcomer = applicant("Q", device_fingerprint="dC")
        with built.uow() as uow:
            decisioning.record_seen(uow, applicant=newcomer, application_ref="APP-Q")
            decisioning.record_outcome(uow, application_ref="APP-Q", outcome="decline", at=AT)
            decisioning.add_applicant(uow, applicant=newcomer)
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 1
        _rebuild_agrees(built)

    def test_a_decision_remembered_in_one_go_is_what_a_rebuild_says(self, built: Container) -> None:
        """``remember_decided`` (the seen row with its outcome, the decline's mark by the
        person's id) leaves the graph as the long way and a rebuild do."""
        with built.uow() as uow:
            assert decisioning.remember_decided(
                uow, applicant=applicant("D"), application_ref="APP-D", outcome="decline", at=AT
            )
            assert decisioning.remember_decided(
                uow, applicant=applicant("E"), application_ref="APP-E", outcome="approve", at=AT
            )
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 1
        _rebuild_agrees(built)

    def test_a_decision_remembered_again_only_sets_the_outcome(self, built: Container) -> None:
        with built.uow() as uow:
            decisioning.remember_decided(
                uow, applicant=applicant("D"), application_ref="APP-D", outcome="decline", at=AT
            )
            uow.commit()
        with built.uow() as uow:
            assert not decisioning.remember_decided(
                uow, applicant=applicant("D"), application_ref="APP-D", outcome="approve", at=AT
            )
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 0
        _rebuild_agrees(built)

    def test_an_approval_after_a_decline_leaves_the_person_marked(self, built: Container) -> None:
        """The decline's mark is written with the person's node and never cleared by that write:
        a later application of the same person that is approved leaves it."""
        with built.uow() as uow:
            decisioning.remember_decided(
                uow, applicant=applicant("D"), application_ref="APP-D1", outcome="decline", at=AT
            )
            uow.commit()
        with built.uow() as uow:
            assert decisioning.remember_decided(
                uow, applicant=applicant("D"), application_ref="APP-D2", outcome="approve", at=AT
            )
            uow.commit()
        assert facts(built, applicant("C"))["graph_declined_neighbours"] == 1
        _rebuild_agrees(built)

    def test_defaults_reported_later_mark_people(self, built: Container) -> None:
        with built.uow() as uow:
            assert decisioning.mark_defaulted(uow, customer_ids=["G", "nobody"]) == 1
            uow.commit()
        assert facts(built, applicant("C"))["graph_defaulted_neighbours"] == 1
        build(built)  # a rebuild from the lake keeps what servicing reported
        assert facts(built, applicant("C"))["graph_defaulted_neighbours"] == 1


def _rebuild_agrees(container: Container) -> None:
    """A rebuild from the lake leaves the graph as the incremental writes made it."""
    before = _snapshot(container)
    build(container)
    assert _snapshot(container) == before


def _snapshot(container: Container) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The graph by keys (ids differ between builds): nodes with flags and degree, and links."""
    with container.uow() as uow:
        nodes, edges = decisioning.graph_frames(uow)
    keyed = nodes.select("id", "kind", "key")
    links = (
        edges.join(keyed.rename({"id": "src_id", "kind": "src_kind", "key": "src_key"}), on="src_id")
        .join(keyed.rename({"id": "dst_id", "kind": "dst_kind", "key": "dst_key"}), on="dst_id")
        .select("src_kind", "src_key", "kind", "dst_kind", "dst_key")
        .sort(pl.all())
    )
    return nodes.drop("id").sort("kind", "key").rows(), links.rows()


APPLICATIONS = [
    # A newcomer with a new phone, device, IP, address and two contacts (one a customer's phone).
    applicant(
        "Q",
        device_fingerprint="dQ",
        ip_address="10.0.0.9",
        address_token="addr-1",
        contacts=[token("phone", "F"), "outsider-1"],
    ),
    # A customer on a new device sharing Q's address, and applying earlier than the extract saw C.
    applicant("C", device_fingerprint="dC", address_token="addr-1", business_date=date(2023, 12, 1)),
    # The newcomer again, a day later, from the listed device.
    applicant(
        "Q", device_fingerprint="dB", applied_at=AT + timedelta(days=1), business_date=DAY + timedelta(days=1)
    ),
    # Someone whose ID number is on the list but who is not a customer: the listed node gains links.
    applicant("R", id_number_token=token("id", "S5"), phone_token="phone-R"),
]


class TestIncrementalEqualsBulk:
    def test_adding_applications_one_by_one_equals_rebuilding(self, world: Container) -> None:
        build(world)
        with world.uow() as uow:
            for n, app in enumerate(APPLICATIONS):
                decisioning.record_seen(uow, applicant=app, application_ref=f"APP-{n}")
                decisioning.add_applicant(uow, applicant=app)
            decisioning.record_outcome(uow, application_ref="APP-0", outcome="decline", at=AT)
            uow.commit()
        incremental = _snapshot(world)
        build(world)  # reads the lake and the applications seen
        assert _snapshot(world) == incremental
        nodes = {(k, key): row for k, key, *row in incremental[0]}
        # customer_id, negative, declined, defaulted, degree, first_seen_date
        assert nodes[("person", "id-Q")] == [None, False, True, False, 7, DAY]
        assert nodes[("person", "id-C")][4:] == [3, date(2020, 1, 1)]
        assert nodes[("device", "dC")][4:] == [3, date(2023, 12, 1)]
        assert nodes[("address", "addr-1")][4] == 2

    def test_adding_twice_changes_nothing(self, built: Container) -> None:
        app = APPLICATIONS[0]
        with built.uow() as uow:
            first = decisioning.add_applicant(uow, applicant=app)
            uow.commit()
        once = _snapshot(built)
        with built.uow() as uow:
            again = decisioning.add_applicant(uow, applicant=app)
            uow.commit()
        assert first.links_added == 6 and again.links_added == 0
        assert _snapshot(built) == once

    def test_an_added_application_is_found_by_the_next(self, built: Container) -> None:
        with built.uow() as uow:
            decisioning.add_applicant(
                uow, applicant=applicant("Q", device_fingerprint="dQ", ip_address="10.5.5.5")
            )
            uow.commit()
        values = facts(built, applicant("R", device_fingerprint="dQ"))
        assert values["graph_shared_device_customers"] == 1
        assert values["device_first_seen_date"] == DAY
        assert values["device_age_days"] == 0
        assert values["graph_component_size"] == 2


class TestRoundTrips:
    def test_the_neighbourhood_comes_in_one_query(self, built: Container) -> None:
        from creditfactory.decisioning import graph

        with built.uow() as uow:
            conn = uow.session.connection()
            assert graph.search(conn, applicant("C"), FactSettings()).queries == 1
            # I's group reaches K, four hops out: K's links (hop 5) and those of K's phone and
            # device (hop 6, to see that nobody else is behind them) take two more queries.
            found = graph.search(conn, applicant("I"), FactSettings())
            assert found.queries == 3
            assert found.values["graph_component_size"] == 3

    def test_the_velocity_counts_come_with_the_neighbourhood_as_read_apart(self, built: Container) -> None:
        """``graph.neighbourhood(velocity=True)``: one statement, the velocity counts as
        ``store.velocity`` reads them and the neighbourhood as read without them, also when its
        row limit cuts the neighbourhood short (the counts are outside the limit)."""
        from sqlalchemy import event

        from creditfactory.decisioning import graph, store

        shared = {"device_fingerprint": "d-velo", "ip_address": "10.7.7.7"}
        with built.uow() as uow:
            for n, who in enumerate(["C", "I", "C", "Q"]):
                app = applicant(who, applied_at=AT - timedelta(hours=n * 5 + 0.5), **shared)
                decisioning.record_seen(uow, applicant=app, application_ref=f"v{n}")
            uow.commit()
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        cases = [("C", shared), ("I", shared), ("Q", {}), ("nobody", {"ip_address": "10.7.7.7"})]
        with built.uow() as uow:
            conn = uow.session.connection()
            for who, kw in cases:
                app = applicant(who, **kw)
                for limit in (1, 400):
                    settings = FactSettings(max_nodes=limit)
                    counts, apart = store.velocity(conn, app), graph.neighbourhood(conn, app, settings)
                    assert apart.velocity is None
                    event.listen(conn, "before_cursor_execute", count)
                    try:
                        near = graph.neighbourhood(conn, app, settings, velocity=True)
                    finally:
                        event.remove(conn, "before_cursor_execute", count)
                    assert len(statements) == 1
                    statements.clear()
                    assert near.velocity == counts, (who, limit)
                    assert (near.start, near.levels, near.complete) == (
                        apart.start,
                        apart.levels,
                        apart.complete,
                    ), (who, limit)
            cut = graph.neighbourhood(
                conn, applicant("C", **shared), FactSettings(max_nodes=1), velocity=True
            )
        assert not cut.complete  # four rows at most: C's links are more
        assert cut.velocity is not None
        assert (cut.velocity["apps_per_id_24h"], cut.velocity["apps_per_device_24h"]) == (2, 4)
        assert cut.velocity["device_applicants_30d"] == 2  # I and Q besides C

    def test_nodes_and_links_come_back_typed_by_name(self, built: Container) -> None:
        from creditfactory.decisioning import store

        with built.uow() as uow:
            conn = uow.session.connection()
            ip = store.nodes_by_key(conn, [("ip", "10.9.9.9")])[("ip", "10.9.9.9")]
            near = store.neighbourhood(
                conn, person_key="no-such-person", seeds=[("ip", "10.9.9.9")], levels=2, cap=100, limit=100
            )
            made = store.ensure_nodes(conn, {("device", "d-new"): DAY})[("device", "d-new")]
        assert (ip.kind, ip.key) == ("ip", "10.9.9.9") and near.start[("ip", "10.9.9.9")] == ip
        assert [type(v) for v in (ip.id, ip.negative, ip.declined, ip.defaulted, ip.degree)] == [
            int,
            bool,
            bool,
            bool,
            int,
        ]
        assert made.first_seen_date == DAY and type(made.first_seen_date) is date and made.degree == 0
        # no such person: nothing at hop 1; the IP's own links at hop 2
        assert near.levels[0] == []
        out = near.levels[1]
        assert len(out) == ip.degree and all(link.src == ip.id and link.target.id == link.dst for link in out)
        assert all(isinstance(link.target.declined, bool) and link.kind == "ip" for link in out)

    def test_the_seen_row_and_the_nodes_in_one_go_are_as_written_apart(self, built: Container) -> None:
        """``store.add_seen_and_nodes`` (one statement on PostgreSQL) writes the seen row and the
        nodes as ``add_seen`` then ``ensure_nodes`` do, value for value and type for type; a
        reference seen already writes nothing, not even a decline's mark."""
        from decimal import Decimal

        from creditfactory.decisioning import graph, store

        who = applicant(
            "Q",
            device_fingerprint="d-new",
            ip_address="10.1.2.3",
            contacts=[token("phone", "F")],
            declared_annual_income=Decimal("84000.50"),
            lat=30.25,
            lon=120.5,
            is_rooted=True,
        )
        wanted = graph.wanted_nodes(who)
        with built.uow() as uow:
            conn = uow.session.connection()
            assert store.add_seen(
                conn, applicant=who, application_ref="APART", outcome=Outcome.DECLINE, outcome_at=AT
            )
            apart = store.ensure_nodes(conn, wanted, customer_id=who.customer_id, person_declined=True)
            together = store.add_seen_and_nodes(
                conn,
                applicant=who,
                application_ref="TOGETHER",
                outcome=Outcome.DECLINE,
                outcome_at=AT,
                wanted=wanted,
                person_declined=True,
            )
            again = store.add_seen_and_nodes(
                conn,
                applicant=applicant("R"),
                application_ref="TOGETHER",
                outcome=Outcome.DECLINE,
                outcome_at=AT,
                wanted=graph.wanted_nodes(applicant("R")),
                person_declined=True,
            )
            rows = {
                ref: dict(store.get_seen(conn, application_ref=ref) or {}) for ref in ("APART", "TOGETHER")
            }
            r_node = store.nodes_by_key(conn, [("person", token("id", "R"))])
            uow.commit()
        assert together == apart and set(apart) == set(wanted)
        assert again is None and r_node == {}  # seen already: nothing written
        for row in rows.values():
            row.pop("id"), row.pop("application_ref")
        assert rows["TOGETHER"] == rows["APART"]
        assert {k: type(v) for k, v in rows["TOGETHER"].items()} == {
            k: type(v) for k, v in rows["APART"].items()
        }
        assert rows["TOGETHER"]["declared_income"] == Decimal("84000.50")
        assert rows["TOGETHER"]["outcome"] == "decline" and rows["TOGETHER"]["applied_at"] == AT

    def test_a_row_limit_cuts_the_search_and_says_so(self, built: Container) -> None:
        values = facts(built, applicant("C"), max_nodes=2)
        assert values["graph_truncated"] is True
        assert facts(built, applicant("C"))["graph_truncated"] is False


def _node_versions(container: Container) -> dict[tuple[str, str], str]:
    """Each node's row version on PostgreSQL (``xmin``, the transaction that wrote it last)."""
    from sqlalchemy import text

    with container.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, key, xmin::text FROM decisioning_graph_node")).all()
    return {(kind, key): version for kind, key, version in rows}


class TestGraphWritesUseTheIndexes:
    """The graph's writes on PostgreSQL take their rows as one JSON parameter, which the planner
    takes for a hundred rows: on a graph of twenty thousand nodes (where a scan of the table still looks cheaper than a hundred look-ups), every node and link is
    still found by its index, never by scanning the table."""

    def test_no_write_scans_the_node_or_edge_table(self, built: Container) -> None:
        import json

        from sqlalchemy import text

        from creditfactory.decisioning import store

        if built.engine.dialect.name != "postgresql":
            pytest.skip("the plans are PostgreSQL's")
        with built.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO decisioning_graph_node (kind, key, negative, declined, defaulted, degree) "
                    "SELECT 'phone', 'bulk-' || i, false, false, false, 0 FROM generate_series(1, 20000) AS i"
                )
            )
            conn.execute(text("ANALYZE decisioning_graph_node"))
            conn.execute(text("ANALYZE decisioning_graph_edge"))
            a, b = conn.execute(text("SELECT id FROM decisioning_graph_node ORDER BY id LIMIT 2")).scalars()
            nodes = json.dumps(
                [
                    {
                        "kind": "phone",
                        "key": "bulk-7",
                        "customer_id": None,
                        "declined": False,
                        "first_seen_date": None,
                    },
                    {
                        "kind": "person",
                        "key": "p-new",
                        "customer_id": "C1",
                        "declined": False,
                        "first_seen_date": None,
                    },
                ]
            )
            links = json.dumps(
                [{"src_id": a, "dst_id": b, "kind": "phone"}, {"src_id": b, "dst_id": a, "kind": "phone"}]
            )
            # as the server plans them for the pool's prepared statements: for the parameter
            # given, and the generic plan it switches to after five executions
            for name, statement, rows in (
                ("nodes", store._UPSERT_NODES_PG, nodes),
                ("links", store._LINK_EDGES_PG, links),
            ):
                sql = str(statement.compile(dialect=conn.dialect)).replace("%(rows)s", "$1")
                conn.exec_driver_sql(f"PREPARE {name}(text) AS {sql}")
                for mode in ("force_custom_plan", "force_generic_plan"):
                    conn.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
                    quoted = rows.replace("'", "''")
                    plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}('{quoted}')").scalars())
                    assert "Seq Scan on decisioning_graph_node" not in plan, (name, mode, plan)
                    assert "Seq Scan on decisioning_graph_edge" not in plan, (name, mode, plan)
            conn.rollback()


class TestNeighbourhoodReadsEachNodeOnce:
    """Each level of the neighbourhood carries the nodes its links lead to: a node is looked up
    by its id once for each link that reaches it (for the answer and the next level's degree
    filter alike), never a second time."""

    def test_one_look_up_by_id_for_each_link(self, built: Container) -> None:
        import json

        from sqlalchemy import event

        from creditfactory.decisioning import graph

        if built.engine.dialect.name != "postgresql":
            pytest.skip("the plans are PostgreSQL's")
        sent: list[tuple[str, Any]] = []

        def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            sent.append((statement, parameters))

        with built.uow() as uow:
            conn = uow.session.connection()
            event.listen(conn, "before_cursor_execute", keep)
            try:
                near = graph.neighbourhood(conn, applicant("C"), FactSettings(), velocity=True)
            finally:
                event.remove(conn, "before_cursor_execute", keep)
            ((statement, parameters),) = sent
            links = sum(len(level) for level in near.levels)
            assert links >= 5 and near.complete
            # as on a graph of millions: every node and link looked up by its index
            for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
                conn.exec_driver_sql(f"SET LOCAL {setting} = off")
            plan = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
            ).scalar_one()

        def by_id(node: dict[str, Any]) -> int:
            """Nodes found by their id in this part of the plan (rows a loop, times its loops)."""
            found = 0
            if node.get("Index Name") == "pk_decisioning_graph_node":
                found = node["Actual Rows"] * node["Actual Loops"]
            return found + sum(by_id(child) for child in node.get("Plans", []))

        root = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
        assert by_id(root) == links


class TestNodesWrittenOnlyWhenChanged:
    """An application mostly brings nodes the graph holds already (a shared device, IP address,
    phone) and changes none of them: the upsert leaves their rows as they are, yet returns every
    node wanted, as it was or as written."""

    def test_nodes_an_application_does_not_change_are_not_rewritten(self, built: Container) -> None:
        from creditfactory.decisioning import graph, store

        first = applicant("Q", device_fingerprint="d-shared", ip_address="10.7.7.7")
        second = applicant("R", device_fingerprint="d-shared", ip_address="10.7.7.7")
        with built.uow() as uow:
            decisioning.add_applicant(uow, applicant=first)
            uow.commit()
        postgres = built.engine.dialect.name == "postgresql"
        before = _node_versions(built) if postgres else {}
        wanted = graph.wanted_nodes(second)
        with built.uow() as uow:
            conn = uow.session.connection()
            got = store.add_seen_and_nodes(
                conn, applicant=second, application_ref="R-1", outcome=None, outcome_at=None, wanted=wanted
            )
            known = store.nodes_by_key(conn, list(wanted))
            uow.commit()
        assert got is not None and set(got) == set(wanted)
        assert got == known  # every node, the kept ones as they are, the new ones as written
        assert got[("device", "d-shared")].degree == 1  # first's link, read as it stands
        if postgres:
            after = _node_versions(built)
            person = ("person", second.id_number_token)
            assert person not in before  # R is new: written
            kept = [k for k in wanted if k in before]
            assert kept and all(after[k] == before[k] for k in kept)  # the others: not rewritten

    def test_a_node_that_changes_is_written(self, built: Container) -> None:
        from creditfactory.decisioning import store

        with built.uow() as uow:
            conn = uow.session.connection()
            store.ensure_nodes(conn, {("device", "d-late"): DAY, ("person", "p-1"): DAY})
            uow.commit()
        postgres = built.engine.dialect.name == "postgresql"
        before = _node_versions(built) if postgres else {}
        earlier = DAY - timedelta(days=30)
        with built.uow() as uow:
            conn = uow.session.connection()
            same = store.ensure_nodes(conn, {("device", "d-late"): DAY})
            moved = store.ensure_nodes(conn, {("device", "d-late"): earlier})
            named = store.ensure_nodes(conn, {("person", "p-1"): DAY}, customer_id="C-1")
            flagged = store.ensure_nodes(conn, {("person", "p-1"): DAY}, person_declined=True)
            uow.commit()
        assert same[("device", "d-late")].first_seen_date == DAY
        assert moved[("device", "d-late")].first_seen_date == earlier  # moves back
        assert (named[("person", "p-1")].customer_id, named[("person", "p-1")].declined) == ("C-1", False)
        assert (flagged[("person", "p-1")].customer_id, flagged[("person", "p-1")].declined) == ("C-1", True)
        if postgres:
            after = _node_versions(built)
            assert after[("device", "d-late")] != before[("device", "d-late")]
            assert after[("person", "p-1")] != before[("person", "p-1")]

    def test_a_customer_id_alone_is_a_change(self, built: Container) -> None:
        from creditfactory.decisioning import store

        with built.uow() as uow:
            store.ensure_nodes(uow.session.connection(), {("person", "p-2"): DAY})
            uow.commit()
        postgres = built.engine.dialect.name == "postgresql"
        before = _node_versions(built) if postgres else {}
        with built.uow() as uow:
            named = store.ensure_nodes(uow.session.connection(), {("person", "p-2"): DAY}, customer_id="C-2")
            uow.commit()
        middle = _node_versions(built) if postgres else {}
        with built.uow() as uow:
            again = store.ensure_nodes(uow.session.connection(), {("person", "p-2"): DAY}, customer_id="C-3")
            uow.commit()
        assert named[("person", "p-2")].customer_id == "C-2"
        assert again[("person", "p-2")].customer_id == "C-2"  # a person keeps its first customer id
        if postgres:
            assert middle[("person", "p-2")] != before[("person", "p-2")]  # named: written
            assert _node_versions(built)[("person", "p-2")] == middle[("person", "p-2")]  # kept

    @pytest.mark.parametrize(
        ("via", "theirs_too"),
        [
            ("add_seen_and_nodes", "device"),
            ("ensure_nodes", "device"),
            # every node the application wants was committed meanwhile: the statement returns
            # none of them, yet the seen row was written and the nodes come back
            ("add_seen_and_nodes", "all"),
        ],
    )
    def test_a_node_committed_after_the_statement_began_comes_back(
        self, built: Container, via: str, theirs_too: str
    ) -> None:
        """On PostgreSQL: another transaction adds the device node (or every node the
        application wants) and commits while the upsert waits for it. The upsert then finds the
        node committed, changes nothing in it and leaves it out of its own answer (its snapshot
        is older than the node): it is read apart."""
        import threading
        import time

        from sqlalchemy import text

        from creditfactory.decisioning import graph, store

        if built.engine.dialect.name != "postgresql":
            pytest.skip("concurrent writers: PostgreSQL")
        who = applicant("Q", device_fingerprint="d-race")
        other = built.engine.connect()
        other.begin()
        wanted = graph.wanted_nodes(who)
        added = wanted if theirs_too == "all" else {("device", "d-race"): DAY}
        theirs = store.ensure_nodes(other, added)
        result: dict[str, Any] = {}

        def apply() -> None:
            try:
                with built.uow() as uow:
                    conn = uow.session.connection()
                    result["pid"] = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    result["nodes"] = (
                        store.add_seen_and_nodes(
                            conn,
                            applicant=who,
                            application_ref="Q-race",
                            outcome=None,
                            outcome_at=None,
                            wanted=wanted,
                        )
                        if via == "add_seen_and_nodes"
                        else store.ensure_nodes(conn, wanted)
                    )
                    uow.commit()
            except BaseException as exc:  # reported below
                result["error"] = exc

        worker = threading.Thread(target=apply)
        worker.start()
        try:
            with built.engine.connect() as watch:  # until the upsert waits on the other's node
                for _ in range(500):
                    pid = result.get("pid")
                    waiting = (
                        pid is not None
                        and watch.execute(
                            text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": pid},
                        ).scalar()
                    )
                    watch.commit()
                    if waiting or "error" in result or not worker.is_alive():
                        break
                    time.sleep(0.01)
            assert "error" not in result, result["error"]
            assert waiting, "the upsert did not wait for the other transaction"
            other.commit()
        finally:
            other.close()  # rolls back when not committed: the worker is never left waiting
            worker.join(timeout=30)
        assert not worker.is_alive(), "the upsert did not finish"
        assert "error" not in result, result.get("error")
        nodes = result["nodes"]
        assert nodes is not None and set(nodes) == set(wanted)
        assert {k: nodes[k].id for k in theirs} == {k: n.id for k, n in theirs.items()}
        if via == "add_seen_and_nodes":
            with built.engine.connect() as conn:  # the seen row was written
                assert store.get_seen(conn, application_ref="Q-race") is not None


class TestNeighbourhoodStatementIsCachedByTheDriver:
    def test_seven_seeds_with_the_velocity_fit_psycopg_s_cached_length(self) -> None:
        """psycopg caches its translation of a statement (``%(name)s`` to ``$n``) of at most
        4,096 characters and translates a longer one again at every execution: the
        neighbourhood's statement with the velocity, for an application bringing its phone,
        device, IP address, address and three contacts, stays under it."""
        from psycopg import _queries
        from sqlalchemy.dialects import postgresql

        from creditfactory.decisioning import store

        limit = getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)
        statement = store._neighbourhood_sql(7, FactSettings().max_hops, velocity=True)
        assert len(str(statement.compile(dialect=postgresql.dialect()))) <= limit
