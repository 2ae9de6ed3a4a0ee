"""Performance targets: what happened to each customer in the months after the as-of date.

``bad_<h>m`` (``bad_12m`` for the usual 12 months) is 1 when any of the customer's loans reaches
90 days past due at a month end of the outcome window, or is written off inside it; the
outcome window is the ``h`` months after the reference month. ``dpd30_<h>m`` is the broader
early-delinquency definition many small banks model on when defaults are few: 30 days past due
at a month end of the window (or a write-off in it). ``observable`` is false, with the
reason in ``unobservable_reason``, when

* ``history``: the lake's loan performance does not reach the end of the outcome window;
* ``no_exposure``: the customer had no loan outstanding at any time in the window;
* ``in_default``: the customer was already 90+ days past due at the as-of date (the outcome
  is known before it starts; such customers do not belong in a development sample).

Targets are written to their own lake table (``portrait_target``) so that no feature file ever
holds information from after its as-of date.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from creditfactory.portrait.model import month_end, month_index, month_of
from creditfactory.portrait.plan import AsOf
from creditfactory.portrait.polars_engine import scan_table

BAD_DPD = 90
EARLY_DPD = 30


def target_column(horizon_months: int) -> str:
    return f"bad_{horizon_months}m"


def early_column(horizon_months: int) -> str:
    return f"dpd{EARLY_DPD}_{horizon_months}m"


def history_end(lake: Path, present: frozenset[str]) -> int | None:
    """Month index of the last month of loan performance in the lake."""
    value = scan_table(lake, "loan_performance", present).select(pl.col("month").max()).collect().item()
    return None if value is None else month_index(value)


def target_frame(
    lake: Path, *, at: AsOf, horizon_months: int, present: frozenset[str]
) -> tuple[pl.LazyFrame, int | None]:
    """One row per customer known at the as-of date: the target, observability and why not."""
    last = history_end(lake, present)
    first_idx = at.ref_index + 1
    last_idx = at.ref_index + horizon_months
    window_end = month_end(month_of(last_idx))
    history_ok = last is not None and last >= last_idx
    as_of = pl.lit(at.as_of, dtype=pl.Date)
    end = pl.lit(window_end, dtype=pl.Date)

    customers = (
        scan_table(lake, "customers", present).filter(pl.col("opened_date") <= as_of).select("customer_id")
    )
    loans = scan_table(lake, "loans", present).select(
        "loan_id", "customer_id", "open_date", "close_date", "status"
    )
    months = pl.col("month").dt.year().cast(pl.Int64) * 12 + pl.col("month").dt.month().cast(pl.Int64) - 1
    perf = (
        scan_table(lake, "loan_performance", present)
        .select("loan_id", months.alias("idx"), "dpd")
        .filter((pl.col("idx") >= at.ref_index) & (pl.col("idx") <= last_idx))
        .join(loans.select("loan_id", "customer_id"), on="loan_id", how="inner")
        .group_by("customer_id")
        .agg(
            (pl.when(pl.col("idx") >= first_idx).then(pl.col("dpd")) >= BAD_DPD).any().alias("perf_bad"),
            (pl.when(pl.col("idx") >= first_idx).then(pl.col("dpd")) >= EARLY_DPD).any().alias("perf_early"),
            (pl.when(pl.col("idx") == at.ref_index).then(pl.col("dpd")) >= BAD_DPD).any().alias("in_default"),
        )
    )
    per_loan = (
        loans.with_columns(
            (
                (pl.col("status") == "written_off")
                & (pl.col("close_date") > as_of)
                & (pl.col("close_date") <= end)
            ).alias("written_off"),
            (
                (pl.col("open_date") <= end)
                & (pl.col("close_date").is_null() | (pl.col("close_date") > as_of))
            ).alias("exposed"),
        )
        .group_by("customer_id")
        .agg(pl.col("written_off").any(), pl.col("exposed").any())
    )
    frame = (
        customers.join(perf, on="customer_id", how="left")
        .join(per_loan, on="customer_id", how="left")
        .with_columns(
            pl.col("perf_bad", "perf_early", "in_default", "written_off", "exposed").fill_null(False)
        )
        .select(
            pl.col("customer_id"),
            pl.lit(at.as_of, dtype=pl.Date).alias("as_of"),
            (pl.col("perf_bad") | pl.col("written_off")).cast(pl.Int8).alias(target_column(horizon_months)),
            (pl.col("perf_early") | pl.col("perf_bad") | pl.col("written_off"))
            .cast(pl.Int8)
            .alias(early_column(horizon_months)),
            (pl.lit(history_ok) & pl.col("exposed") & ~pl.col("in_default")).alias("observable"),
            pl.when(~pl.lit(history_ok))
            .then(pl.lit("history"))
            .when(~pl.col("exposed"))
            .then(pl.lit("no_exposure"))
            .when(pl.col("in_default"))
            .then(pl.lit("in_default"))
            .otherwise(pl.lit(None, dtype=pl.String))
            .alias("unobservable_reason"),
        )
        .sort("customer_id")
    )
    return frame, last
