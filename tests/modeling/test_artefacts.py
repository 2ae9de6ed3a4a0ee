"""Version directories: staged writes, integrity checks, names and feature schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from creditfactory.modeling import (
    ModelArtefactError,
    TrainingDataError,
    artefacts,
    check_schema,
    parse_schema,
)


class TestFeatureSchema:
    def test_a_manifest_against_the_data(self) -> None:
        manifest = {
            "format": "creditfactory.model/1",
            "features": {"age": "number", "segment": "string", "kyc": "bool"},
        }
        assert (
            check_schema(manifest, {"age": "number", "segment": "string", "kyc": "bool", "x": "date"}) == []
        )
        assert check_schema(manifest["features"], {"age": "string", "kyc": "bool"}) == [
            "feature 'age' is number in the model but string in the data",
            "feature 'segment' (string) is not in the data",
        ]
        assert check_schema({"flag": "number"}, {"flag": "bool"}) == []

    def test_schema_files_in_three_shapes(self) -> None:
        assert parse_schema({"age": "number"}) == {"age": "number"}
        assert parse_schema({"schema": {"age": "number"}, "rows": 5}) == {"age": "number"}
        assert parse_schema({"features": [{"name": "age", "dtype": "number"}]}) == {"age": "number"}
        with pytest.raises(TrainingDataError, match="unknown types in the feature schema"):
            parse_schema({"age": "integer"})


class TestVersionDirectory:
    def test_files_land_together_and_a_leftover_is_replaced(self, tmp_path: Path) -> None:
        leftover = artefacts.version_dir(tmp_path, "farmer", 1)
        leftover.mkdir(parents=True)
        (leftover / "stale.txt").write_text("from a run that never committed")
        files = {"points.json": b"{}", "report.html": b"<html>"}
        manifest = {
            "format": artefacts.FORMAT,
            "name": "farmer",
            "version": 1,
            "files": {k: artefacts.sha256(v) for k, v in files.items()},
        }
        raw = artefacts.manifest_bytes(manifest)
        path = artefacts.write_version(tmp_path, "farmer", 1, {**files, artefacts.MANIFEST: raw})
        assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "points.json", "report.html"]
        assert not [p for p in path.parent.iterdir() if p.name.startswith(".staging")]
        assert artefacts.read_manifest(path, expected_sha256=artefacts.sha256(raw))["name"] == "farmer"

    def test_a_manifest_that_is_not_one(self, tmp_path: Path) -> None:
        (tmp_path / "manifest.json").write_text(json.dumps({"hello": 1}))
        with pytest.raises(ModelArtefactError, match="not a model manifest"):
            artefacts.read_manifest(tmp_path, expected_sha256=None)
        (tmp_path / "manifest.json").write_text("{")
        with pytest.raises(ModelArtefactError, match="not valid JSON"):
            artefacts.read_manifest(tmp_path, expected_sha256=None)

    @pytest.mark.parametrize("name", ["", "../x", "a/b", "-x", "x" * 65, "a..b"])
    def test_unusable_names(self, name: str) -> None:
        with pytest.raises(TrainingDataError, match="model name"):
            artefacts.check_name(name)
