"""The local engine: Polars, streaming, bounded memory.

When every segment's model is a vectorised expression (scorecards), the whole job — read, score,
policy, limit, write — is one lazy query sunk into Parquet by Polars' streaming engine. When a
model needs a predict call (a tree model), the input is read in batches: each batch is scored,
run through the same plan and written as its own part, so memory is bounded by the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import polars as pl

from creditfactory.engines.scoring import Scoring, predict_batch, with_scores
from creditfactory.strategy import Plan

#: The caller's mapping from the plan's outputs to the rows it writes (e.g. a whitelist's lines).
Shape = Callable[[pl.LazyFrame], pl.LazyFrame]
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class EngineResult:
    rows: int
    parts: list[Path]
    seconds: float
    mode: str
    """``streaming`` (one lazy query) or ``batches`` (batch-wise predict)."""


def _count(parts: Sequence[Path]) -> int:
    return sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in parts)


def run(
    source: pl.LazyFrame,
    *,
    scorings: Sequence[Scoring],
    plan: Plan,
    shape: Shape,
    out_dir: Path,
    segment_column: str = "segment",
    batch_rows: int = 500_000,
    total_rows: int | None = None,
    progress: Progress | None = None,
    compression: str = "lz4",
) -> EngineResult:
    """Score ``source``, apply ``plan``, ``shape`` the result and write it to ``out_dir`` as
    ``lines-<n>.parquet`` parts. Returns rows written and the parts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = perf_counter()
    say = progress or (lambda done, total: None)
    if all(s.vectorised for s in scorings):
        path = out_dir / "lines-00000.parquet"
        query = shape(plan.apply(with_scores(source, scorings, segment_column=segment_column)))
        query.sink_parquet(path, compression=compression, statistics=True)  # type: ignore[arg-type]
        rows = _count([path])
        say(rows, total_rows)
        return EngineResult(rows=rows, parts=[path], seconds=perf_counter() - started, mode="streaming")

    parts: list[Path] = []
    done = 0

    def flush(frames: list[pl.DataFrame]) -> None:
        nonlocal done
        batch = pl.concat(frames, how="vertical", rechunk=False)
        scored = predict_batch(batch, scorings, segment_column=segment_column)
        lines = shape(plan.apply(scored.lazy())).collect()
        path = out_dir / f"lines-{len(parts):05d}.parquet"
        lines.write_parquet(path, compression=compression, statistics=True)  # type: ignore[arg-type]
        parts.append(path)
        done += lines.height
        say(done, total_rows)

    pending: list[pl.DataFrame] = []
    size = 0
    for batch in source.collect_batches(chunk_size=batch_rows):
        if batch.height == 0:
            continue
        pending.append(batch)
        size += batch.height
        if size >= batch_rows:
            flush(pending)
            pending, size = [], 0
    if pending:
        flush(pending)
    return EngineResult(rows=done, parts=parts, seconds=perf_counter() - started, mode="batches")
