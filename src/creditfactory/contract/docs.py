"""The contract's documentation, generated from the declarations (``creditfactory contract docs``)."""

from __future__ import annotations

from creditfactory.contract.tables import RATE_SCALE, TABLES, ColumnType, Table

_TYPE_WORDS = {
    ColumnType.STRING: "text",
    ColumnType.INT: "whole number",
    ColumnType.FLOAT: "number",
    ColumnType.AMOUNT: "amount in yuan, ≤ 2 decimals (kept as integer fen)",
    ColumnType.RATE: f"annual rate as a fraction, ≤ {RATE_SCALE} decimals",
    ColumnType.DATE: "date YYYY-MM-DD",
    ColumnType.MONTH: "month YYYY-MM-01",
    ColumnType.BOOL: "true/false (also 1/0, Y/N, 是/否)",
    ColumnType.CODE: "code",
    ColumnType.ID_NUMBER: "18-character resident ID number (check digit verified)",
    ColumnType.PHONE: "11-digit mainland mobile number",
}


def _checks(table: Table, name: str) -> str:
    col = table.column(name)
    parts: list[str] = []
    if col.codes:
        parts.append("one of " + ", ".join(f"`{c}`" for c in col.codes))
    if col.min is not None:
        parts.append(f"≥ {col.min:g}")
    if col.max is not None:
        parts.append(f"≤ {col.max:g}")
    if col.max_length:
        parts.append(f"≤ {col.max_length} characters")
    if col.type in (ColumnType.DATE, ColumnType.MONTH):
        parts.append("from 1900" + ("" if col.allow_future else "; not after the load date"))
    for fk in table.foreign_keys:
        if fk.column == name:
            parts.append(f"must exist in `{fk.table}.{fk.ref_column}`")
    if col.pii:
        parts.append("personal data: tokenised in the lake, encrypted in the database")
    return "; ".join(parts)


def render_markdown() -> str:
    out: list[str] = [
        "# The data contract",
        "",
        "Generated from `src/creditfactory/contract/tables.py` by `creditfactory contract docs`; do not edit by hand.",
        "",
        "A bank hands over these tables as CSV (UTF-8 or GBK), Parquet or Excel: one file `<table>.<ext>`,",
        "or a folder `<table>/` of part files, or one Excel workbook with a sheet per table. `creditfactory",
        "ingest DIR` checks every row against the declarations below, loads the good rows (large tables to",
        "the Parquet lake, operational tables also to the database) and writes every rejected row with its",
        "reasons to `DATA_DIR/rejects/run-<id>/<table>.csv` (columns `_file`, `_row` — the spreadsheet row,",
        "header = row 1, or the record number for Parquet — `_reasons`, then the row as sent).",
        "A file already loaded is recognised by its SHA-256 and skipped; a key delivered again by a later",
        "load replaces the earlier row.",
        "",
        "| table | key | stored | what it holds |",
        "|---|---|---|---|",
    ]
    for t in TABLES:
        stored = "lake + database" if t.operational else "lake" + (" (streamed)" if t.large else "")
        out.append(f"| [`{t.name}`](#{t.name}) | {', '.join(t.key)} | {stored} | {t.description} |")
    for t in TABLES:
        out += ["", f"## {t.name}", "", t.description, ""]
        if t.made_by:
            out += [f"*In the sandbox:* {t.made_by}", ""]
        out += ["| column | type | required | checks | meaning |", "|---|---|---|---|---|"]
        for c in t.columns:
            key = " (key)" if c.name in t.key else ""
            out.append(
                f"| `{c.name}`{key} | {_TYPE_WORDS[c.type]} | {'yes' if c.required else 'no'} | "
                f"{_checks(t, c.name)} | {c.description} |"
            )
        extra = [f"- unique: `{u}`" for u in t.unique] + [
            f"- rule `{r.name}`: {r.description}" for r in t.rules
        ]
        if extra:
            out += ["", *extra]
    return "\n".join(out) + "\n"
