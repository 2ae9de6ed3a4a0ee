"""Features a bank would compute from the extracts predict the true default, but not perfectly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from creditfactory.sandbox import SandboxConfig, generate

from .conftest import read_table

CONFIG = SandboxConfig(customers=12_000, seed=7, chunk_size=6_000)
FEATURES = (
    "bureau_any_dpd",
    "bureau_dpd_30",
    "inquiries_12m",
    "inquiries_3m",
    "card_utilisation",
    "thin_file",
    "log_mean_balance",
    "empty_months",
    "inflow_cv",
    "inflow_trend",
    "loan_late",
)


def features(root: Path, *, as_of: date) -> pl.DataFrame:
    """One row per customer: a handful of obvious features from the extracts."""
    bureau = (
        read_table(root, "bureau_reports")
        .sort("customer_id", "report_date")
        .group_by("customer_id")
        .last()
        .select(
            "customer_id",
            (pl.col("worst_dpd_24m") > 0).alias("bureau_any_dpd"),
            (pl.col("worst_dpd_24m") >= 30).alias("bureau_dpd_30"),
            pl.col("inquiries_12m").clip(0, 10),
            pl.col("inquiries_3m").clip(0, 5),
            (pl.col("card_balance").cast(pl.Float64) / pl.col("card_limit").cast(pl.Float64))
            .fill_nan(0.0)
            .alias("card_utilisation"),
            (~pl.col("has_record")).alias("thin_file"),
        )
    )
    owners = read_table(root, "deposit_accounts").select("account_id", "customer_id")
    monthly = (
        read_table(root, "account_flows")
        .join(owners, on="account_id")
        .group_by("customer_id", "month")
        .agg(pl.col("inflow").cast(pl.Float64).sum(), pl.col("end_balance").cast(pl.Float64).sum())
    )
    months = as_of.year * 12 + as_of.month - 1 - 2  # the last three months of the history
    recent = date(months // 12, months % 12 + 1, 1)
    flows = monthly.group_by("customer_id").agg(
        (pl.col("end_balance").mean() + 1).log().alias("log_mean_balance"),
        (pl.col("end_balance") < 100).mean().alias("empty_months"),
        (pl.col("inflow").std() / (pl.col("inflow").mean() + 1)).fill_null(0).alias("inflow_cv"),
        ((pl.col("inflow").filter(pl.col("month") >= recent).mean() + 100) / (pl.col("inflow").mean() + 100))
        .log()
        .alias("inflow_trend"),
    )
    loans = (
        read_table(root, "loan_performance")
        .join(read_table(root, "loans").select("loan_id", "customer_id"), on="loan_id")
        .group_by("customer_id")
        .agg((pl.col("dpd").max() > 0).alias("loan_late"), pl.lit(True).alias("has_loan"))
    )
    return (
        read_table(root, "customers")
        .select("customer_id")
        .join(bureau, on="customer_id", how="left")
        .join(flows, on="customer_id", how="left")
        .join(loans, on="customer_id", how="left")
        .with_columns(pl.col(FEATURES).cast(pl.Float64).fill_null(0.0), pl.col("has_loan").fill_null(False))
    )


@pytest.fixture(scope="module")
def modelling_set(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    root = tmp_path_factory.mktemp("learn")
    generate(CONFIG, root, workers=1)
    truth = read_table(root, "truth").select("customer_id", "bad_12m", "pd_12m")
    return features(root, as_of=CONFIG.as_of).join(truth, on="customer_id")


def test_logistic_regression_on_obvious_features_ranks_defaulters(modelling_set: pl.DataFrame) -> None:
    x = modelling_set.select(FEATURES).to_numpy()
    y = modelling_set["bad_12m"].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = roc_auc_score(y, scores)
    true_auc = roc_auc_score(y, modelling_set["pd_12m"].to_numpy())
    assert auc > 0.70
    assert 0.76 < true_auc < 0.9
    assert auc < true_auc  # the extracts do not reveal the truth


def test_each_signal_points_the_right_way(modelling_set: pl.DataFrame) -> None:
    y = modelling_set["bad_12m"].to_numpy()
    auc = {f: roc_auc_score(y, modelling_set[f].to_numpy()) for f in FEATURES}
    for riskier_when_higher in ("bureau_any_dpd", "inquiries_12m", "empty_months", "inflow_cv", "thin_file"):
        assert auc[riskier_when_higher] > 0.51, riskier_when_higher
    for safer_when_higher in ("log_mean_balance", "inflow_trend"):
        assert auc[safer_when_higher] < 0.48, safer_when_higher
    borrowers = modelling_set.filter(pl.col("has_loan"))
    late = borrowers.group_by("loan_late").agg(pl.col("bad_12m").mean()).sort("loan_late")["bad_12m"]
    assert late[1] > 1.5 * late[0]  # past delinquency with the bank predicts default
    assert np.isfinite(modelling_set.select(FEATURES).to_numpy()).all()
