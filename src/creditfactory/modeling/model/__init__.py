"""Modelling code without a database: binning, scorecards, LightGBM, metrics, lifecycle."""

from creditfactory.modeling.model.binning import (
    Bin,
    BinKind,
    BinningParams,
    FeatureBinning,
    fit_binning,
    woe_iv,
)
from creditfactory.modeling.model.data import encode_target, read_table, schema_of
from creditfactory.modeling.model.gbm import LightGBMModel
from creditfactory.modeling.model.lifecycle import ModelStatus, next_status
from creditfactory.modeling.model.points import PointsTable, PointsTableError, Scaling
from creditfactory.modeling.model.scorecard import ScorecardModel

__all__ = [
    "Bin",
    "BinKind",
    "BinningParams",
    "FeatureBinning",
    "LightGBMModel",
    "ModelStatus",
    "PointsTable",
    "PointsTableError",
    "Scaling",
    "ScorecardModel",
    "encode_target",
    "fit_binning",
    "next_status",
    "read_table",
    "schema_of",
    "woe_iv",
]
