"""How one segment's customers are scored: a Polars/SQL expression or a batch predict function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

#: (frame of the model's features) -> (score, probability of bad), one value per row.
Predict = Callable[[pl.DataFrame], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Scoring:
    """The model of one segment, in the forms the engines can run.

    A scorecard gives ``score_expr``/``pd_expr`` (Polars) and ``score_sql``/``pd_sql`` (Spark SQL
    over the column ``score``); a tree model gives ``predict`` (any engine, batch by batch) and
    its ``model_text`` (LightGBM's text format, for Spark executors).
    """

    segment: str
    ref: str
    features: tuple[str, ...]
    score_expr: pl.Expr | None = None
    pd_expr: pl.Expr | None = None
    """Probability of bad as an expression of the column ``score``."""
    score_sql: str | None = None
    pd_sql: str | None = None
    predict: Predict | None = field(default=None, repr=False)
    model_text: str | None = field(default=None, repr=False)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def vectorised(self) -> bool:
        return self.score_expr is not None and self.pd_expr is not None


def with_scores(
    lf: pl.LazyFrame, scorings: Sequence[Scoring], *, segment_column: str = "segment"
) -> pl.LazyFrame:
    """``score`` and then ``pd`` for every row, each segment through its own expressions; NULL
    for a segment without a model (a strategy's cut-off then leaves the customer out)."""
    seg = pl.col(segment_column)
    for s in scorings:
        if not s.vectorised:
            raise ValueError(f"the model of segment {s.segment} ({s.ref}) has no Polars expression")
    # Segments that share a model share one expression: a ``when`` chain evaluates every branch
    # on every row, so each distinct model is computed once, not once per segment.
    groups: dict[str, list[Scoring]] = {}
    for s in scorings:
        groups.setdefault(s.ref, []).append(s)

    def by_model(pick: str) -> pl.Expr:
        chain: Any = None
        for members in groups.values():
            cond = seg.is_in([m.segment for m in members]) if len(members) > 1 else seg == members[0].segment
            expr = getattr(members[0], pick)
            chain = (pl.when(cond) if chain is None else chain.when(cond)).then(expr)
        return (pl.lit(None, dtype=pl.Float64) if chain is None else chain.otherwise(None)).cast(pl.Float64)

    return lf.with_columns(by_model("score_expr").alias("score")).with_columns(
        by_model("pd_expr").alias("pd")
    )


def predict_batch(
    frame: pl.DataFrame, scorings: Sequence[Scoring], *, segment_column: str = "segment"
) -> pl.DataFrame:
    """``frame`` with ``score`` and ``pd`` filled segment by segment (vectorised segments by their
    expressions, the others by their predict functions)."""
    n = frame.height
    score = np.full(n, np.nan)
    pd = np.full(n, np.nan)
    segments = frame.get_column(segment_column).to_numpy()
    for s in scorings:
        mask = segments == s.segment
        if not mask.any():
            continue
        part = frame.filter(pl.Series(mask))
        if s.predict is not None:
            sc, p = s.predict(part.select(s.features))
        else:
            assert s.score_expr is not None and s.pd_expr is not None
            scored = part.select(s.score_expr.alias("score")).with_columns(s.pd_expr.alias("pd"))  # type: ignore[union-attr]
            sc, p = scored["score"].to_numpy(), scored["pd"].to_numpy()
        score[mask] = sc
        pd[mask] = p
    return frame.with_columns(
        pl.Series("score", score).fill_nan(None),
        pl.Series("pd", pd).fill_nan(None),
    )
