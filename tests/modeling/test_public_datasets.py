"""HMEQ and Give Me Some Credit: our scorecard against optbinning's pipeline on the same split.

The data sets are not shipped; they are read from ``../shared/datasets`` beside the project (or
``$CREDITFACTORY_DATASETS``) and the tests are skipped where they are absent.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from creditfactory.modeling import LightGBMModel, ScorecardModel, encode_target, read_table
from creditfactory.modeling.model import metrics

ROOT = Path(__file__).resolve().parents[2]
DATASETS = Path(os.environ.get("CREDITFACTORY_DATASETS", ROOT.parent / "shared" / "datasets"))

CASES = {
    "hmeq": ("hmeq/hmeq.csv", "BAD"),
    "give_me_some_credit": ("give_me_some_credit/cs-training.csv", "SeriousDlqin2yrs"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_scorecard_at_least_as_good_as_optbinnings_pipeline(name: str) -> None:
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    file, target = CASES[name]
    path = DATASETS / file
    if not path.exists():
        pytest.skip(f"{path} is not here")
    frame = read_table(path)
    y = encode_target(frame[target], name=target)
    train, test = train_test_split(np.arange(frame.height), test_size=0.3, random_state=42, stratify=y)
    X = frame.drop(target)
    ours = ScorecardModel().fit(X[train], y[train])
    ours_auc = metrics.auc(y[test], ours.predict_proba(X[test])[:, 1])

    X_train, X_test = X[train].to_pandas(), X[test].to_pandas()
    categorical = [
        c for c in X_train.columns if X_train[c].dtype == object or str(X_train[c].dtype) in ("str", "string")
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = Scorecard(
            binning_process=BinningProcess(list(X_train.columns), categorical_variables=categorical),
            estimator=LogisticRegression(),
            scaling_method="min_max",
            scaling_method_params={"min": 300, "max": 850},
        ).fit(X_train, y[train])
        theirs = metrics.auc(y[test], card.predict_proba(X_test)[:, 1])
    assert ours_auc >= theirs - 0.01, (ours_auc, theirs)
    # every scorecard feature's numeric bins follow one trend
    for feature in ours.selected_features_:
        binning = ours.binning_[feature]
        if binning.dtype == "number":
            assert binning.trend in ("ascending", "descending", "single bin"), (feature, binning.trend)


@pytest.mark.slow
def test_lightgbm_beats_the_scorecard_on_hmeq() -> None:
    path = DATASETS / CASES["hmeq"][0]
    if not path.exists():
        pytest.skip(f"{path} is not here")
    frame = read_table(path)
    y = encode_target(frame["BAD"], name="BAD")
    train, test = train_test_split(np.arange(frame.height), test_size=0.3, random_state=42, stratify=y)
    X = frame.drop("BAD")
    gbm = LightGBMModel(n_estimators=600, learning_rate=0.08).fit(X[train], y[train])
    card = ScorecardModel().fit(X[train], y[train])
    auc_gbm = metrics.auc(y[test], gbm.predict_proba(X[test])[:, 1])
    auc_card = metrics.auc(y[test], card.predict_proba(X[test])[:, 1])
    assert auc_gbm > auc_card > 0.88
