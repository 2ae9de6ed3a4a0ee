"""Use cases of the model studio: train and register, approve, retire, load, compare.

Services take a :class:`~creditfactory.db.uow.UnitOfWork` and flush; the boundary (a command,
a request) commits. Artefacts are written to ``models_dir`` once the registry row has claimed
the version number, so two trainers of the same model never write the same directory.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.model_selection import train_test_split
from sqlalchemy.exc import IntegrityError

from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import Conflict
from creditfactory.modeling import artefacts, report, store
from creditfactory.modeling.errors import (
    FeatureSchemaMismatch,
    IllegalTransition,
    ModelArtefactError,
    ModelNotApproved,
    ModelNotFound,
    TargetHasOneClass,
    TrainingDataError,
)
from creditfactory.modeling.loaded import LoadedModel
from creditfactory.modeling.model import metrics
from creditfactory.modeling.model.data import (
    DATE,
    STRING,
    encode_target,
    fingerprint,
    require_columns,
    type_of,
)
from creditfactory.modeling.model.gbm import LightGBMModel
from creditfactory.modeling.model.lifecycle import (
    ModelAction,
    ModelStatus,
    check_four_eyes,
    next_status,
)
from creditfactory.modeling.model.scorecard import ScorecardModel
from creditfactory.modeling.validation import Validation, validate

KINDS = ("scorecard", "lightgbm")
LIBRARIES = ("creditfactory", "numpy", "polars", "scikit-learn", "optbinning", "lightgbm", "scipy")


@dataclass
class TrainingResult:
    name: str
    version: int
    kind: str
    segment: str | None
    status: str
    path: Path
    manifest: dict[str, Any]
    validation: Validation = field(repr=False)
    estimator: ScorecardModel | LightGBMModel = field(repr=False)
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.path / artefacts.REPORT

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest["metrics"])

    @property
    def test(self) -> dict[str, Any]:
        """Figures of the in-time test sample."""
        return dict(self.validation.summary["test"])


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def make_estimator(
    kind: str,
    *,
    features: Sequence[str],
    categorical: Sequence[str] = (),
    seed: int = 42,
    params: Mapping[str, Any] | None = None,
) -> ScorecardModel | LightGBMModel:
    options = dict(params or {})
    if kind == "scorecard":
        return ScorecardModel(features=list(features), categorical=list(categorical) or None, **options)
    if kind == "lightgbm":
        return LightGBMModel(
            features=list(features), categorical=list(categorical) or None, random_state=seed, **options
        )
    raise TrainingDataError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}")


def candidate_features(
    df: pl.DataFrame, *, target: str, exclude: Sequence[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """Every column but the target and ``exclude``, less dates and identifier-like text columns."""
    skip = {target, *exclude}
    features, excluded = [], {}
    for name in df.columns:
        if name in skip:
            continue
        kind = type_of(df.schema[name])
        if kind == DATE:
            excluded[name] = "a date column (derive a number, e.g. months since)"
            continue
        if kind == STRING:
            distinct = df[name].n_unique()
            if distinct > 50 and distinct > 0.5 * df.height:
                excluded[name] = f"identifier-like: {distinct} distinct values in {df.height} rows"
                continue
        if kind not in ("number", "string", "bool"):
            excluded[name] = f"unsupported column type {df.schema[name]}"
            continue
        features.append(name)
    return features, excluded


def split_rows(y: np.ndarray, *, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's stratified ``train_test_split`` of the row numbers, with ``seed``."""
    if not 0 < test_size < 1:
        raise TrainingDataError(f"test size must be between 0 and 1, got {test_size}")
    rows = np.arange(y.shape[0])
    counts = np.bincount(y, minlength=2)
    if counts.min() < 2:
        raise TrainingDataError(
            f"only {int(counts.min())} {'bad' if counts[1] < counts[0] else 'good'} row(s): too few to "
            "split into training and test samples"
        )
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(train), np.sort(test)


