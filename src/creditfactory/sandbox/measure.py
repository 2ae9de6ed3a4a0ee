"""Stages measured against the sandbox's ground truth (what the bank itself can never see).

Only tests, benchmarks, the demo and the CLI call this: production code never imports the
sandbox.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from sklearn.metrics import roc_auc_score


def truth(out_dir: Path) -> pl.DataFrame:
    """The sandbox's truth per customer (``OUT/truth/customers``)."""
    return pl.read_parquet(sorted((out_dir / "truth" / "customers").glob("*.parquet")))


def whitelist_quality(lines: pl.DataFrame, truth_frame: pl.DataFrame) -> pl.DataFrame:
    """Per segment (and ``all``): the population's realised 12-month default rate beside the
    whitelisted customers', the mean true PD of each, and the share of truly good customers the
    whitelist reaches (and of truly bad ones it lets through).

    ``lines`` are a whitelist version's lines (``customer_id``, ``outcome``); customers the
    version did not score count as not whitelisted.
    """
    t = truth_frame.select("customer_id", "segment", "pd_12m", pl.col("bad_12m").cast(pl.Int64))
    listed = (
        lines.filter(pl.col("outcome") == "eligible")
        .select("customer_id")
        .with_columns(pl.lit(True).alias("listed"))
    )
    joined = t.join(listed, on="customer_id", how="left").with_columns(pl.col("listed").fill_null(False))

    def agg(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            pl.len().alias("customers"),
            pl.col("bad_12m").mean().alias("population_bad_rate"),
            pl.col("pd_12m").mean().alias("population_true_pd"),
            pl.col("listed").sum().alias("whitelisted"),
            pl.col("bad_12m").filter(pl.col("listed")).mean().alias("whitelisted_bad_rate"),
            pl.col("pd_12m").filter(pl.col("listed")).mean().alias("whitelisted_true_pd"),
            (pl.col("listed") & (pl.col("bad_12m") == 0)).sum().alias("good_reached"),
            (pl.col("bad_12m") == 0).sum().alias("good"),
            (pl.col("listed") & (pl.col("bad_12m") == 1)).sum().alias("bad_listed"),
            (pl.col("bad_12m") == 1).sum().alias("bad"),
        ).with_columns(
            (pl.col("good_reached") / pl.col("good")).alias("good_reach"),
            (pl.col("bad_listed") / pl.col("bad")).alias("bad_let_through"),
        )

    per = [
        agg(g).with_columns(pl.lit(seg).alias("segment"))
        for (seg,), g in joined.group_by("segment", maintain_order=False)
    ]
    per.sort(key=lambda f: f["segment"][0])
    every = agg(joined).with_columns(pl.lit("all").alias("segment"))
    return pl.concat([*per, every]).select("segment", pl.exclude("segment"))


def score_auc(scores: pl.DataFrame, truth_frame: pl.DataFrame, *, column: str = "score") -> dict[str, float]:
    """AUC of a model's scores (higher = safer) against the realised default, beside the AUC of the
    true PD on the same customers (the ceiling any model can reach)."""
    joined = (
        scores.select("customer_id", column)
        .join(truth_frame.select("customer_id", "pd_12m", "bad_12m"), on="customer_id")
        .drop_nulls(column)
    )
    y = joined["bad_12m"].cast(pl.Int64).to_numpy()
    if y.min() == y.max():
        return {"customers": float(joined.height), "model_auc": float("nan"), "truth_auc": float("nan")}
    return {
        "customers": float(joined.height),
        "model_auc": float(roc_auc_score(y, -joined[column].to_numpy())),
        "truth_auc": float(roc_auc_score(y, joined["pd_12m"].to_numpy())),
    }
