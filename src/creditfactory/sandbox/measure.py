"""Stages measured against the sandbox's ground truth (what the bank itself can never see).

Only tests, benchmarks, the demo and the CLI call this: production code never imports the
sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl


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
    from sklearn.metrics import roc_auc_score  # here: scikit-learn takes a second to import

    y = joined["bad_12m"].cast(pl.Int64).to_numpy()
    if y.min() == y.max():
        return {"customers": float(joined.height), "model_auc": float("nan"), "truth_auc": float("nan")}
    return {
        "customers": float(joined.height),
        "model_auc": float(roc_auc_score(y, -joined[column].to_numpy())),
        "truth_auc": float(roc_auc_score(y, joined["pd_12m"].to_numpy())),
    }


_OUTCOMES = {
    "approve": "approve",
    "approved": "approve",
    "decline": "decline",
    "declined": "decline",
    "refer": "refer",
    "referred": "refer",
}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def decision_quality(decisions: pl.DataFrame, applicant_truth: pl.DataFrame) -> dict[str, Any]:
    """How the decisions on the sandbox's applicants fare against the truth.

    ``decisions``: ``customer_id``, ``outcome`` (approve/approved, decline/declined,
    refer/referred; anything else, such as an application still undecided, counts as
    ``undecided``) and ``grade`` (may be null or missing). ``applicant_truth``: the truth of
    :func:`creditfactory.sandbox.applicants.generate_applicants` (``customer_id``, ``is_ring``,
    ``truly_bad``, ``bad_12m``, ``pd_12m``); the two meet on ``customer_id`` (a customer applies
    at most once in a stream). Decisions on customers without truth are counted as
    ``unmatched`` and left out.

    * ``ring``: members of the planted rings, and the share **stopped** (declined or referred);
    * ``good``: truly good applicants (no realised default, no ring), the share declined
      (the **false-decline rate**), and the share referred;
    * ``by_grade``: approvals per grade with their **realised bad rate** (truly bad: a realised
      12-month default or a ring member), the default-only rate and the mean true PD; the last
      row, grade ``all``, is every approval.
    """
    grade = pl.col("grade").cast(pl.String) if "grade" in decisions.columns else pl.lit(None, pl.String)
    d = decisions.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("outcome")
        .cast(pl.String)
        .str.to_lowercase()
        .replace_strict(_OUTCOMES, default="undecided")
        .alias("outcome"),
        grade.fill_null("(none)").alias("grade"),
    )
    t = applicant_truth.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("is_ring").cast(pl.Boolean),
        pl.col("truly_bad").cast(pl.Boolean),
        pl.col("bad_12m").cast(pl.Boolean),
        pl.col("pd_12m").cast(pl.Float64),
    )
    joined = d.join(t, on="customer_id", how="inner")
    unmatched = d.height - joined.height
    outcomes = {k: 0 for k in ("approve", "decline", "refer", "undecided")}
    outcomes.update({str(k): int(v) for k, v in joined.group_by("outcome").len().iter_rows()})
    n = joined.height

    ring = joined.filter(pl.col("is_ring"))
    stopped = ring.filter(pl.col("outcome").is_in(["decline", "refer"])).height
    good = joined.filter(~pl.col("truly_bad"))
    good_declined = good.filter(pl.col("outcome") == "decline").height
    good_referred = good.filter(pl.col("outcome") == "refer").height
    bad = joined.filter(pl.col("truly_bad") & ~pl.col("is_ring"))
    bad_approved = bad.filter(pl.col("outcome") == "approve").height

    approved = joined.filter(pl.col("outcome") == "approve")

    aggs = (
        pl.len().alias("approved"),
        pl.col("truly_bad").sum().alias("bad"),
        pl.col("truly_bad").mean().alias("bad_rate"),
        pl.col("bad_12m").mean().alias("default_rate"),
        pl.col("pd_12m").mean().alias("true_pd"),
        pl.col("is_ring").sum().alias("ring_members"),
    )
    per = approved.group_by("grade").agg(*aggs).sort("grade")
    every = approved.select(*aggs).with_columns(pl.lit("all").alias("grade"))
    by_grade = [
        {
            "grade": r["grade"],
            "approved": int(r["approved"]),
            "bad": int(r["bad"] or 0),
            "bad_rate": None if r["approved"] == 0 else float(r["bad_rate"]),
            "default_rate": None if r["approved"] == 0 else float(r["default_rate"]),
            "true_pd": None if r["approved"] == 0 else float(r["true_pd"]),
            "ring_members": int(r["ring_members"] or 0),
        }
        for r in pl.concat([per, every.select(per.columns)]).iter_rows(named=True)
    ]
    return {
        "applications": n,
        "unmatched": unmatched,
        "outcomes": outcomes,
        "approval_rate": _share(outcomes["approve"], n),
        "ring": {
            "members": ring.height,
            "stopped": stopped,
            "stopped_share": _share(stopped, ring.height),
            "approved": ring.filter(pl.col("outcome") == "approve").height,
        },
        "good": {
            "applicants": good.height,
            "declined": good_declined,
            "false_decline_rate": _share(good_declined, good.height),
            "referred": good_referred,
            "referred_share": _share(good_referred, good.height),
        },
        "bad": {
            "applicants": bad.height,
            "approved": bad_approved,
            "approved_share": _share(bad_approved, bad.height),
        },
        "by_grade": by_grade,
    }