def train_and_register(
    uow: UnitOfWork,
    *,
    models_dir: Path,
    name: str,
    kind: str,
    segment: str | None,
    dev: pl.DataFrame,
    oot: pl.DataFrame | None,
    target: str,
    features: Sequence[str] | None,
    trained_by: str,
    seed: int,
    clock: Clock,
    test_size: float = 0.3,
    bad_value: Any = None,
    categorical: Sequence[str] = (),
    exclude: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    windows: Mapping[str, str] | None = None,
    source: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train a model on ``dev`` (split into training and in-time test samples), validate it on
    the test sample and on ``oot`` if given, write its artefacts and report, and register it as a
    draft version.
    """
    artefacts.check_name(name)
    if kind not in KINDS:
        raise TrainingDataError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}")
    if not trained_by or not trained_by.strip():
        raise TrainingDataError("training needs the trainer's staff id")
    require_columns(dev, [target], what="the development data")
    if features is None:
        used, excluded = candidate_features(dev, target=target, exclude=exclude)
    else:
        used, excluded = list(features), {}
        if target in used:
            raise TrainingDataError(f"the target {target!r} cannot also be a feature")
        require_columns(dev, used, what="the development data")
    if not used:
        raise TrainingDataError("no usable feature columns besides the target")
    y = encode_target(dev[target], name=target, bad_value=bad_value)
    resolved_bad = _bad_value(dev[target], y)
    train_rows, test_rows = split_rows(y, test_size=test_size, seed=seed)
    train_frame = dev[train_rows]
    samples: dict[str, tuple[pl.DataFrame, np.ndarray]] = {
        "train": (train_frame.select(used), y[train_rows]),
        "test": (dev[test_rows].select(used), y[test_rows]),
    }
    if oot is not None:
        require_columns(oot, [target, *used], what="the out-of-time data")
        try:
            y_oot = encode_target(oot[target], name=target, bad_value=resolved_bad)
        except TargetHasOneClass as exc:
            raise TargetHasOneClass(f"out-of-time sample: {exc.message}") from None
        samples["oot"] = (oot.select(used), y_oot)

    estimator = make_estimator(kind, features=used, categorical=categorical, seed=seed, params=params)
    estimator.fit(samples["train"][0], samples["train"][1])
    validation = validate(estimator, samples)
    validation.dropped.update(excluded)

    session = uow.session
    version = store.next_version(session, name)
    trained_at = clock.now()
    manifest: dict[str, Any] = {
        "format": artefacts.FORMAT,
        "name": name,
        "version": version,
        "kind": kind,
        "segment": segment,
        "target": target,
        "trained_by": trained_by,
        "trained_at": trained_at.isoformat(),
        "features": {f: estimator.feature_types_[f] for f in validation.features},
        "offered_features": used,
        "excluded_columns": excluded,
        "data": {
            **dict(source or {}),
            "rows": dev.height,
            "bad_value": resolved_bad,
            "fingerprint": fingerprint(train_frame.select([*used, target])),
        },
        "split": {
            "method": "sklearn.model_selection.train_test_split, stratified",
            "test_size": test_size,
            "seed": seed,
            "rows": {k: int(v[1].shape[0]) for k, v in samples.items()},
        },
        "windows": dict(windows or {}),
        "seed": seed,
        "params": _jsonable({k: v for k, v in estimator.get_params().items() if k != "features"}),
        "scaling": {
            "base_score": estimator.base_score,
            "base_odds": estimator.base_odds,
            "pdo": estimator.pdo,
        },
        "libraries": library_versions(),
        "metrics": validation.metrics(),
    }
    if isinstance(estimator, ScorecardModel):
        manifest["selection"] = {
            "selected": list(estimator.selected_features_),
            "dropped": dict(estimator.dropped_features_),
        }
    else:
        manifest["lightgbm"] = estimator.spec()
    files = artefacts.artefact_files(estimator)
    files[artefacts.REPORT] = report.render(
        validation, {**manifest, "status": ModelStatus.DRAFT.value}
    ).encode()
    manifest["files"] = {k: artefacts.sha256(v) for k, v in files.items()}
    raw = artefacts.manifest_bytes(manifest)

    row = store.ModelVersion(
        name=name,
        version=version,
        kind=kind,
        segment=segment,
        status=ModelStatus.DRAFT,
        trained_by=trained_by,
        trained_at=trained_at,
        artefact_path=artefacts.relative_path(name, version),
        manifest_sha256=artefacts.sha256(raw),
        auc=_finite(manifest["metrics"]["auc"]),
        ks=_finite(manifest["metrics"]["ks"]),
    )
    try:
        store.add(session, row)
    except IntegrityError:
        raise Conflict(f"{name} v{version} was registered by someone else meanwhile; train again") from None
    path = artefacts.write_version(models_dir, name, version, {**files, artefacts.MANIFEST: raw})
    return TrainingResult(
        name=name,
        version=version,
        kind=kind,
        segment=segment,
        status=ModelStatus.DRAFT.value,
        path=path,
        manifest=manifest,
        validation=validation,
        estimator=estimator,
        excluded=excluded,
    )


def _bad_value(column: pl.Series, y: np.ndarray) -> Any:
    """The target's own code for a bad outcome (as the data write it)."""
    return column[int(np.argmax(y == 1))]


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, Mapping):
            v = {str(a): (list(b) if isinstance(b, tuple) else b) for a, b in v.items()}
        out[k] = v
    return out


