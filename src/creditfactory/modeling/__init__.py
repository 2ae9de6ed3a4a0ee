"""The model studio: binning and scorecards, the LightGBM challenger, validation, the registry.

Public API (see ``docs/modeling.md``)::

    from creditfactory import modeling

    modeling.ScorecardModel(...).fit(X, y)            # estimator: predict_proba, score, transform
    modeling.LightGBMModel(...).fit(X, y, eval_set=...)
    modeling.train_and_register(uow, models_dir=..., name=..., kind=..., dev=..., ...)
    modeling.approve_version(uow, models_dir=..., name=..., version=..., approved_by=..., clock=...)
    modeling.load_version(uow, models_dir=..., name=..., version=None) -> LoadedModel
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Names are imported on first use, so that commands which do not train (and the CLI's start)
# do not pay for scikit-learn, LightGBM and optbinning.
_EXPORTS = {
    "check_schema": "artefacts",
    "parse_schema": "artefacts",
    "ColumnMissing": "errors",
    "DataFileError": "errors",
    "FeatureSchemaMismatch": "errors",
    "IllegalTransition": "errors",
    "MakerCheckerViolation": "errors",
    "ModelArtefactError": "errors",
    "ModelNotApproved": "errors",
    "ModelNotFound": "errors",
    "TargetHasOneClass": "errors",
    "TrainingDataError": "errors",
    "LoadedModel": "loaded",
    "NotAScorecard": "loaded",
    "FeatureBinning": "model",
    "LightGBMModel": "model",
    "ModelStatus": "model",
    "PointsTable": "model",
    "Scaling": "model",
    "ScorecardModel": "model",
    "encode_target": "model",
    "read_table": "model",
    "schema_of": "model",
    "Comparison": "service",
    "TrainingResult": "service",
    "approve_version": "service",
    "approved_version": "service",
    "compare_versions": "service",
    "get_version": "service",
    "list_versions": "service",
    "load_version": "service",
    "portrait_exclusions": "service",
    "portrait_sample": "service",
    "report_path": "service",
    "retire_version": "service",
    "train_and_register": "service",
    "verified_manifest": "service",
}

if TYPE_CHECKING:
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
        approved_version,
        compare_versions,
        get_version,
        list_versions,
        load_version,
        portrait_exclusions,
        portrait_sample,
        report_path,
        retire_version,
        train_and_register,
        verified_manifest,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'creditfactory.modeling' has no attribute {name!r}")
    value = getattr(import_module(f"creditfactory.modeling.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
    "approved_version",
    "check_schema",
    "compare_versions",
    "encode_target",
    "get_version",
    "list_versions",
    "load_version",
    "portrait_exclusions",
    "portrait_sample",
    "parse_schema",
    "read_table",
    "report_path",
    "retire_version",
    "schema_of",
    "train_and_register",
    "verified_manifest",
]
