"""Errors of the model studio: each names what is wrong and where."""

from __future__ import annotations

from creditfactory.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied


class TrainingDataError(InvalidInput):
    """The data handed to training cannot train a model (the message says why)."""

    code = "training_data"
    title = "Training data not usable"


class ColumnMissing(TrainingDataError):
    code = "column_missing"
    title = "Column missing"


class TargetHasOneClass(TrainingDataError):
    code = "target_one_class"
    title = "Target has only one class"


class DataFileError(InvalidInput):
    code = "data_file"
    title = "Data file not readable"


class ModelNotFound(NotFound):
    code = "model_not_found"
    title = "Model version not found"


class ModelNotApproved(Conflict):
    code = "model_not_approved"
    title = "Model version is not approved"


class ModelArtefactError(DomainError):
    """A model directory is incomplete or does not match what the registry recorded."""

    code = "model_artefact"
    http_status = 500
    title = "Model artefacts corrupt or missing"


class MakerCheckerViolation(PermissionDenied):
    code = "maker_checker"
    title = "The approver must not be the trainer"


class IllegalTransition(Conflict):
    code = "model_status"
    title = "Model status does not allow this"


class FeatureSchemaMismatch(InvalidInput):
    code = "feature_schema_mismatch"
    title = "Model features do not match the data"