# ---------------------------------------------------------------------------- registry


def get_version(uow: UnitOfWork, *, name: str, version: int) -> store.ModelVersion:
    row = store.get(uow.session, name, version)
    if row is None:
        known = [r.version for r in store.list_versions(uow.session, name)]
        hint = f" (versions: {', '.join(map(str, known))})" if known else " (no such model)"
        raise ModelNotFound(f"model {name} v{version} is not registered{hint}", name=name, version=version)
    return row


def list_versions(uow: UnitOfWork, *, name: str | None = None) -> list[store.ModelVersion]:
    return list(store.list_versions(uow.session, name))


def approved_version(uow: UnitOfWork, *, name: str) -> int | None:
    """The version of ``name`` that scores when none is named: its highest approved one
    (``None`` when none is approved)."""
    return store.newest_approved(uow.session, name)


def version_path(models_dir: Path, row: store.ModelVersion) -> Path:
    return models_dir / row.artefact_path


def verified_manifest(uow: UnitOfWork, *, models_dir: Path, name: str, version: int) -> dict[str, Any]:
    """The manifest of a version after checking every artefact against the registry."""
    row = get_version(uow, name=name, version=version)
    return _verified(models_dir, row)


def _verified(models_dir: Path, row: store.ModelVersion) -> dict[str, Any]:
    path = version_path(models_dir, row)
    manifest = artefacts.read_manifest(path, expected_sha256=row.manifest_sha256)
    if manifest.get("name") != row.name or manifest.get("version") != row.version:
        raise ModelArtefactError(
            f"{path}: manifest is for {manifest.get('name')} v{manifest.get('version')}, not {row.ref}"
        )
    return manifest


def approve_version(
    uow: UnitOfWork,
    *,
    models_dir: Path,
    name: str,
    version: int,
    approved_by: str,
    clock: Clock,
    schema: Mapping[str, str] | None = None,
) -> store.ModelVersion:
    """Approve a draft version for production use.

    Refused when the approver trained it (maker-checker), when its artefacts do not match the
    registry, and, given the feature ``schema`` of the data it will score (e.g. the portrait's),
    when a feature is missing from it or has another type.
    """
    row = get_version(uow, name=name, version=version)
    target = next_status(row.status, ModelAction.APPROVE, label=row.ref)
    check_four_eyes(trained_by=row.trained_by, approver=approved_by, label=row.ref)
    manifest = _verified(models_dir, row)
    if schema is not None:
        problems = artefacts.check_schema(manifest["features"], schema)
        if problems:
            raise FeatureSchemaMismatch(
                f"{row.ref} cannot be approved: " + "; ".join(problems), problems=problems
            )
    if not store.save_status(
        uow.session, row, expected=ModelStatus.DRAFT, status=target, by=approved_by.strip(), at=clock.now()
    ):
        raise IllegalTransition(f"{row.ref} changed status meanwhile (now {row.status.value})")
    return row


def retire_version(
    uow: UnitOfWork, *, name: str, version: int, retired_by: str, clock: Clock
) -> store.ModelVersion:
    row = get_version(uow, name=name, version=version)
    if not retired_by or not retired_by.strip():
        raise IllegalTransition(f"retiring {row.ref} needs the staff id of who retires it")
    current = row.status
    target = next_status(current, ModelAction.RETIRE, label=row.ref)
    if not store.save_status(
        uow.session, row, expected=current, status=target, by=retired_by.strip(), at=clock.now()
    ):
        raise IllegalTransition(f"{row.ref} changed status meanwhile (now {row.status.value})")
    return row


