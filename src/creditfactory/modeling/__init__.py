"""The model studio: binning and scorecards, the LightGBM challenger, validation, the registry.

Public API (see ``docs/modeling.md``)::

    from creditfactory import modeling

    modeling.ScorecardModel(...).fit(X, y)            # estimator: predict_proba, score, transform
    modeling.LightGBMModel(...).fit(X, y, eval_set=...)
    modeling.train_and_register(uow, models_dir=..., name=..., kind=..., dev=..., ...)
    modeling.approve_version(uow, models_dir=..., name=..., version=..., approved_by=..., clock=...)
    modeling.load_version(uow, models_dir=..., name=..., version=None) -> LoadedModel
"""

from creditfactory.modeling.artefacts import check_schema, parse_schema
from creditfactory.modeling.errors import (
    ColumnMissing,
    DataFileError,
    FeatureSchemaMismatch,
    IllegalTransition,
    MakerCheckerViolation,
    ModelArtefactError,
    ModelNotApproved,
    ModelNotFound,
    TargetHasOneClass,
    TrainingDataError,
)
from creditfactory.modeling.loaded import LoadedModel, NotAScorecard
from creditfactory.modeling.model import (
    FeatureBinning,
    LightGBMModel,
    ModelStatus,
    PointsTable,
    Scaling,
    ScorecardModel,
    encode_target,
    read_table,
    schema_of,
)
from creditfactory.modeling.service import (
    Comparison,
    TrainingResult,
    approve_version,
    compare_versions,
    get_version,
    list_versions,
    load_version,
    report_path,
    retire_version,
    train_and_register,
    verified_manifest,
)

__all__ = [
    "ColumnMissing",
    "Comparison",
    "DataFileError",
    "FeatureBinning",
    "FeatureSchemaMismatch",
    "IllegalTransition",
    "LightGBMModel",
    "LoadedModel",
    "MakerCheckerViolation",
    "ModelArtefactError",
    "ModelNotApproved",
    "ModelNotFound",
    "ModelStatus",
    "NotAScorecard",
    "PointsTable",
    "Scaling",
    "ScorecardModel",
    "TargetHasOneClass",
    "TrainingDataError",
    "TrainingResult",
    "approve_version",
    "check_schema",
    "compare_versions",
    "encode_target",
    "get_version",
    "list_versions",
    "load_version",
    "parse_schema",
    "read_table",
    "report_path",
    "retire_version",
    "schema_of",
    "train_and_register",
    "verified_manifest",
]
