"""``docs/portrait.md`` is generated from the catalogue and misses nothing."""

from __future__ import annotations

import re
from pathlib import Path

from creditfactory import portrait
from creditfactory.portrait.docs import GROUPS, render_markdown

DOC = render_markdown()
ROOT = Path(__file__).resolve().parents[2]


class TestRenderMarkdown:
    def test_the_committed_doc_is_the_generated_one(self) -> None:
        committed = (ROOT / "docs" / "portrait.md").read_text(encoding="utf-8")
        assert committed == DOC, "regenerate: creditfactory portrait features --markdown > docs/portrait.md"

    def test_every_feature_once_with_its_meaning(self) -> None:
        rows = re.findall(r"^\| `([a-z0-9_]+)` \| (?:number|bool|string)", DOC, flags=re.M)
        names = [c.name for c in portrait.COLUMNS] + [f.name for f in portrait.FEATURES]
        assert rows == names
        for feat in portrait.FEATURES:
            line = next(x for x in DOC.splitlines() if x.startswith(f"| `{feat.name}` |"))
            assert feat.description in line and feat.label_zh in line

    def test_every_group_has_a_title_and_every_source_a_row(self) -> None:
        assert {f.group for f in portrait.FEATURES} <= set(GROUPS)
        for src in portrait.SOURCES:
            assert f"| `{src.name}` | `{src.table}` |" in DOC

    def test_names_every_error_code(self) -> None:
        for error in (
            portrait.PortraitNotFound,
            portrait.NoDataAtAsOf,
            portrait.MissingTables,
            portrait.UnknownEngine,
            portrait.EngineUnavailable,
            portrait.CustomerNotInPortrait,
        ):
            assert f"| `{error.code}` |" in DOC
