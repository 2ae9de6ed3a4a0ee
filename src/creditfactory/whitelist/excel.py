"""The fixed Excel template that credit and marketing departments use to hand over lists.

One sheet ``名单 Whitelist`` with a header row of bilingual labels (``证件号码 id_number``), one
customer per row, and a sheet ``说明 Instructions`` that explains every column. The reader finds
the header by its labels (Chinese, English or both), so a department may reorder columns, add
a title row above the header, or keep extra columns of its own; every problem names the file,
the sheet, the row (as Excel numbers it) and the column.

ID numbers and phones must be text: an 18-digit number typed into a numeric cell has already
lost its last digits in Excel, so such a cell is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from creditfactory.errors import InvalidInput

SHEET = "名单 Whitelist"
INSTRUCTIONS = "说明 Instructions"
REJECT_SHEET = "退回 Rejected"


@dataclass(frozen=True, slots=True)
class TemplateColumn:
    name: str
    label_zh: str
    required: bool
    width: int
    help_en: str
    help_zh: str
    text: bool = False

    @property
    def header(self) -> str:
        return f"{self.label_zh} {self.name}"


COLUMNS: tuple[TemplateColumn, ...] = (
    TemplateColumn(
        "customer_id",
        "客户号",
        False,
        14,
        "The bank's customer number (optional; checked against the ID number when given).",
        "核心系统客户号（可空；填写时须与证件号码一致）",
        text=True,
    ),
    TemplateColumn(
        "id_number",
        "证件号码",
        True,
        22,
        "18-character resident ID number, as text.",
        "18位居民身份证号码，文本格式",
        text=True,
    ),
    TemplateColumn(
        "name",
        "姓名",
        False,
        10,
        "Customer name (optional; checked against the bank's record when given).",
        "客户姓名（可空；填写时须与行内记录一致）",
        text=True,
    ),
    TemplateColumn(
        "phone",
        "手机号码",
        False,
        14,
        "11-digit mobile number (optional; checked against the bank's record).",
        "11位手机号码（可空；填写时须与行内记录一致）",
        text=True,
    ),
    TemplateColumn(
        "limit",
        "额度",
        True,
        12,
        "Pre-approved limit in yuan, at most 2 decimals, within the product's bounds.",
        "预授信额度（元），最多两位小数，须在产品额度范围内",
    ),
    TemplateColumn(
        "annual_rate",
        "年利率",
        True,
        10,
        "Annual interest rate as a fraction (0.0435 for 4.35%).",
        "年利率，小数表示（4.35% 填 0.0435）",
    ),
    TemplateColumn("grade", "等级", False, 8, "Risk grade (optional).", "风险等级（可空）", text=True),
    TemplateColumn(
        "expiry_date",
        "有效期至",
        False,
        12,
        "Last day the offer may be used (default: the list's expiry).",
        "额度有效期截止日（可空，默认名单有效期）",
    ),
    TemplateColumn(
        "note",
        "备注",
        False,
        24,
        "Who approved it and why (kept with the line).",
        "审批人及理由（随名单保存）",
        text=True,
    ),
)
BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)


class TemplateError(InvalidInput):
    code = "whitelist_template_invalid"
    title = "Whitelist workbook does not follow the template"


@dataclass(slots=True)
class RawRow:
    row: int
    """Row number as Excel shows it."""
    values: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def _match(label: object) -> str | None:
    if label is None:
        return None
    text = str(label).strip().lower().replace("\n", " ")
    for col in COLUMNS:
        if text in (col.name, col.label_zh, col.header.lower()) or text.endswith(f" {col.name}"):
            return col.name
        if text.startswith(col.label_zh) and col.label_zh:
            return col.name
    return None


def read_rows(path: Path) -> tuple[list[RawRow], str]:
    """The data rows of a workbook in the template (values as the cells hold them).

    Raises :class:`TemplateError` naming the file, sheet and columns when the workbook cannot be
    read or lacks a required column.
    """
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a wrong or damaged file: say which and why
        raise TemplateError(f"{path.name}: not a readable .xlsx workbook ({exc})", file=path.name) from None
    try:
        sheet_name = (
            SHEET
            if SHEET in book.sheetnames
            else next((n for n in book.sheetnames if n not in (INSTRUCTIONS, REJECT_SHEET)), None)
        )
        if sheet_name is None:
            raise TemplateError(f"{path.name}: no sheet {SHEET!r}", file=path.name)
        sheet = book[sheet_name]
        header_row = 0
        mapping: dict[int, str] = {}
        extras: dict[int, str] = {}
        rows = sheet.iter_rows(values_only=True)
        buffered: list[tuple[Any, ...]] = []
        for i, cells in enumerate(rows, start=1):
            buffered.append(cells)
            found = {j: m for j, c in enumerate(cells) if (m := _match(c))}
            if "id_number" in found.values() and len(found) >= 2:
                header_row = i
                mapping = found
                extras = {j: str(c).strip() for j, c in enumerate(cells) if j not in found and c is not None}
                break
            if i >= 10:
                break
        missing = [c for c in REQUIRED if c not in mapping.values()]
        if not header_row or missing:
            names = ", ".join(BY_NAME[c].header for c in missing or REQUIRED)
            raise TemplateError(
                f"{path.name}, sheet {sheet_name!r}: no header row with the required column(s) {names} "
                "in the first 10 rows",
                file=path.name,
                sheet=sheet_name,
                missing=missing or list(REQUIRED),
            )
        out: list[RawRow] = []
        for i, cells in enumerate(rows, start=header_row + 1):
            if cells is None or all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            values = {name: (cells[j] if j < len(cells) else None) for j, name in mapping.items()}
            extra = {name: cells[j] for j, name in extras.items() if j < len(cells)}
            out.append(RawRow(row=i, values=values, extra=extra))
        return out, sheet_name
    finally:
        book.close()


# ------------------------------------------------------------------ cell parsing


def text_cell(value: Any, column: str) -> tuple[str | None, str | None]:
    """(text, problem): ID numbers and phones must arrive as text."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, f"{column}: expected text, got {value!r}"
    if isinstance(value, float | int):
        if column in ("id_number", "phone") and (isinstance(value, float) or abs(value) >= 10**15):
            return None, (
                f"{column}: stored as a number in Excel ({value!r}), which loses digits; "
                "format the column as text and type it again"
            )
        return str(int(value)), None
    text = str(value).strip()
    return (text or None), None


