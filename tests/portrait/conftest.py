"""Lakes for the portrait tests: the hand-made worked example and a small ingested sandbox bank."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from creditfactory import portrait
from creditfactory.portrait import store
from tests.portrait.lakes import AS_OF, worked_lake

#: Customers of the small sandbox bank (its history: 24 months to 2025-06-30).
SANDBOX_CUSTOMERS = 600


@pytest.fixture(scope="session")
def worked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worked-example lake with its portrait at 2025-06-30 built (do not modify)."""
    lake = worked_lake(tmp_path_factory.mktemp("worked") / "lake")
    portrait.build(lake, as_of=AS_OF)
    return lake


@pytest.fixture
def worked_copy(tmp_path: Path) -> Path:
    """A fresh worked-example lake, nothing built, for tests that change it."""
    return worked_lake(tmp_path / "lake")


@pytest.fixture(scope="session")
def sandbox_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sandbox bank (24 months to 2025-06-30) ingested through the contract."""
    from creditfactory import bootstrap
    from creditfactory.clock import FixedClock
    from creditfactory.config import Settings
    from creditfactory.contract import IngestSettings, ingest_directory
    from creditfactory.sandbox import SandboxConfig, generate

    root = tmp_path_factory.mktemp("sandbox")
    generate(SandboxConfig(customers=SANDBOX_CUSTOMERS, seed=31, chunk_size=400), root / "bank", workers=1)
    container = bootstrap.build(
        Settings(data_dir=root / "var"), clock=FixedClock(datetime(2025, 7, 1, 2, 0, tzinfo=UTC))
    )
    try:
        result = ingest_directory(
            directory=root / "bank",
            uow_factory=container.sessions,
            clock=container.clock,
            vault=container.vault,
            settings=IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir),
        )
        assert result.rejected == 0
    finally:
        container.close()
    return root / "var" / "lake"


@pytest.fixture
def sandbox_copy(sandbox_lake: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the sandbox lake (without any portrait) for tests that change it."""
    copy = tmp_path / "lake"
    shutil.copytree(sandbox_lake, copy, ignore=shutil.ignore_patterns(store.PORTRAIT, store.TARGETS))
    yield copy
