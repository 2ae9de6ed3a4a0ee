"""The contract's documentation is generated from the declarations and misses nothing."""

from __future__ import annotations

import re

import pytest

from creditfactory.contract.docs import render_markdown
from creditfactory.contract.tables import TABLES, Table

DOC = render_markdown()


def section(table: Table) -> str:
    """The text of a table's own section (from its heading to the next one)."""
    match = re.search(rf"^## {table.name}\n(.*?)(?=^## |\Z)", DOC, flags=re.M | re.S)
    assert match, f"no section for {table.name}"
    return match.group(1)


class TestRenderMarkdown:
    def test_lists_every_table_in_the_overview(self) -> None:
        for table in TABLES:
            assert f"| [`{table.name}`](#{table.name}) | {', '.join(table.key)} |" in DOC

    @pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
    def test_every_column_is_in_its_table_section(self, table: Table) -> None:
        text = section(table)
        rows = re.findall(r"^\| `([a-z0-9_]+)`", text, flags=re.M)
        assert rows == list(table.column_names)
        for col in table.columns:
            assert col.description in text
            for code in col.codes:
                assert f"`{code}`" in text

    @pytest.mark.parametrize("table", [t for t in TABLES if t.rules or t.unique], ids=lambda t: t.name)
    def test_rules_and_unique_columns(self, table: Table) -> None:
        text = section(table)
        for rule in table.rules:
            assert f"- rule `{rule.name}`: {rule.description}" in text
        for unique in table.unique:
            assert f"- unique: `{unique}`" in text

    def test_keys_foreign_keys_and_personal_data_are_marked(self) -> None:
        customers = section(next(t for t in TABLES if t.name == "customers"))
        assert "| `customer_id` (key) |" in customers
        assert "must exist in `branches.branch_id`" in customers
        phone = next(line for line in customers.splitlines() if line.startswith("| `phone`"))
        assert "personal data" in phone

    def test_is_stable(self) -> None:
        assert render_markdown() == DOC
