"""German credit (UCI, CC BY 4.0; see tests/data/README.md) and a scorecard fitted on it once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.model_selection import train_test_split

from creditfactory.modeling import ScorecardModel, encode_target, read_table

GERMAN = Path(__file__).resolve().parents[1] / "data" / "german_credit.csv"
TARGET = "class"


@dataclass(frozen=True)
class Split:
    """German credit split 70/30 as ``model train --test-size 0.3 --seed 42`` splits it."""

    X_train: pl.DataFrame
    X_test: pl.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="session")
def german() -> pl.DataFrame:
    return read_table(GERMAN)


@pytest.fixture(scope="session")
def german_split(german: pl.DataFrame) -> Split:
    y = encode_target(german[TARGET], name=TARGET)
    train, test = train_test_split(np.arange(german.height), test_size=0.3, random_state=42, stratify=y)
    train, test = np.sort(train), np.sort(test)
    X = german.drop(TARGET)
    return Split(X[train], X[test], y[train], y[test])


@pytest.fixture(scope="session")
def german_scorecard(german_split: Split) -> ScorecardModel:
    return ScorecardModel().fit(german_split.X_train, german_split.y_train)
