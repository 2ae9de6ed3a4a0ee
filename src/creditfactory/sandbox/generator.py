"""Generate a sandbox bank: extracts in the contract's format, the ground truth apart.

Two passes over the customers, chunk by chunk:

1. **Population**: draw each chunk's latent core and keep only what must be known across
   chunks: the linear predictor of default (to solve the intercept that makes the mean
   ``pd_12m`` equal the configured bad rate) and region, birth date and sex (to give every
   ID number a unique sequence number).
2. **Tables**: draw the chunk's core again (the same draws), then every table, write one part
   per table and drop everything. Chunks are independent, so they may run in parallel
   processes; the bytes do not depend on that.

Randomness is keyed by (seed, family of tables, chunk) and no file carries a timestamp, so the
same config gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from creditfactory.contract.tables import ExtractLayout, get_table
from creditfactory.sandbox.bank import Bank, build_bank
from creditfactory.sandbox.config import GENERATOR_VERSION, SandboxConfig, SandboxError
from creditfactory.sandbox.credit import build_credit
from creditfactory.sandbox.deposits import build_deposits
from creditfactory.sandbox.digital import build_digital
from creditfactory.sandbox.economy import draw_economy
from creditfactory.sandbox.external import build_external
from creditfactory.sandbox.frames import encode, finalise, write_file
from creditfactory.sandbox.model import chunk_bounds, draw_core, draw_truth, solve_intercept
from creditfactory.sandbox.negative import chunk_entries, negative_list, outsider_entries
from creditfactory.sandbox.people import build_customers, id_sequences
from creditfactory.sandbox.rand import Family, slice_rows, stream
from creditfactory.sandbox.timeline import Timeline
from creditfactory.sandbox.truth import ring_frame, truth_frame

Progress = Callable[[str, int, int], None]

LAYOUT = ExtractLayout()
#: Customers processed together inside a chunk for the monthly tables. Changing it changes
#: the draws, hence the bytes (and the generator version).
BLOCK = 25_000
#: Tables built block by block.
BLOCK_TABLES = (
    "deposit_accounts",
    "account_flows",
    "assets_monthly",
    "tax_records",
    "invoices",
    "farmland",
    "social_security",
)
#: Tables written whole, once.
BANK_TABLES = ("branches", "staff", "negative_list")
#: Tables written as one part per chunk of customers, in contract order.
CUSTOMER_TABLES = (
    "customers",
    "deposit_accounts",
    "account_flows",
    "assets_monthly",
    "loans",
    "loan_performance",
    "bureau_reports",
    "tax_records",
    "invoices",
    "farmland",
    "social_security",
    "devices",
    "contacts",
)


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the output directory, with forward slashes
    table: str
    rows: int
    sha256: str


@dataclass(frozen=True, slots=True)
class GenerateResult:
    out_dir: Path
    rows: dict[str, int]
    files: tuple[FileEntry, ...]
    seconds: float
    intercept: float
    mean_pd: float
    bad_rate: float


@dataclass(frozen=True, slots=True)
class _ChunkOutput:
    files: list[FileEntry]
    negatives: pl.DataFrame
    rings: pl.DataFrame
    pd_sum: float
    bad: int


def part_name(chunk: int, ext: str) -> str:
    return f"part-{chunk:05d}{ext}"


def _prepare(out_dir: Path, overwrite: bool) -> None:
    targets = [out_dir / LAYOUT.extracts_dir, out_dir / LAYOUT.truth_dir, out_dir / LAYOUT.manifest]
    present = [t for t in targets if t.exists()]
    if present and not overwrite:
        raise SandboxError(
            f"{out_dir} already holds a sandbox ({', '.join(p.name for p in present)}); pass overwrite=True to replace it"
        )
    for t in present:
        if t.is_dir():
            shutil.rmtree(t)
        else:
            t.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _population(config: SandboxConfig, progress: Progress | None) -> tuple[float, np.ndarray]:
    n = config.customers
    eta = np.empty(n)
    region = np.empty(n, dtype=np.int8)
    birth = np.empty(n, dtype=np.int64)
    male = np.empty(n, dtype=bool)
    for k in range(config.chunks):
        core = draw_core(config, k)
        lo, hi = chunk_bounds(config, k)
        eta[lo:hi], region[lo:hi], birth[lo:hi], male[lo:hi] = core.eta, core.region, core.birth, core.male
        if progress:
            progress("population", k + 1, config.chunks)
    intercept = solve_intercept(eta, config.bad_rate)
    return intercept, id_sequences(region, birth, male)


_BANK_CACHE: dict[SandboxConfig, Bank] = {}


def _bank(config: SandboxConfig) -> Bank:
    if config not in _BANK_CACHE:
        _BANK_CACHE.clear()
        _BANK_CACHE[config] = build_bank(config)
    return _BANK_CACHE[config]


class _BlockedPart:
    """One part file assembled from blocks of rows, without holding them all decoded.

    Parquet: a lone block is written as it is; otherwise each block is kept as a fast
    (LZ4) Parquet buffer and the buffers are stitched by Polars' streaming engine into the
    zstd-compressed part, in order. CSV: blocks are concatenated under one header.
    """

    def __init__(self, table: str, fmt: str, *, blocks: int) -> None:
        self.table = get_table(table)
        self.fmt = fmt
        self.single = blocks == 1
        self.pending: pl.DataFrame | None = None
        self.blocks: list[bytes] = []
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        final = finalise(self.table, frame)
        self.rows += final.height
        if self.single:
            self.pending = final
            return
        buf = io.BytesIO()
        if self.fmt == "csv":
            final.write_csv(buf, include_header=not self.blocks, null_value="", date_format="%Y-%m-%d")
        else:
            final.write_parquet(buf, compression="lz4", statistics=False)
        self.blocks.append(buf.getvalue())

    def write(self, path: Path) -> str:
        if self.pending is not None:
            data = encode(self.pending, self.fmt)
        elif self.fmt == "csv":
            data = b"".join(self.blocks)
        else:
            out = io.BytesIO()
            pl.scan_parquet([io.BytesIO(b) for b in self.blocks]).sink_parquet(out, compression="zstd")
            data = out.getvalue()
        self.pending, self.blocks = None, []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def _build_chunk(
    config: SandboxConfig, chunk: int, intercept: float, sequence: np.ndarray, out_dir: str
) -> _ChunkOutput:
    root = Path(out_dir)
    timeline = Timeline.of(config)
    bank = _bank(config)
    ext = config.extension
    files: list[FileEntry] = []

    def rel_path(table: str) -> str:
        return f"{LAYOUT.extracts_dir}/{table}/{part_name(chunk, ext)}"

    def put(table: str, frame: pl.DataFrame) -> None:
        sha = write_file(frame, root / rel_path(table), config.format, get_table(table))
        files.append(FileEntry(rel_path(table), table, frame.height, sha))

    core = draw_core(config, chunk)
    truth = draw_truth(config, chunk, core, intercept)
    customers, profile = build_customers(config, chunk, core, sequence, bank, timeline)
    put("customers", customers)
    del customers

    # Household economics, deposits and external data in blocks of customers (bounded memory).
    n_blocks = -(-core.n // BLOCK)
    parts = {table: _BlockedPart(table, config.format, blocks=n_blocks) for table in BLOCK_TABLES}
    streams = [stream(config.seed, f, chunk) for f in (Family.ECONOMY, Family.DEPOSITS, Family.EXTERNAL)]
    for lo in range(0, core.n, BLOCK):
        hi = min(core.n, lo + BLOCK)
        b_core, b_profile = slice_rows(core, lo, hi), slice_rows(profile, lo, hi)
        econ = draw_economy(streams[0], b_core, b_profile, timeline)
        deposits = build_deposits(streams[1], b_core, b_profile, econ, timeline)
        parts["deposit_accounts"].add(deposits.accounts)
        parts["account_flows"].add(deposits.flows)
        parts["assets_monthly"].add(deposits.assets)
        del deposits
        external = build_external(streams[2], b_core, b_profile, econ, timeline)
        parts["tax_records"].add(external.tax_records)
        parts["invoices"].add(external.invoices)
        parts["farmland"].add(external.farmland)
        parts["social_security"].add(external.social_security)
        del econ, external
    for table, part in parts.items():
        files.append(FileEntry(rel_path(table), table, part.rows, part.write(root / rel_path(table))))
    del parts

    credit = build_credit(config, chunk, core, truth, profile, timeline)
    put("loans", credit.loans)
    put("loan_performance", credit.performance)
    put("bureau_reports", credit.bureau)
    digital = build_digital(config, chunk, core, profile, timeline)
    put("devices", digital.devices)
    put("contacts", digital.contacts)
    negatives, exposed = chunk_entries(config, chunk, core, profile, credit, digital, timeline)

    rel = f"{LAYOUT.truth_dir}/customers/{part_name(chunk, '.parquet')}"
    truth_table = truth_frame(config, core, truth, profile, digital.rings)
    sha = write_file(truth_table, root / rel, "parquet")
    files.append(FileEntry(rel, "truth.customers", truth_table.height, sha))
    rings = ring_frame(core, profile, digital.rings, exposed)
    return _ChunkOutput(
        files=files,
        negatives=negatives,
        rings=rings,
        pd_sum=float(truth.pd_12m.sum()),
        bad=int(truth.bad_12m.sum()),
    )


def _run_chunk(args: tuple[SandboxConfig, int, float, np.ndarray, str]) -> _ChunkOutput:
    return _build_chunk(*args)


def generate(
    config: SandboxConfig,
    out_dir: Path,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    overwrite: bool = False,
) -> GenerateResult:
    """Write the sandbox bank of ``config`` into ``out_dir``.

    ``workers`` processes build chunks in parallel (default: up to two, never more than the
    chunks); the files are the same whatever the number. ``overwrite`` replaces an existing
    sandbox in ``out_dir`` (only its ``extracts``, ``truth`` and ``manifest.json``).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _prepare(out_dir, overwrite)
    timeline = Timeline.of(config)
    intercept, sequence = _population(config, progress)

    bank = _bank(config)
    files: list[FileEntry] = []
    ext = config.extension
    for table, frame in (("branches", bank.branches), ("staff", bank.staff)):
        rel = f"{LAYOUT.extracts_dir}/{table}{ext}"
        sha = write_file(frame, out_dir / rel, config.format, get_table(table))
        files.append(FileEntry(rel, table, frame.height, sha))

    n_workers = min(config.chunks, workers if workers is not None else min(2, os.cpu_count() or 1))
    jobs = [
        (config, k, intercept, sequence[slice(*chunk_bounds(config, k))], str(out_dir))
        for k in range(config.chunks)
    ]
    negatives: list[pl.DataFrame] = []
    rings: list[pl.DataFrame] = []
    pd_sum, bad = 0.0, 0
    for k, output in enumerate(_map_chunks(jobs, n_workers)):
        files.extend(output.files)
        negatives.append(output.negatives)
        rings.append(output.rings)
        pd_sum += output.pd_sum
        bad += output.bad
        if progress:
            progress("chunks", k + 1, config.chunks)

    negatives.append(outsider_entries(config, timeline))
    neg = negative_list(negatives)
    rel = f"{LAYOUT.extracts_dir}/negative_list{ext}"
    sha = write_file(neg, out_dir / rel, config.format, get_table("negative_list"))
    files.append(FileEntry(rel, "negative_list", neg.height, sha))
    ring_table = pl.concat(rings)
    rel = f"{LAYOUT.truth_dir}/rings.parquet"
    files.append(
        FileEntry(rel, "truth.rings", ring_table.height, write_file(ring_table, out_dir / rel, "parquet"))
    )

    files.sort(key=lambda f: f.path)
    rows: dict[str, int] = {}
    for f in files:
        rows[f.table] = rows.get(f.table, 0) + f.rows
    mean_pd = pd_sum / config.customers
    bad_rate = bad / config.customers
    manifest = {
        "generator": "creditfactory.sandbox",
        "generator_version": GENERATOR_VERSION,
        "libraries": {"numpy": np.__version__, "polars": pl.__version__, "pyarrow": pa.__version__},
        "config": config.to_dict(),
        "truth": {"intercept": intercept, "mean_pd_12m": mean_pd, "bad_12m_rate": bad_rate},
        "tables": dict(sorted(rows.items())),
        "files": [{"path": f.path, "table": f.table, "rows": f.rows, "sha256": f.sha256} for f in files],
    }
    (out_dir / LAYOUT.manifest).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if progress:
        progress("done", 1, 1)
    return GenerateResult(
        out_dir=out_dir,
        rows=rows,
        files=tuple(files),
        seconds=time.perf_counter() - started,
        intercept=intercept,
        mean_pd=mean_pd,
        bad_rate=bad_rate,
    )


def _map_chunks(
    jobs: list[tuple[SandboxConfig, int, float, np.ndarray, str]], workers: int
) -> Iterator[_ChunkOutput]:
    if workers <= 1:
        for job in jobs:
            yield _run_chunk(job)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(_run_chunk, jobs)
