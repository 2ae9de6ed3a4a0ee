"""Model version directories: native artefacts, the manifest, integrity checks, feature schemas.

A version lives in ``<models_dir>/<name>/v<version>/``:

* ``manifest.json`` — name, version, kind, segment, features and their types, the training data
  (source, fingerprint), split and windows, seed, parameters, library versions, metrics, and the
  SHA-256 of every other file;
* ``points.json`` and ``points.csv`` (scorecard) — the points table, the JSON form complete
  enough to rebuild the scorecard;
* ``model.txt`` (LightGBM) — LightGBM's own text model; the manifest's ``lightgbm`` section holds
  the feature order, types and categories;
* ``report.html`` — the validation report.

The registry row keeps the SHA-256 of ``manifest.json``; loading checks it and then every file
against the manifest, so a missing, truncated or edited file is refused with its name.
No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from creditfactory.modeling.errors import ModelArtefactError, TrainingDataError
from creditfactory.modeling.model.data import FEATURE_TYPES
from creditfactory.modeling.model.gbm import LightGBMModel
from creditfactory.modeling.model.points import PointsTableError
from creditfactory.modeling.model.scorecard import ScorecardModel

FORMAT = "creditfactory.model/1"
MANIFEST = "manifest.json"
POINTS_JSON = "points.json"
POINTS_CSV = "points.csv"
MODEL_TXT = "model.txt"
REPORT = "report.html"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or "") or ".." in name:
        raise TrainingDataError(
            f"model name {name!r} is not usable: 1-64 letters, digits, '_', '-' or '.', starting "
            "with a letter or digit"
        )
    return name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relative_path(name: str, version: int) -> str:
    return f"{name}/v{version}"


def version_dir(models_dir: Path, name: str, version: int) -> Path:
    return models_dir / name / f"v{version}"


def artefact_files(model: ScorecardModel | LightGBMModel) -> dict[str, bytes]:
    """The native files of a fitted model."""
    if isinstance(model, ScorecardModel):
        table = model.points_table_
        return {POINTS_JSON: table.to_json().encode(), POINTS_CSV: table.to_csv().encode()}
    return {MODEL_TXT: model.model_text().encode()}


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (
        json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=False, allow_nan=False) + "\n"
    ).encode()


def write_version(models_dir: Path, name: str, version: int, files: Mapping[str, bytes]) -> Path:
    """Write a version's files into place all at once (staged, then renamed).

    The caller holds the registry row for (name, version), so a directory already there is the
    leftover of an attempt that never committed: it is replaced.
    """
    target = version_dir(models_dir, name, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".staging-v{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for filename, data in files.items():
            with (staging / filename).open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_manifest(path: Path, *, expected_sha256: str | None) -> dict[str, Any]:
    """The manifest of a version directory, after checking it and every file it lists."""
    label = str(path)
    if not path.is_dir():
        raise ModelArtefactError(f"model directory {label} is missing", path=label)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelArtefactError(f"model directory {label} has no {MANIFEST}", path=label)
    raw = manifest_path.read_bytes()
    if expected_sha256 is not None and sha256(raw) != expected_sha256:
        raise ModelArtefactError(
            f"{manifest_path}: manifest hash does not match the registry (file changed after registration)",
            path=str(manifest_path),
        )
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelArtefactError(
            f"{manifest_path}: not valid JSON ({exc})", path=str(manifest_path)
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelArtefactError(f"{manifest_path}: not a model manifest", path=str(manifest_path))
    for filename, digest in (manifest.get("files") or {}).items():
        file = path / filename
        if not file.is_file():
            raise ModelArtefactError(f"model directory {label} is missing {filename}", path=str(file))
        if sha256(file.read_bytes()) != digest:
            raise ModelArtefactError(
                f"{file}: content does not match the manifest's SHA-256 (file changed or damaged)",
                path=str(file),
            )
    return manifest


def build_estimator(path: Path, manifest: Mapping[str, Any]) -> ScorecardModel | LightGBMModel:
    """The fitted model from a checked version directory."""
    kind = manifest.get("kind")
    try:
        if kind == "scorecard":
            return ScorecardModel.from_points_table((path / POINTS_JSON).read_text("utf-8"))
        if kind == "lightgbm":
            return LightGBMModel.from_artefacts((path / MODEL_TXT).read_text("utf-8"), manifest["lightgbm"])
    except (PointsTableError, ValueError, KeyError, OSError) as exc:
        raise ModelArtefactError(f"model in {path} cannot be rebuilt: {exc}", path=str(path)) from None
    raise ModelArtefactError(f"{path / MANIFEST}: unknown model kind {kind!r}", path=str(path))


def check_schema(manifest: Mapping[str, Any], schema: Mapping[str, str]) -> list[str]:
    """Problems that stop a model from scoring data with ``schema`` (an empty list: it fits).

    ``manifest`` is a version's manifest (its ``features``) or the features mapping itself; both
    it and ``schema`` map a column to ``number``, ``string``, ``bool`` or ``date``. A categorical
    feature binned from numeric codes still reads the column as it is, so its type is the
    column's own.
    """
    features = manifest["features"] if isinstance(manifest.get("features"), Mapping) else manifest
    problems = []
    for name, kind in features.items():
        if name not in schema:
            problems.append(f"feature {name!r} ({kind}) is not in the data")
            continue
        have = schema[name]
        if have != kind and not (kind == "number" and have == "bool"):
            problems.append(f"feature {name!r} is {kind} in the model but {have} in the data")
    return problems


def parse_schema(data: Any) -> dict[str, str]:
    """A feature schema from JSON: ``{"col": "number"}``, or such a mapping under ``schema`` or
    ``features``, or a list of ``{"name": ..., "dtype"|"type": ...}``."""
    if isinstance(data, Mapping):
        for key in ("schema", "features"):
            if key in data and isinstance(data[key], Mapping | list):
                return parse_schema(data[key])
        out = {str(k): str(v) for k, v in data.items()}
    elif isinstance(data, list):
        out = {}
        for item in data:
            if not isinstance(item, Mapping) or "name" not in item:
                raise TrainingDataError("a feature schema list holds objects with 'name' and 'dtype'")
            out[str(item["name"])] = str(item.get("dtype", item.get("type")))
    else:
        raise TrainingDataError("a feature schema is a JSON object of column -> type")
    bad = {k: v for k, v in out.items() if v not in (*FEATURE_TYPES, "date")}
    if bad:
        shown = ", ".join(f"{k}: {v}" for k, v in list(bad.items())[:5])
        raise TrainingDataError(
            f"unknown types in the feature schema ({shown}); use number, string, bool or date"
        )
    return out