def decimal_cell(value: Any, column: str) -> tuple[Decimal | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"{column}: expected a number, got {value!r}"
    try:
        if isinstance(value, float):
            # Excel keeps numbers as binary floats: take the shortest decimal that round-trips.
            return Decimal(repr(value)), None
        text = str(value).strip().replace(",", "").replace("，", "")
        if text.endswith("%"):
            return Decimal(text[:-1]) / 100, None
        return Decimal(text), None
    except (InvalidOperation, ValueError):
        return None, f"{column}: {value!r} is not a number"


def date_cell(value: Any, column: str) -> tuple[date | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    text = str(value).strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, f"{column}: {value!r} is not a date (YYYY-MM-DD)"


# ------------------------------------------------------------------ writing


def write_workbook(
    path: Path,
    rows: Sequence[dict[str, Any]],
    *,
    title: str,
    extra_columns: Sequence[tuple[str, str, int]] = (),
    rejects: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Write the template (instructions + the list) with ``rows`` keyed by column name.

    ``extra_columns`` (name, header, width) follow the template's columns (e.g. the status of an
    exported line); the importer ignores them. With ``rejects`` the workbook is a reject file:
    a sheet of the rejected rows with their Excel row number and every reason.
    """
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "remove_timezone": True})
    try:
        bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        text = book.add_format({"num_format": "@"})
        money = book.add_format({"num_format": "#,##0.00"})
        rate = book.add_format({"num_format": "0.0000%"})
        day = book.add_format({"num_format": "yyyy-mm-dd"})
        formats = {"limit": money, "annual_rate": rate, "expiry_date": day}

        if rejects is not None:
            sheet = book.add_worksheet(REJECT_SHEET)
            headers = ["行号 row", "原因 reasons", *(c.header for c in COLUMNS)]
            sheet.write_row(0, 0, headers, bold)
            sheet.set_column(0, 0, 8)
            sheet.set_column(1, 1, 60)
            for j, col in enumerate(COLUMNS, start=2):
                sheet.set_column(j, j, col.width, text if col.text else None)
            for i, rej in enumerate(rejects, start=1):
                sheet.write_number(i, 0, rej["row"])
                sheet.write_string(i, 1, "; ".join(rej["reasons"]))
                for j, col in enumerate(COLUMNS, start=2):
                    value = rej["values"].get(col.name)
                    if value is None:
                        continue
                    if isinstance(value, datetime | date):
                        sheet.write_datetime(i, j, value, day)
                    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                        sheet.write_number(i, j, float(value))
                    else:
                        sheet.write_string(i, j, str(value))
            sheet.freeze_panes(1, 2)

        guide = book.add_worksheet(INSTRUCTIONS)
        guide.set_column(0, 0, 24)
        guide.set_column(1, 1, 10)
        guide.set_column(2, 3, 60)
        guide.write(0, 0, title, book.add_format({"bold": True, "font_size": 14}))
        guide.write_row(2, 0, ["列 column", "必填 required", "说明", "what to enter"], bold)
        for i, col in enumerate(COLUMNS, start=3):
            guide.write_row(
                i, 0, [col.header, "是 yes" if col.required else "否 no", col.help_zh, col.help_en]
            )
        guide.write(
            len(COLUMNS) + 4,
            0,
            "每位客户一行；同一客户出现多次时全部退回。One customer per row; a customer on several rows is rejected on all of them.",
        )

        sheet = book.add_worksheet(SHEET)
        all_cols = [(c.name, c.header, c.width) for c in COLUMNS] + list(extra_columns)
        sheet.write_row(0, 0, [h for _, h, _ in all_cols], bold)
        for j, (name, _, width) in enumerate(all_cols):
            col = BY_NAME.get(name)
            sheet.set_column(j, j, width, text if col is not None and col.text else None)
        for i, row in enumerate(rows, start=1):
            for j, (name, _, _) in enumerate(all_cols):
                value = row.get(name)
                if value is None:
                    continue
                fmt = formats.get(name)
                if isinstance(value, datetime | date):
                    sheet.write_datetime(i, j, value, fmt or day)
                elif isinstance(value, Decimal | int | float) and not isinstance(value, bool):
                    sheet.write_number(i, j, float(value), fmt)
                else:
                    sheet.write_string(i, j, str(value))
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(rows), 1), len(all_cols) - 1)
        sheet.activate()
    finally:
        book.close()
    return path
