"""Fixtures of the whitelist tests: the factory bank loaded, and versions made from frames."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from creditfactory import whitelist
from creditfactory.bootstrap import Container
from creditfactory.contract import IngestSettings, service
from creditfactory.whitelist import service as wl
from tests.factories import write_extract

#: The business date of these tests.
ON = date(2025, 7, 1)


@pytest.fixture
def bank(container: Container, tmp_path: Path) -> Container:
    """The factory extract (8 customers C0001..C0008) ingested."""
    service.ingest_directory(
        directory=write_extract(tmp_path / "extract"),
        uow_factory=container.sessions,
        clock=container.clock,
        vault=container.vault,
        settings=IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir),
    )
    return container


def lines(rows: list[tuple[str, str, str | None, int | None, int | None]]) -> pl.DataFrame:
    """Lines from (customer, outcome, grade or reason, limit in yuan, rate in basis points)."""
    out = []
    for cid, outcome, tag, limit, bp in rows:
        eligible = outcome == "eligible"
        out.append(
            {
                "customer_id": cid,
                "segment": "farmer",
                "branch_id": "B01",
                "outcome": outcome,
                "reason": None if eligible else tag,
                "hit_mask": 0 if eligible else 1,
                "hit_mask_2": 0,
                "score": 650.0 if eligible else 500.0,
                "pd": 0.02,
                "grade": tag if eligible else None,
                "limit_fen": None if limit is None else limit * 100,
                "annual_rate_e8": None if bp is None else bp * 10_000,
                "expiry_date": date(2025, 9, 30) if eligible else None,
            }
        )
    return pl.DataFrame(out, schema=dict(whitelist.LINE_SCHEMA))


Publish = Callable[..., whitelist.PublishResult]


@pytest.fixture
def publish(container: Container) -> Publish:
    """Make and publish a version from a frame of lines, as the miner does."""

    def run(
        frame: pl.DataFrame, *, name: str = "proactive", tag: str = "x", on: date = ON
    ) -> whitelist.PublishResult:
        spec = wl.VersionSpec(
            identity=whitelist.version_identity(
                kind="mined",
                name=name,
                as_of=date(2025, 6, 30),
                strategy_hash=tag,
                models={},
                input_fingerprint=tag,
            ),
            name=name,
            kind="mined",
            as_of=date(2025, 6, 30),
            strategy_hash=tag,
            input_fingerprint=tag,
        )
        with container.uow() as uow:
            version, done = wl.begin_version(uow, spec=spec, created_by="S900", now=container.clock.now())
            uow.commit()
            vid = version.id
        assert not done
        staging = wl.fresh_staging(container.lake_dir, vid)
        wl.write_lines(staging, frame, part=0)
        with container.uow() as uow:
            result = wl.publish_version(
                uow,
                lake=container.lake_dir,
                version_id=vid,
                business_date=on,
                expiry_date=date(2025, 9, 30),
                seconds=0.1,
                now=container.clock.now(),
            )
            uow.commit()
        return result

    return run
