"""Velocity: earlier applications per ID, phone, device and IP in half-open windows that end at
the application's own time; people sharing a device; the seen-applications table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from creditfactory import decisioning
from creditfactory.bootstrap import Container
from creditfactory.decisioning import Outcome
from creditfactory.errors import InvalidInput
from tests.decisioning.conftest import AT, applicant, facts

US = timedelta(microseconds=1)


def remember(container: Container, *apps: tuple[str, decisioning.Applicant]) -> None:
    with container.uow() as uow:
        for ref, app in apps:
            decisioning.record_seen(uow, applicant=app, application_ref=ref)
        uow.commit()


def counts(values: dict[str, Any], key: str) -> tuple[Any, Any, Any]:
    return values[f"apps_per_{key}_1h"], values[f"apps_per_{key}_24h"], values[f"apps_per_{key}_30d"]


class TestWindows:
    def test_each_window_is_half_open_and_ends_at_the_application(self, container: Container) -> None:
        same = {"device_fingerprint": "fp-1", "ip_address": "10.1.1.1"}
        remember(
            container,
            ("at", applicant("X", applied_at=AT, **same)),  # the instant itself: not earlier
            ("later", applicant("X", applied_at=AT + US, **same)),  # after: never counted
            ("1h", applicant("X", applied_at=AT - timedelta(hours=1), **same)),  # start of 1h: in
            ("1h-", applicant("X", applied_at=AT - timedelta(hours=1) - US, **same)),  # just out of 1h
            ("24h", applicant("X", applied_at=AT - timedelta(hours=24), **same)),
            ("24h-", applicant("X", applied_at=AT - timedelta(hours=24) - US, **same)),
            ("30d", applicant("X", applied_at=AT - timedelta(days=30), **same)),
            ("30d-", applicant("X", applied_at=AT - timedelta(days=30) - US, **same)),
        )
        values = facts(container, applicant("X", **same))
        # in 1h: [t-1h, t) = {1h}; in 24h: {1h, 1h-, 24h}; in 30d: {..., 24h-, 30d}
        for key in ("id", "phone", "device", "ip"):
            assert counts(values, key) == (1, 3, 5), key

    def test_windows_follow_the_application_time_not_the_clock(self, container: Container) -> None:
        remember(container, ("old", applicant("X", applied_at=AT - timedelta(days=400))))
        late = AT - timedelta(days=399)
        assert counts(facts(container, applicant("X", applied_at=late)), "id") == (0, 1, 1)
        assert counts(facts(container, applicant("X")), "id") == (0, 0, 0)

    def test_keys_are_counted_separately(self, container: Container) -> None:
        earlier = AT - timedelta(minutes=10)
        remember(
            container,
            ("other-person-same-phone", applicant("Y", phone_token="phone-X", applied_at=earlier)),
            ("other-person-same-ip", applicant("Z", ip_address="10.1.1.1", applied_at=earlier)),
        )
        values = facts(container, applicant("X", ip_address="10.1.1.1", device_fingerprint="fp-9"))
        assert counts(values, "id") == (0, 0, 0)
        assert counts(values, "phone") == (1, 1, 1)
        assert counts(values, "ip") == (1, 1, 1)
        assert counts(values, "device") == (0, 0, 0)

    def test_missing_device_or_ip_gives_null_counts(self, container: Container) -> None:
        values = facts(container, applicant("X"))
        assert counts(values, "device") == (None, None, None)
        assert counts(values, "ip") == (None, None, None)
        assert counts(values, "id") == (0, 0, 0)
        assert values["device_applicants_30d"] is None


class TestDeviceApplicants:
    def test_other_people_on_the_device_in_30_days(self, container: Container) -> None:
        on = {"device_fingerprint": "fp-shared"}
        remember(
            container,
            ("y1", applicant("Y", applied_at=AT - timedelta(days=1), **on)),
            ("y2", applicant("Y", applied_at=AT - timedelta(days=2), **on)),  # the same person again
            ("z", applicant("Z", applied_at=AT - timedelta(days=29), **on)),
            ("w-old", applicant("W", applied_at=AT - timedelta(days=31), **on)),  # too long ago
            ("me", applicant("X", applied_at=AT - timedelta(hours=2), **on)),  # the applicant
            ("v-other-device", applicant("V", applied_at=AT - timedelta(days=1), device_fingerprint="fp-2")),
        )
        values = facts(container, applicant("X", **on))
        assert values["device_applicants_30d"] == 2
        assert counts(values, "device") == (0, 2, 4)


class TestSeen:
    def test_recording_twice_changes_nothing(self, container: Container) -> None:
        app = applicant("X", device_fingerprint="fp-1")
        with container.uow() as uow:
            assert decisioning.record_seen(uow, applicant=app, application_ref="APP-1") is True
            assert decisioning.record_seen(uow, applicant=app, application_ref="APP-1") is False
            uow.commit()
        values = facts(container, applicant("X", applied_at=AT + timedelta(minutes=1)))
        assert counts(values, "id") == (1, 1, 1)

    def test_outcome_of_an_unknown_application_is_refused(self, container: Container) -> None:
        with container.uow() as uow, pytest.raises(decisioning.ApplicationNotSeen):
            decisioning.record_outcome(uow, application_ref="nope", outcome=Outcome.DECLINE, at=AT)

    def test_outcome_is_stored(self, container: Container) -> None:
        remember(container, ("APP-1", applicant("X")))
        with container.uow() as uow:
            decisioning.record_outcome(uow, application_ref="APP-1", outcome="refer", at=AT)
            uow.commit()
        with container.uow() as uow:
            assert decisioning.graph_status(uow)["applications"] == {"refer": 1}

    def test_remembering_an_application_twice_changes_nothing(self, container: Container) -> None:
        app = applicant("X", device_fingerprint="fp-1")
        with container.uow() as uow:
            assert decisioning.remember_application(uow, applicant=app, application_ref="APP-1") is True
            assert decisioning.remember_application(uow, applicant=app, application_ref="APP-1") is False
            uow.commit()
        with container.uow() as uow:
            status = decisioning.graph_status(uow)
        assert status["applications"] == {"pending": 1}
        assert status["nodes_by_kind"] == {"device": 1, "person": 1, "phone": 1}

    def test_bad_reference_is_refused(self, container: Container) -> None:
        with container.uow() as uow, pytest.raises(InvalidInput, match="reference"):
            decisioning.record_seen(uow, applicant=applicant("X"), application_ref="")
