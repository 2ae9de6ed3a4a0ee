"""The published portraits' dates, asked at every decision, are listed again only when the
kind's folder has changed (``portrait.store.built_dates``)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from creditfactory.portrait import store

DAY = date(2026, 1, 31)


def _publish(lake: Path, as_of: date) -> None:
    staging = store.stage(lake, store.PORTRAIT)
    store.write_manifest(staging, {"as_of": as_of.isoformat()})
    store.publish(staging, store.folder(lake, store.PORTRAIT, as_of))


def _settle(lake: Path) -> None:
    """The kind's folder last changed a minute ago (past the settling time)."""
    base = store.root(lake, store.PORTRAIT)
    past = base.stat().st_mtime_ns - 60 * 10**9
    os.utime(base, ns=(past, past))


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each folder listed by ``built_dates``."""
    listed: list[Path] = []
    iterdir = Path.iterdir

    def counted(self: Path) -> Any:
        listed.append(self)
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", counted)
    return listed


def test_an_unchanged_folder_is_listed_once(tmp_path: Path, listings: list[Path]) -> None:
    for i in range(3):
        _publish(tmp_path, DAY + timedelta(days=i))
    _settle(tmp_path)
    expected = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    assert store.built_dates(tmp_path, store.PORTRAIT) == expected
    assert store.built_dates(tmp_path, store.PORTRAIT) == expected
    got = store.built_dates(tmp_path, store.PORTRAIT)
    got.append(DAY)  # a caller's list is its own
    assert store.built_dates(tmp_path, store.PORTRAIT) == expected
    assert len(listings) == 1


def test_publishing_replacing_and_removing_are_seen_at_once(tmp_path: Path, listings: list[Path]) -> None:
    _publish(tmp_path, DAY)
    _settle(tmp_path)
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY]
    _publish(tmp_path, DAY + timedelta(days=1))  # a new one
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY, DAY + timedelta(days=1)]
    _settle(tmp_path)
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY, DAY + timedelta(days=1)]
    _publish(tmp_path, DAY)  # a rebuild of the first
    _settle(tmp_path)
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY, DAY + timedelta(days=1)]
    store.discard(store.folder(tmp_path, store.PORTRAIT, DAY))
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY + timedelta(days=1)]
    assert store.built_dates(store.root(tmp_path, "elsewhere"), store.PORTRAIT) == []


def test_a_folder_that_has_just_changed_is_listed_every_time(tmp_path: Path, listings: list[Path]) -> None:
    """A file time is as coarse as a clock tick: a listing taken in the tick of a change is not
    kept, for a second change in the same tick would leave the time unchanged."""
    _publish(tmp_path, DAY)
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY]
    base = store.root(tmp_path, store.PORTRAIT)
    tick = base.stat().st_mtime_ns
    _publish(tmp_path, DAY + timedelta(days=1))
    os.utime(base, ns=(tick, tick))  # the second change within the first's tick
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY, DAY + timedelta(days=1)]
    assert len(listings) == 2


def test_an_incomplete_folder_is_not_a_built_date(tmp_path: Path) -> None:
    _publish(tmp_path, DAY)
    store.folder(tmp_path, store.PORTRAIT, DAY + timedelta(days=1)).mkdir()  # no manifest
    store.stage(tmp_path, store.PORTRAIT)  # a build under way
    _settle(tmp_path)
    assert store.built_dates(tmp_path, store.PORTRAIT) == [DAY]
    assert store.built_dates(tmp_path, store.TARGETS) == []