def load_version(
    uow: UnitOfWork,
    *,
    models_dir: Path,
    name: str,
    version: int | None = None,
    allow_unapproved: bool = False,
) -> LoadedModel:
    """A model version ready to score.

    ``version=None`` takes the newest approved version. A draft or retired version raises
    :class:`ModelNotApproved` unless ``allow_unapproved`` (for reports and comparisons, never for
    production scoring). Artefacts are checked against the registry first.
    """
    session = uow.session
    if version is None:
        row = store.get_newest_approved(session, name)
        if row is None:
            rows = store.list_versions(session, name)
            if not rows:
                raise ModelNotFound(f"no model named {name!r} is registered", name=name)
            states = ", ".join(f"v{r.version} {r.status.value}" for r in rows)
            raise ModelNotApproved(f"model {name} has no approved version ({states})", name=name)
    else:
        row = get_version(uow, name=name, version=version)
        if row.status is not ModelStatus.APPROVED and not allow_unapproved:
            raise ModelNotApproved(
                f"{row.ref} is {row.status.value}: only an approved version may be used in production",
                name=name,
                version=version,
                status=row.status.value,
            )
    manifest = _verified(models_dir, row)
    path = version_path(models_dir, row)
    estimator = artefacts.build_estimator(path, manifest)
    return LoadedModel(
        name=row.name,
        version=row.version,
        kind=row.kind,
        segment=row.segment,
        features=dict(manifest["features"]),
        status=row.status.value,
        path=path,
        manifest=manifest,
        estimator=estimator,
    )


def report_path(uow: UnitOfWork, *, models_dir: Path, name: str, version: int) -> Path:
    """The checked report of a version."""
    row = get_version(uow, name=name, version=version)
    _verified(models_dir, row)
    return version_path(models_dir, row) / artefacts.REPORT


# ---------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    rows: int
    bads: int
    models: list[dict[str, Any]]
    rank_correlation: float | None
    """Spearman correlation of the two models' PDs (two models only)."""


def compare_versions(
    uow: UnitOfWork,
    *,
    models_dir: Path,
    refs: Sequence[tuple[str, int]],
    data: pl.DataFrame,
    target: str,
    bad_value: Any = None,
) -> Comparison:
    """Score the same data with each version and put their figures side by side."""
    if not refs:
        raise TrainingDataError("name at least one model version to compare")
    require_columns(data, [target], what="the comparison data")
    y = encode_target(data[target], name=target, bad_value=bad_value)
    out = []
    pds = []
    for name, version in refs:
        loaded = load_version(uow, models_dir=models_dir, name=name, version=version, allow_unapproved=True)
        require_columns(data, list(loaded.features), what=f"the comparison data (for {loaded.ref})")
        pd_bad = loaded.predict_proba(data)
        pds.append(pd_bad)
        s = metrics.summary(y, pd_bad)
        top = metrics.deciles(y, pd_bad).row(0, named=True)
        out.append(
            {
                "model": loaded.ref,
                "name": name,
                "version": version,
                "kind": loaded.kind,
                "status": loaded.status,
                **s,
                "top_decile_bad_rate": top["bad_rate"],
                "top_decile_capture": top["cum_bad_capture"],
                "hosmer_lemeshow_p": metrics.hosmer_lemeshow(y, pd_bad)["p_value"],
            }
        )
    rank = None
    if len(pds) == 2:
        from scipy.stats import spearmanr

        rank = float(spearmanr(pds[0], pds[1]).statistic)
    return Comparison(rows=int(y.size), bads=int(y.sum()), models=out, rank_correlation=rank)


#: Portrait columns that identify or place a customer: never offered to a model as features.
PORTRAIT_NON_FEATURES = ("customer_id", "as_of", "segment", "branch_id", "lat", "lon")


def portrait_sample(lake: Path, *, as_of: date, segment: str | None, target: str) -> pl.DataFrame:
    """The customers of ``segment`` (all when ``None``) in the portrait at ``as_of`` whose
    ``target`` is observable, with every feature and the target (see ``portrait.build_targets``)."""
    from creditfactory import portrait

    features = portrait.read(lake, as_of=as_of)
    targets = portrait.read_targets(lake, as_of=as_of)
    names = targets.collect_schema().names()
    if target not in names:
        known = ", ".join(
            n for n in names if n not in ("customer_id", "as_of", "observable", "unobservable_reason")
        )
        raise TrainingDataError(f"the portrait's targets at {as_of} have no {target!r} (known: {known})")
    if segment is not None:
        features = features.filter(pl.col("segment") == segment)
    frame = (
        features.join(
            targets.filter(pl.col("observable")).select("customer_id", target), on="customer_id", how="inner"
        )
        .sort("customer_id")
        .collect()
    )
    if frame.height == 0:
        where = f"segment {segment!r}" if segment else "any segment"
        raise TrainingDataError(f"no customer of {where} has an observable {target} at {as_of}")
    return frame


def portrait_exclusions(frame: pl.DataFrame, *, target: str) -> list[str]:
    """Columns of a portrait sample that are not features (identity, placement, other targets)."""
    return [c for c in frame.columns if c in PORTRAIT_NON_FEATURES and c != target]
