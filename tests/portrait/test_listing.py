"""The published portraits' dates, asked at every decision, are listed again only when the
kind's folder has changed, or after a second (``portrait.store.built_dates``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from creditfactory.portrait import store

DAY = date(2026, 1, 31)
NEXT = DAY + timedelta(days=1)


def _publish(lake: Path, as_of: date) -> None:
    staging = store.stage(lake, store.PORTRAIT)
    store.write_manifest(staging, {"as_of": as_of.isoformat()})
    store.publish(staging, store.folder(lake, store.PORTRAIT, as_of))


@dataclass
class Clocks:
    """This machine's time as the listing reads it (``ahead`` of the real one, so that the
    folder's real times look that old) and the monotonic clock, set by hand."""

    ahead: int = 0
    monotonic: int = 0


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Clocks:
    c = Clocks()
    real = store._wall_ns
    monkeypatch.setattr(store, "_wall_ns", lambda: real() + c.ahead)
    monkeypatch.setattr(store, "_monotonic_ns", lambda: c.monotonic)
    return c


def _settled(c: Clocks) -> None:
    """The folder's last change is past the settling time."""
    c.ahead += store.SETTLED_NS + 10**9


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


def _dates(lake: Path) -> list[date]:
    return store.built_dates(lake, store.PORTRAIT)


def test_an_unchanged_folder_is_listed_once_within_a_second(
    tmp_path: Path, clocks: Clocks, listings: list[Path]
) -> None:
    for i in range(3):
        _publish(tmp_path, DAY + timedelta(days=i))
    _settled(clocks)
    expected = [DAY, NEXT, DAY + timedelta(days=2)]
    assert _dates(tmp_path) == expected
    clocks.monotonic += store.KEPT_NS - 1
    got = _dates(tmp_path)
    got.append(DAY)  # a caller's list is its own
    assert _dates(tmp_path) == expected
    assert len(listings) == 1
    clocks.monotonic += 1  # a second after the listing: listed again
    assert _dates(tmp_path) == expected
    assert len(listings) == 2


def test_publishing_rebuilding_and_removing_are_seen_at_once(
    tmp_path: Path, clocks: Clocks, listings: list[Path]
) -> None:
    _publish(tmp_path, DAY)
    store.folder(tmp_path, store.PORTRAIT, NEXT).mkdir()  # a folder without its manifest
    _settled(clocks)
    assert _dates(tmp_path) == [DAY]
    assert _dates(tmp_path) == [DAY] and len(listings) == 1
    _publish(tmp_path, NEXT)  # built over the incomplete one: it counts now
    _settled(clocks)
    assert _dates(tmp_path) == [DAY, NEXT] and len(listings) == 2
    store.discard(store.folder(tmp_path, store.PORTRAIT, DAY))
    _settled(clocks)
    assert _dates(tmp_path) == [NEXT] and len(listings) == 3


def test_times_set_back_on_the_folder_do_not_bring_back_a_kept_listing(
    tmp_path: Path, clocks: Clocks, listings: list[Path]
) -> None:
    """A copy that restores the folder's times (``cp -a``, ``rsync -a``) cannot set its change
    time back."""
    _publish(tmp_path, DAY)
    _settled(clocks)
    base = store.root(tmp_path, store.PORTRAIT)
    before = base.stat()
    assert _dates(tmp_path) == [DAY]
    _publish(tmp_path, NEXT)
    os.utime(base, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert base.stat().st_mtime_ns == before.st_mtime_ns
    _settled(clocks)
    assert _dates(tmp_path) == [DAY, NEXT]


def test_a_manifest_removed_inside_a_folder_is_seen_within_a_second(
    tmp_path: Path, clocks: Clocks, listings: list[Path]
) -> None:
    _publish(tmp_path, DAY)
    _publish(tmp_path, NEXT)
    _settled(clocks)
    assert _dates(tmp_path) == [DAY, NEXT]
    (store.folder(tmp_path, store.PORTRAIT, NEXT) / store.MANIFEST).unlink()  # the folder's times stay
    clocks.monotonic += store.KEPT_NS
    assert _dates(tmp_path) == [DAY]


def test_a_folder_that_has_just_changed_is_listed_every_time(
    tmp_path: Path, clocks: Clocks, listings: list[Path]
) -> None:
    """A listing taken while the folder may still change within its timestamp is not kept."""
    _publish(tmp_path, DAY)
    clocks.ahead = store.SETTLED_NS - 10**8  # changed less than the settling time ago
    assert _dates(tmp_path) == [DAY]
    assert _dates(tmp_path) == [DAY]
    assert len(listings) == 2


def test_an_incomplete_folder_or_a_missing_kind_is_no_built_date(tmp_path: Path, clocks: Clocks) -> None:
    _publish(tmp_path, DAY)
    store.folder(tmp_path, store.PORTRAIT, NEXT).mkdir()  # no manifest
    store.stage(tmp_path, store.PORTRAIT)  # a build under way
    _settled(clocks)
    assert _dates(tmp_path) == [DAY]
    assert store.built_dates(tmp_path, store.TARGETS) == []
