"""Versions, publication, offers and status changes on the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from creditfactory import whitelist
from creditfactory.bootstrap import Container
from creditfactory.whitelist import service as wl
from creditfactory.whitelist.store import WhitelistEntry
from tests.whitelist.conftest import ON, Publish, lines

FIRST = [
    ("C0001", "eligible", "A", 50_000, 435),
    ("C0002", "eligible", "B", 30_000, 565),
    ("C0003", "excluded", "X_OVERDUE", None, None),
]


def entry_status(container: Container, version_id: int, customer_id: str) -> str:
    with container.uow() as uow:
        return (
            uow.session.scalars(
                select(WhitelistEntry.status).where(
                    WhitelistEntry.version_id == version_id, WhitelistEntry.customer_id == customer_id
                )
            )
            .one()
            .value
        )


class TestPublish:
    def test_eligible_lines_become_offers_and_the_version_is_summarised(
        self, container: Container, publish: Publish
    ) -> None:
        result = publish(lines(FIRST))
        assert (result.scored, result.eligible, result.excluded) == (3, 2, 1)
        assert result.total_limit == Decimal("80000.00")
        with container.uow() as uow:
            offer = wl.current_offer(uow, customer_id="C0001", on=ON)
            version = wl.get_version(uow, version_id=result.version_id)
            status, summary = version.status, version.summary
            assert wl.find_offer(uow.session, customer_id="C0003", on=ON) is None
        assert (offer.limit, offer.annual_rate, offer.grade) == (
            Decimal("50000.00"),
            Decimal("0.04350000"),
            "A",
        )
        assert offer.expiry_date == date(2025, 9, 30)
        assert offer.status is whitelist.EntryStatus.OFFERED
        assert status is whitelist.VersionStatus.PUBLISHED
        assert '"X_OVERDUE": 1' in summary

    def test_no_offer_is_a_clear_not_found(self, container: Container, publish: Publish) -> None:
        publish(lines(FIRST))
        with container.uow() as uow, pytest.raises(wl.NoOffer, match="C0003 has no pre-approved offer"):
            wl.current_offer(uow, customer_id="C0003", on=ON)

    def test_an_offer_past_its_expiry_is_not_shown(self, container: Container, publish: Publish) -> None:
        publish(lines(FIRST))
        with container.uow() as uow:
            assert wl.find_offer(uow.session, customer_id="C0001", on=date(2025, 9, 30)) is not None
            assert wl.find_offer(uow.session, customer_id="C0001", on=date(2025, 10, 1)) is None

    def test_the_same_identity_is_found_not_made_again(self, container: Container, publish: Publish) -> None:
        result = publish(lines(FIRST), tag="same")
        spec = wl.VersionSpec(
            identity=whitelist.version_identity(
                kind="mined",
                name="proactive",
                as_of=date(2025, 6, 30),
                strategy_hash="same",
                models={},
                input_fingerprint="same",
            ),
            name="proactive",
            kind="mined",
            as_of=date(2025, 6, 30),
            strategy_hash="same",
            input_fingerprint="same",
        )
        with container.uow() as uow:
            version, done = wl.begin_version(uow, spec=spec, created_by="S900", now=container.clock.now())
            assert done and version.id == result.version_id

    def test_a_version_that_died_building_is_taken_over_and_nothing_of_it_was_visible(
        self, container: Container, publish: Publish
    ) -> None:
        spec = wl.VersionSpec(
            identity="crashed",
            name="proactive",
            kind="mined",
            as_of=date(2025, 6, 30),
            strategy_hash="h",
            input_fingerprint="i",
        )
        with container.uow() as uow:
            version, done = wl.begin_version(uow, spec=spec, created_by="S900", now=container.clock.now())
            uow.commit()
            vid = version.id
        staging = wl.fresh_staging(container.lake_dir, vid)
        wl.write_lines(staging, lines(FIRST), part=0)
        # ... the run dies here: staged lines, a building version, no offers.
        with container.uow() as uow:
            assert wl.find_offer(uow.session, customer_id="C0001", on=ON) is None
            again, done = wl.begin_version(uow, spec=spec, created_by="S901", now=container.clock.now())
            uow.commit()
            assert not done and again.id == vid
        staging = wl.fresh_staging(container.lake_dir, vid)
        assert list(staging.iterdir()) == []
        wl.write_lines(staging, lines(FIRST), part=0)
        with container.uow() as uow:
            wl.publish_version(
                uow,
                lake=container.lake_dir,
                version_id=vid,
                business_date=ON,
                expiry_date=None,
                seconds=1.0,
                now=container.clock.now(),
            )
            uow.commit()
            assert wl.find_offer(uow.session, customer_id="C0001", on=ON) is not None

    def test_published_entries_have_the_planners_statistics(
        self, container: Container, publish: Publish
    ) -> None:
        if container.engine.dialect.name != "postgresql":
            pytest.skip("SQLite plans without sampled statistics")
        with container.engine.connect() as conn:
            started = conn.scalar(text("SELECT clock_timestamp()"))
        publish(lines([("C0001", "eligible", "A", 1_000, 435), ("C0002", "eligible", "B", 2_000, 435)]))
        with container.engine.connect() as conn:
            analyzed = conn.scalar(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'whitelist_entry'")
            )
        assert analyzed is not None and analyzed > started  # by the publication, not by autovacuum

    def test_a_customer_listed_twice_is_refused(self, container: Container, publish: Publish) -> None:
        twice = lines([("C0001", "eligible", "A", 1_000, 435), ("C0001", "eligible", "B", 2_000, 435)])
        with pytest.raises(whitelist.service.Conflict, match="C0001 more than once"):
            publish(twice)


class TestSupersede:
    def test_a_newer_version_replaces_open_offers_and_carries_applications(
        self, container: Container, publish: Publish
    ) -> None:
        first = publish(lines(FIRST), tag="v1")
        with container.uow() as uow:
            assert wl.record_event(uow, customer_id="C0002", event=whitelist.EntryEvent.APPLY, on=ON) == 1
            uow.commit()
        second = publish(
            lines([("C0001", "eligible", "A", 60_000, 435), ("C0002", "eligible", "B", 30_000, 565)]),
            tag="v2",
        )
        assert second.superseded == [first.version_id]
        assert entry_status(container, first.version_id, "C0001") == "superseded"
        assert entry_status(container, first.version_id, "C0002") == "applied"
        assert entry_status(container, second.version_id, "C0002") == "applied"
        with container.uow() as uow:
            offer = wl.current_offer(uow, customer_id="C0001", on=ON)
            assert (
                wl.get_version(uow, version_id=first.version_id).status is whitelist.VersionStatus.SUPERSEDED
            )
        assert (offer.version_id, offer.limit) == (second.version_id, Decimal("60000.00"))

    def test_another_list_does_not_supersede(self, container: Container, publish: Publish) -> None:
        first = publish(lines(FIRST), tag="a")
        publish(lines([("C0003", "eligible", "C", 5_000, 800)]), name="manual", tag="b")
        assert entry_status(container, first.version_id, "C0001") == "offered"

    def test_retiring_withdraws_open_offers(self, container: Container, publish: Publish) -> None:
        first = publish(lines(FIRST))
        with container.uow() as uow:
            n = wl.retire_version(
                uow, version_id=first.version_id, business_date=ON, now=container.clock.now()
            )
            uow.commit()
            assert n == 2
            assert wl.find_offer(uow.session, customer_id="C0001", on=ON) is None


class TestStatus:
    def test_apply_then_decline_then_no_offer(self, container: Container, publish: Publish) -> None:
        v = publish(lines(FIRST))
        with container.uow() as uow:
            wl.record_event(uow, customer_id="C0001", event=whitelist.EntryEvent.APPLY, on=ON)
            assert wl.current_offer(uow, customer_id="C0001", on=ON).status is whitelist.EntryStatus.APPLIED
            wl.record_event(
                uow, customer_id="C0001", event=whitelist.EntryEvent.DECLINE, on=ON, reason="D_SCORE"
            )
            uow.commit()
            assert wl.find_offer(uow.session, customer_id="C0001", on=ON) is None
        assert entry_status(container, v.version_id, "C0001") == "declined"

    def test_an_applicant_without_an_offer_changes_nothing(
        self, container: Container, publish: Publish
    ) -> None:
        publish(lines(FIRST))
        with container.uow() as uow:
            assert wl.record_event(uow, customer_id="C0008", event=whitelist.EntryEvent.APPLY, on=ON) == 0

    def test_overdue_customers_exit_set_based(self, container: Container, publish: Publish) -> None:
        v = publish(lines(FIRST))
        with container.uow() as uow:
            assert (
                wl.exit_customers(
                    uow.session, customer_ids=["C0002", "C0003"], on=ON, reason="overdue at end of day"
                )
                == 1
            )
            uow.commit()
        assert entry_status(container, v.version_id, "C0002") == "exited"
        assert entry_status(container, v.version_id, "C0001") == "offered"

    def test_offers_expire_at_end_of_day(self, container: Container, publish: Publish) -> None:
        v = publish(lines(FIRST))
        with container.uow() as uow:
            assert wl.expire_offers(uow.session, on=date(2025, 9, 30)) == 0
            assert wl.expire_offers(uow.session, on=date(2025, 10, 1)) == 2
            uow.commit()
            counts = wl.status_counts(uow, version_id=v.version_id)
        assert counts == {"expired": 2}

    def test_customer_facts_feed_the_next_mining_run(self, container: Container, publish: Publish) -> None:
        publish(lines(FIRST))
        with container.uow() as uow:
            wl.record_event(uow, customer_id="C0001", event=whitelist.EntryEvent.ACCEPT, on=ON)
            wl.record_event(uow, customer_id="C0002", event=whitelist.EntryEvent.DECLINE, on=date(2025, 6, 1))
            uow.commit()
            facts = wl.customer_facts(uow.session, on=ON).sort("customer_id")
        assert facts.rows() == [("C0001", True, None, False), ("C0002", False, 30, False)]


class TestDiffVersions:
    def test_diff_of_two_published_versions(self, container: Container, publish: Publish) -> None:
        a = publish(lines(FIRST), tag="a")
        b = publish(
            lines([("C0001", "eligible", "A", 60_000, 435), ("C0003", "eligible", "C", 5_000, 800)]), tag="b"
        )
        with container.uow() as uow:
            d = wl.diff_versions(uow, lake=container.lake_dir, old_id=a.version_id, new_id=b.version_id)
        assert d.to_json()["added"] == 1 and d.to_json()["removed"] == 1 and d.to_json()["changed"] == 1
