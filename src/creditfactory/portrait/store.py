"""Where portraits live in the lake, and how they are published.

Layout::

    LAKE/portrait/as_of=2025-06-30/part-00000.parquet ... _manifest.json
    LAKE/portrait_target/as_of=2025-06-30/part-00000.parquet ... _manifest.json

A build writes into a staging folder beside them (``_staging-<token>``) and publishes it with a
rename, so a reader sees either the previous complete portrait or the new complete one, and a
build that dies leaves nothing visible. A rebuild moves the old folder aside, renames the new
one into place and removes the old one. A folder counts as built only when it holds its
``_manifest.json`` (written last, inside the staging folder).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from datetime import date
from pathlib import Path
from stat import S_ISDIR
from typing import Any

PORTRAIT = "portrait"
TARGETS = "portrait_target"
MANIFEST = "_manifest.json"
_FOLDER = re.compile(r"^as_of=(\d{4}-\d{2}-\d{2})$")


def root(lake: Path, kind: str) -> Path:
    return lake / kind


def folder(lake: Path, kind: str, as_of: date) -> Path:
    return root(lake, kind) / f"as_of={as_of.isoformat()}"


def parts(path: Path) -> list[Path]:
    """The Parquet parts of a published folder, in order."""
    return sorted(p for p in path.glob("part-*.parquet") if p.is_file())


def stage(lake: Path, kind: str) -> Path:
    """A fresh, empty staging folder (invisible to readers)."""
    base = root(lake, kind)
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"_staging-{secrets.token_hex(6)}"
    path.mkdir()
    return path


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(lake: Path, kind: str) -> list[Path]:
    """Remove staging and replaced folders left by builds that did not finish."""
    base = root(lake, kind)
    if not base.is_dir():
        return []
    removed: list[Path] = []
    for path in base.iterdir():
        if path.is_dir() and (path.name.startswith("_staging-") or path.name.startswith("_replaced-")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def publish(staging: Path, target: Path) -> None:
    """Move a complete staging folder into place, replacing what was there."""
    if not (staging / MANIFEST).is_file():
        raise RuntimeError(f"{staging} has no manifest; refusing to publish an incomplete build")
    old: Path | None = None
    if target.exists():
        old = target.parent / f"_replaced-{secrets.token_hex(6)}"
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path / MANIFEST)


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data


#: a folder's listing, kept while the folder is unchanged: path -> (what identifies the
#: folder's state, when the listing was taken on the monotonic clock, the dates)
_LISTED: dict[str, tuple[tuple[int, int, int, int], int, tuple[date, ...]]] = {}
#: a listing is kept only once its folder has been still this long: a change in the same
#: timestamp as the listing would leave the folder's times as they were, and some
#: filesystems' times are whole seconds or two (FAT, HFS+, ext4 with small inodes)
SETTLED_NS = 3_000_000_000
#: and for this long at most, whatever the folder's times say: a manifest removed inside a
#: published folder, or a lake whose folder times come from another machine's clock, is seen
#: within a second
KEPT_NS = 1_000_000_000


def _wall_ns() -> int:
    """This machine's time, to compare with a file's (its age, not a time of day)."""
    return time.time_ns()  # noqa: TID251


def _monotonic_ns() -> int:
    return time.monotonic_ns()


def built_dates(lake: Path, kind: str) -> list[date]:
    """As-of dates with a published folder, oldest first.

    Every decision asks (the newest portrait at or before its date), and a year of daily
    portraits is 365 folders to look into: the listing is kept while the kind's folder is
    unchanged, for a second at most. Publishing, replacing or removing a portrait renames or
    removes an entry of that folder, which changes its times, and a folder is published
    complete (its manifest inside), so an unchanged folder lists the same dates. Asking
    costs one ``stat`` while the listing is kept."""
    base = root(lake, kind)
    now = _wall_ns()  # before the stat: a listing that takes long does not make the folder older
    try:
        st = os.stat(base)
    except OSError:
        return []
    if not S_ISDIR(st.st_mode):
        return []
    key = str(base)
    state = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)  # a utime cannot set ctime back
    kept = _LISTED.get(key)
    if kept is not None and kept[0] == state and _monotonic_ns() - kept[1] < KEPT_NS:
        return list(kept[2])
    taken = _monotonic_ns()
    out: list[date] = []
    for path in base.iterdir():
        match = _FOLDER.match(path.name)
        if match and (path / MANIFEST).is_file():
            out.append(date.fromisoformat(match.group(1)))
    out.sort()
    if now - max(st.st_mtime_ns, st.st_ctime_ns) > SETTLED_NS:
        _LISTED[key] = (state, taken, tuple(out))
    else:
        _LISTED.pop(key, None)
    return out
