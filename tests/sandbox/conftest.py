"""A small sandbox bank generated once for the sandbox tests, and ways to read it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from creditfactory.sandbox import GenerateResult, SandboxConfig, generate

#: Three chunks (1500, 1500, 1000 customers) so that part files and cross-chunk links are exercised.
SMALL = SandboxConfig(customers=4_000, seed=20250630, chunk_size=1_500)


def read_table(root: Path, table: str) -> pl.DataFrame:
    """All parts of an extract table (or the truth's customers) as one frame."""
    if table == "truth":
        return pl.read_parquet(root / "truth" / "customers" / "*.parquet")
    single = root / "extracts" / f"{table}.parquet"
    if single.exists():
        return pl.read_parquet(single)
    return pl.read_parquet(root / "extracts" / table / "*.parquet")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    return generate(SMALL, tmp_path_factory.mktemp("sandbox") / "bank", workers=1)


@pytest.fixture(scope="session")
def tables(sandbox: GenerateResult) -> dict[str, pl.DataFrame]:
    from creditfactory.contract.tables import TABLES

    frames = {t.name: read_table(sandbox.out_dir, t.name) for t in TABLES}
    frames["truth"] = read_table(sandbox.out_dir, "truth")
    return frames
