"""Headless chromium for page tests (marked ``browser``): skipped cleanly when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: Where Debian puts it; ``CREDITFACTORY_CHROMIUM`` overrides.
DEFAULT = "/usr/bin/chromium"

#: Appended to a page under test: records the layout's width against the window's on <body>.
MEASURE = (
    "<script>document.body.setAttribute('data-scroll-width', document.documentElement.scrollWidth);"
    "document.body.setAttribute('data-window-width', window.innerWidth);</script>"
)


def chromium() -> str:
    path = os.environ.get("CREDITFACTORY_CHROMIUM") or shutil.which("chromium") or DEFAULT
    if not Path(path).exists():
        pytest.skip(f"headless chromium not found at {path}")
    return path


def dump_dom(page: Path, *, width: int = 390, height: int = 844, timeout: float = 60.0) -> str:
    """The DOM of a local HTML file after chromium laid it out in a ``width`` x ``height``
    window (390 x 844: a phone)."""
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or "<body" not in done.stdout:
        raise AssertionError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout
