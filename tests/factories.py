"""A small, hand-written bank extract that satisfies the data contract, and ways to spoil it.

:func:`bank_extract` gives every contract table as rows of typed Python values (text, ints,
``Decimal`` amounts and rates, dates, booleans, ``None`` for an empty cell). :func:`write_extract`
writes them into a folder as CSV, Parquet or Excel, one file per table (or one workbook with a
sheet per table). The data is small enough to check by eye: 2 branches, 3 staff, 8 customers,
their accounts and three months of flows, one loan with its performance, bureau reports,
external data, devices, contacts and a negative-list entry. Load it on :data:`LOAD_DATE`.

The helpers below the writer rewrite one CSV table of a written extract (to corrupt a copy)
and read reject files back.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from creditfactory.contract.tables import BY_NAME, TABLES, ColumnType, Table
from creditfactory.security import idcard

#: The day the extract is loaded (the date of the ``clock`` fixture).
LOAD_DATE = date(2025, 7, 1)

Row = dict[str, Any]
Extract = dict[str, list[Row]]

D = Decimal


def _customer(
    n: int,
    name: str,
    born: date,
    seq: int,
    phone: str,
    segment: str,
    branch: str,
    manager: str | None,
    **extra: Any,
) -> Row:
    row: Row = {
        "customer_id": f"C{n:04d}",
        "id_number": idcard.make("330521", born, seq),
        "name": name,
        "gender": "M" if seq % 2 else "F",
        "birth_date": born,
        "phone": phone,
        "segment": segment,
        "branch_id": branch,
        "manager_id": manager,
        "address": f"浙江省湖州市德清县武康街道{n}号",
        "lat": round(30.54 + n / 100, 4),
        "lon": round(119.97 + n / 100, 4),
        "kyc_status": "complete",
        "marital_status": "married",
        "education": "secondary",
        "opened_date": date(2010 + n, 3, 1),
        "marketing_consent": n % 3 != 0,
    }
    row.update(extra)
    return row


def bank_extract() -> Extract:
    """Every contract table of a small bank, valid on :data:`LOAD_DATE`."""
    customers = [
        _customer(1, "张伟", date(1980, 5, 17), 11, "13812345678", "farmer", "B01", "S001"),
        _customer(2, "王秀英", date(1975, 11, 2), 22, "13923456789", "merchant", "B01", "S001"),
        _customer(3, "李娜", date(1992, 2, 29), 34, "15034567890", "salaried", "B01", None, education=None),
        _customer(4, "刘洋", date(1988, 8, 8), 45, "15145678901", "merchant", "B02", "S003"),
        _customer(5, "陈明", date(1969, 1, 31), 57, "18656789012", "farmer", "B02", "S003", address=None),
        _customer(
            6, "杨丽", date(1999, 12, 31), 68, "17767890123", "salaried", "B02", None, lat=None, lon=None
        ),
        _customer(
            7, "赵军", date(1958, 6, 30), 79, "13678901234", "other", "B01", "S001", kyc_status="expired"
        ),
        _customer(
            8, "黄敏", date(2001, 4, 1), 80, "19989012345", "farmer", "B02", "S003", marital_status="single"
        ),
    ]
    accounts = [
        {
            "account_id": f"A{n:04d}",
            "customer_id": f"C{n:04d}",
            "product": "savings" if n % 2 else "current",
            "opened_date": date(2012 + n, 3, 1),
            "closed_date": None,
            "status": "active",
        }
        for n in range(1, 9)
    ]
    accounts.append(
        {
            "account_id": "A0009",
            "customer_id": "C0002",
            "product": "time_deposit",
            "opened_date": date(2020, 1, 15),
            "closed_date": date(2023, 1, 15),
            "status": "closed",
        }
    )
    months = [date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1)]
    flows = [
        {
            "account_id": account,
            "month": month,
            "inflow": D("8500.00") + i * D("100.25"),
            "outflow": D("7200.50") + i,
            "payroll_in": payroll,
            "acquiring_in": acquiring,
            "subsidy_in": D("0"),
            "txn_count": 20 + i,
            "end_balance": D("15300.25") + i * 1000,
        }
        for account, payroll, acquiring in (
            ("A0001", D("0"), D("0")),
            ("A0002", D("0"), D("6000.00")),
            ("A0003", D("8000.00"), D("0")),
        )
        for i, month in enumerate(months)
    ]
    assets = [
        {
            "customer_id": f"C{n:04d}",
            "month": months[-1],
            "deposit_balance": D("15300.25") * n,
            "wealth_balance": D("50000.00") if n == 2 else D("0"),
            "total_assets": D("15300.25") * n + (D("50000.00") if n == 2 else 0),
        }
        for n in (1, 2, 3)
    ]
    loans = [
        {
            "loan_id": "L0001",
            "customer_id": "C0004",
            "product": "business",
            "open_date": date(2024, 7, 15),
            "maturity_date": date(2026, 7, 15),
            "principal": D("50000.00"),
            "annual_rate": D("0.0435"),
            "guarantee_type": "credit",
            "status": "active",
            "close_date": None,
        },
        {
            "loan_id": "L0002",
            "customer_id": "C0001",
            "product": "agricultural",
            "open_date": date(2022, 3, 1),
            "maturity_date": date(2023, 3, 1),
            "principal": D("20000.00"),
            "annual_rate": D("0.05125"),
            "guarantee_type": "guaranteed",
            "status": "settled",
            "close_date": date(2023, 2, 27),
        },
    ]
    performance = [
        {
            "loan_id": "L0001",
            "month": month,
            "balance": D("40000.00") - i * D("2083.33"),
            "dpd": 0 if i < 2 else 12,
            "overdue_amount": D("0") if i < 2 else D("2300.15"),
        }
        for i, month in enumerate(months)
    ]
    bureau = [
        {
            "customer_id": customer,
            "report_date": report_date,
            "has_record": has_record,
            "inquiries_3m": inquiries,
            "inquiries_12m": inquiries * 2,
            "open_accounts": 1 if has_record else 0,
            "card_limit": D("30000.00") if has_record else D("0"),
            "card_balance": D("4521.37") if has_record else D("0"),
            "total_exposure": D("40000.00") if has_record else D("0"),
            "worst_dpd_24m": 0,
            "delinquent_accounts": 0,
        }
        for customer, report_date, has_record, inquiries in (
            ("C0001", date(2025, 1, 10), True, 1),
            ("C0001", date(2025, 6, 10), True, 2),
            ("C0004", date(2025, 3, 2), True, 0),
            ("C0006", date(2025, 5, 20), False, 0),
        )
    ]
    tax = [
        {
            "customer_id": "C0002",
            "period_end": date(2025, 3, 31),
            "revenue": D("182000.00"),
            "tax_paid": D("1820.00"),
            "credit_grade": "B",
        }
    ]
    invoices = [
        {"customer_id": "C0002", "month": month, "invoice_count": 30 + i, "invoice_amount": D("61000.50")}
        for i, month in enumerate(months)
    ]
    farmland = [
        {
            "customer_id": "C0001",
            "land_area_mu": 12.5,
            "main_crop": "tea",
            "machinery_count": 2,
            "machinery_value": D("38000.00"),
            "cooperative_member": True,
        },
        {
            "customer_id": "C0005",
            "land_area_mu": 30.0,
            "main_crop": "grain",
            "machinery_count": 0,
            "machinery_value": D("0"),
            "cooperative_member": False,
        },
    ]
    social = [
        {"customer_id": "C0003", "month": month, "contribution_base": D("6500.00"), "paid": i != 1}
        for i, month in enumerate(months)
    ]
    devices = [
        {
            "device_id": "DV0001",
            "customer_id": "C0003",
            "fingerprint": "fp-3a9c",
            "os": "android",
            "is_emulator": False,
            "is_rooted": False,
            "ip_address": "10.1.2.3",
            "first_seen_date": date(2024, 9, 1),
        },
        {
            "device_id": "DV0002",
            "customer_id": "C0006",
            "fingerprint": "fp-77b1",
            "os": "ios",
            "is_emulator": False,
            "is_rooted": False,
            "ip_address": None,
            "first_seen_date": date(2025, 2, 14),
        },
    ]
    contacts = [
        {"customer_id": "C0001", "contact_phone": "13923456789", "relation": "spouse"},
        {"customer_id": "C0003", "contact_phone": "13512340000", "relation": "parent"},
    ]
    negative = [
        {
            "entry_id": "N0001",
            "kind": "phone",
            "value": "13700000009",
            "reason": "fraud",
            "listed_date": date(2024, 11, 20),
            "source": "court",
        },
        {
            "entry_id": "N0002",
            "kind": "id_number",
            "value": idcard.make("110105", date(1970, 1, 1), 3),
            "reason": "court_enforced",
            "listed_date": date(2023, 5, 5),
            "source": "PBOC",
        },
        {
            "entry_id": "N0003",
            "kind": "device",
            "value": "fp-dead",
            "reason": "fraud",
            "listed_date": date(2025, 6, 1),
            "source": "internal",
        },
    ]
    return {
        "branches": [
            {
                "branch_id": "B01",
                "branch_name": "德清县城支行",
                "region_code": "330521",
                "address": "浙江省湖州市德清县武康街道英溪北路1号",
                "lat": 30.5456,
                "lon": 119.9701,
                "opened_date": date(1998, 3, 1),
            },
            {
                "branch_id": "B02",
                "branch_name": "新市分理处",
                "region_code": "330521",
                "address": None,
                "lat": 30.6012,
                "lon": 120.1033,
                "opened_date": date(2005, 6, 15),
            },
        ],
        "staff": [
            {"staff_id": "S001", "branch_id": "B01", "name": "王芳", "role": "account_manager", "phone": "13900000001", "active": True},
            {"staff_id": "S002", "branch_id": "B01", "name": "李强", "role": "underwriter", "phone": None, "active": True},
            {"staff_id": "S003", "branch_id": "B02", "name": "陈静", "role": "account_manager", "phone": "13900000003", "active": True},
        ],
        "customers": customers,
        "deposit_accounts": accounts,
        "account_flows": flows,
        "assets_monthly": assets,
        "loans": loans,
        "loan_performance": performance,
        "bureau_reports": bureau,
        "tax_records": tax,
        "invoices": invoices,
        "farmland": farmland,
        "social_security": social,
        "devices": devices,
        "contacts": contacts,
        "negative_list": negative,
    }  # fmt: skip


# ------------------------------------------------------------------ writing


def text_of(value: Any) -> str:
    """A value as a bank's CSV export writes it (empty for a missing value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _polars_type(table: Table, column: str) -> pl.DataType:
    t = ColumnType
    match table.column(column).type:
        case t.INT:
            return pl.Int64()
        case t.FLOAT:
            return pl.Float64()
        case t.AMOUNT:
            return pl.Decimal(18, 2)
        case t.RATE:
            return pl.Decimal(12, 8)
        case t.DATE | t.MONTH:
            return pl.Date()
        case t.BOOL:
            return pl.Boolean()
        case _:
            return pl.String()


def write_csv(path: Path, table: Table, rows: list[Row], *, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow([text_of(row.get(c)) for c in table.column_names])
    return path


def write_parquet(path: Path, table: Table, rows: list[Row]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = {c: _polars_type(table, c) for c in table.column_names}
    frame = pl.DataFrame(
        [{c: row.get(c) for c in table.column_names} for row in rows], schema=schema, orient="row"
    )
    frame.write_parquet(path)
    return path


def _excel_value(value: Any) -> Any:
    # Excel keeps every number as a binary float.
    return float(value) if isinstance(value, Decimal) else value


def _fill_sheet(ws: Any, table: Table, rows: list[Row]) -> None:
    ws.append(list(table.column_names))
    for row in rows:
        ws.append([_excel_value(row.get(c)) for c in table.column_names])


def write_xlsx(path: Path, table: Table, rows: list[Row]) -> Path:
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = table.name
    _fill_sheet(ws, table, rows)
    wb.save(path)
    return path


def write_extract(directory: Path, fmt: str = "csv", tables: Extract | None = None) -> Path:
    """Write ``tables`` (default: :func:`bank_extract`) into ``directory``; returns it.

    ``fmt`` is ``"csv"``, ``"parquet"`` or ``"xlsx"`` (one file per table), or ``"workbook"``
    (one ``extract.xlsx`` with a sheet per table).
    """
    tables = bank_extract() if tables is None else tables
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "workbook":
        from openpyxl import Workbook

        wb = Workbook()
        wb.remove(wb.active)
        for name, rows in tables.items():
            _fill_sheet(wb.create_sheet(name), BY_NAME[name], rows)
        wb.save(directory / "extract.xlsx")
        return directory
    writers: dict[str, Callable[[Path, Table, list[Row]], Path]] = {
        "csv": write_csv,
        "parquet": write_parquet,
        "xlsx": write_xlsx,
    }
    write = writers[fmt]
    for name, rows in tables.items():
        write(directory / f"{name}.{fmt}", BY_NAME[name], rows)
    return directory


def row_counts(tables: Extract | None = None) -> dict[str, int]:
    tables = bank_extract() if tables is None else tables
    return {t.name: len(tables[t.name]) for t in TABLES if t.name in tables}


# ------------------------------------------------------------------ spoiling a copy


def copy_extract(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def edit_csv(path: Path, edit: Callable[[list[dict[str, str]]], list[dict[str, str]] | None]) -> Path:
    """Rewrite a CSV file with ``edit`` applied to its rows (as text; edit in place or return new rows)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    rows = read_csv_rows(path)
    edited = edit(rows)
    rows = rows if edited is None else edited
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def drop_column(path: Path, column: str) -> Path:
    rows = read_csv_rows(path)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[c for c in rows[0] if c != column], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    """Rows of a reject file (``_file``, ``_row``, ``_reasons`` and the values as sent)."""
    return read_csv_rows(path)
