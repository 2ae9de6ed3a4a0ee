"""Hand-made lakes for the portrait tests, written straight in the lake's at-rest format.

Rows are given as a user reads them (amounts in yuan, rates as fractions, ISO dates) and written
as ingestion writes them: amounts as integer fen, rates at scale 1e-8, ID numbers and phones as
``*_token`` columns, lineage columns ``_file``, ``_row`` and ``_batch``, one file per table and
batch (``LAKE/<table>/b<batch>-00000.parquet``).

:func:`worked_lake` is the small bank the worked examples are computed from by hand.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from creditfactory.contract.tables import BY_NAME, ColumnType

Row = dict[str, Any]

_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.CODE: pl.String(),
    ColumnType.ID_NUMBER: pl.String(),
    ColumnType.PHONE: pl.String(),
    ColumnType.INT: pl.Int64(),
    ColumnType.AMOUNT: pl.Int64(),
    ColumnType.RATE: pl.Int64(),
    ColumnType.FLOAT: pl.Float64(),
    ColumnType.DATE: pl.Date(),
    ColumnType.MONTH: pl.Date(),
    ColumnType.BOOL: pl.Boolean(),
}


def _at_rest(kind: ColumnType, value: Any) -> Any:
    if value is None:
        return None
    if kind is ColumnType.AMOUNT:
        return int(Decimal(str(value)) * 100)
    if kind is ColumnType.RATE:
        return int(Decimal(str(value)) * 100_000_000)
    if kind in (ColumnType.DATE, ColumnType.MONTH) and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def table_frame(table: str, rows: list[Row], *, batch: int = 1) -> pl.DataFrame:
    """Rows of a contract table as the lake keeps them."""
    spec = BY_NAME[table]
    columns: dict[str, pl.Series] = {
        "_file": pl.Series("_file", [f"{table}.parquet"] * len(rows), dtype=pl.String),
        "_row": pl.Series("_row", list(range(1, len(rows) + 1)), dtype=pl.Int64),
    }
    for col in spec.columns:
        tokenised = col.type in (ColumnType.ID_NUMBER, ColumnType.PHONE) or (
            col.pii and table == "negative_list"
        )
        if col.pii and not tokenised:
            continue
        name = f"{col.name}_token" if tokenised else col.name
        dtype = pl.String() if tokenised else _TYPES[col.type]
        values = [_at_rest(col.type, row.get(col.name, row.get(name))) for row in rows]
        columns[name] = pl.Series(name, values, dtype=dtype)
    columns["_batch"] = pl.Series("_batch", [batch] * len(rows), dtype=pl.Int64)
    return pl.DataFrame(list(columns.values()))


def write_table(lake: Path, table: str, rows: list[Row], *, batch: int = 1) -> Path:
    folder = lake / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"b{batch:08d}-00000.parquet"
    table_frame(table, rows, batch=batch).write_parquet(path)
    return path


def write_lake(lake: Path, tables: dict[str, list[Row]]) -> Path:
    for table, rows in tables.items():
        if rows:
            write_table(lake, table, rows)
    return lake


def months(first: str, last: str) -> list[date]:
    """First days of the months from ``first`` to ``last`` (``YYYY-MM``), inclusive."""
    y, m = (int(x) for x in first.split("-"))
    ly, lm = (int(x) for x in last.split("-"))
    out: list[date] = []
    while (y, m) <= (ly, lm):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def customer(cid: str, **kw: Any) -> Row:
    row: Row = {
        "customer_id": cid,
        "id_number_token": f"id-{cid}",
        "gender": "M",
        "birth_date": "1980-01-01",
        "phone_token": f"phone-{cid}",
        "segment": "other",
        "branch_id": "B01",
        "manager_id": None,
        "lat": 31.46,
        "lon": 116.95,
        "kyc_status": "complete",
        "marital_status": None,
        "education": None,
        "opened_date": "2015-01-01",
        "marketing_consent": True,
    }
    row.update(kw)
    return row


def flow(account: str, month: date, **kw: Any) -> Row:
    row: Row = {
        "account_id": account,
        "month": month,
        "inflow": 0,
        "outflow": 0,
        "payroll_in": 0,
        "acquiring_in": 0,
        "subsidy_in": 0,
        "txn_count": 0,
        "end_balance": 0,
    }
    row.update(kw)
    return row


# ------------------------------------------------------------------ the worked example

AS_OF = date(2025, 6, 30)


def worked_lake(lake: Path) -> Path:
    """Four customers whose portrait at 2025-06-30 is worked out by hand in the tests.

    * C1, salaried: three accounts (one time deposit closed in March), twelve months of flows
      with one month without income, a loan that goes 45 days past due and is 35 days past due
      at the as-of date (and is written off only in September, after it), an old settled loan,
      two bureau reports before the as-of date and one after, social security with one unpaid
      month, a device first seen after the as-of date, a negative-list entry dated after it.
    * C2, merchant: six months of flows, acquiring rising from 1 000 to 1 500 a month, invoices
      rising from 2 000 to 3 000, eight tax quarters (10 000 then 12 000), on the negative list.
    * C3 became a customer after the as-of date: not in the portrait.
    * C4, farmer since November 2024: farmland, a land subsidy in May, an expired KYC file.
    """
    c1_months = months("2024-07", "2025-06")
    flows: list[Row] = []
    for i, m in enumerate(c1_months):
        income = 0 if m == date(2025, 2, 1) else 5000
        flows.append(
            flow(
                "A1",
                m,
                inflow=income,
                outflow=4900,
                payroll_in=income,
                txn_count=10,
                end_balance=1000 + 100 * i,
            )
        )
    flows += [
        flow("A3", date(2025, 5, 1), inflow=300, end_balance=300, txn_count=1),
        flow("A3", date(2025, 6, 1), inflow=200, end_balance=500, txn_count=1),
    ]
    for m in months("2025-01", "2025-06"):
        acq = 1000 if m.month <= 3 else 1500
        flows.append(flow("A4", m, inflow=acq + 500, outflow=acq, acquiring_in=acq, end_balance=800))
    for m in months("2024-11", "2025-06"):
        subsidy = Decimal("1375.00") if m.month == 5 else 0
        flows.append(flow("A5", m, inflow=2000 + subsidy, outflow=1900, subsidy_in=subsidy, end_balance=3000))
    flows.append(flow("A6", date(2025, 7, 1), inflow=900, end_balance=900))

    perf: list[Row] = []
    for i, m in enumerate(months("2024-01", "2025-08")):
        dpd = {date(2025, 3, 1): 15, date(2025, 4, 1): 45, date(2025, 6, 1): 35, date(2025, 8, 1): 120}.get(
            m, 0
        )
        overdue = {date(2025, 6, 1): "1200.50"}.get(m, 0)
        balance = Decimal("60000.00") - Decimal("1500.55") * i
        perf.append({"loan_id": "L1", "month": m, "balance": balance, "dpd": dpd, "overdue_amount": overdue})
    for m in months("2021-05", "2022-04"):
        perf.append({"loan_id": "L0", "month": m, "balance": 10000, "dpd": 0, "overdue_amount": 0})

    invoices = [
        {"customer_id": "C2", "month": m, "invoice_count": 4, "invoice_amount": 2000 if i < 6 else 3000}
        for i, m in enumerate(months("2024-07", "2025-06"))
    ]
    quarter_ends = [
        "2023-09-30", "2023-12-31", "2024-03-31", "2024-06-30",
        "2024-09-30", "2024-12-31", "2025-03-31", "2025-06-30",
    ]  # fmt: skip
    tax = [
        {
            "customer_id": "C2",
            "period_end": end,
            "revenue": 10000 if i < 4 else 12000,
            "tax_paid": 100,
            "credit_grade": "A" if i < 7 else "B",
        }
        for i, end in enumerate(quarter_ends)
    ]
    social = [
        {"customer_id": "C1", "month": m, "contribution_base": 5000, "paid": m != date(2024, 10, 1)}
        for m in c1_months
    ]
    bureau = [
        _bureau(
            "C1", "2024-12-20", inquiries_12m=2, card_limit=10000, card_balance=2500, total_exposure=50000
        ),
        _bureau(
            "C1",
            "2025-06-10",
            inquiries_12m=4,
            card_limit=20000,
            card_balance=15000,
            total_exposure="80000.25",
        ),
        _bureau(
            "C1", "2025-07-05", inquiries_12m=9, card_limit=20000, card_balance=20000, total_exposure=99999
        ),
    ]
    return write_lake(
        lake,
        {
            "customers": [
                customer(
                    "C1",
                    segment="salaried",
                    birth_date="1990-07-01",
                    opened_date="2020-03-15",
                    marital_status="married",
                    education="bachelor",
                ),
                customer("C2", segment="merchant", birth_date="1975-06-30", opened_date="2010-01-31"),
                customer("C3", segment="farmer", opened_date="2025-07-10"),
                customer(
                    "C4",
                    segment="farmer",
                    opened_date="2024-11-20",
                    kyc_status="expired",
                    marketing_consent=False,
                    lat=None,
                    lon=None,
                ),
            ],
            "deposit_accounts": [
                _account("A1", "C1", "savings", "2020-03-15"),
                _account("A2", "C1", "time_deposit", "2024-01-10", closed="2025-03-01"),
                _account("A3", "C1", "savings", "2025-05-01"),
                _account("A4", "C2", "current", "2010-01-31"),
                _account("A5", "C4", "savings", "2024-11-20"),
                _account("A6", "C3", "savings", "2025-07-10"),
            ],
            "account_flows": flows,
            "loans": [
                {
                    "loan_id": "L0",
                    "customer_id": "C1",
                    "product": "agricultural",
                    "open_date": "2021-05-01",
                    "maturity_date": "2022-05-01",
                    "principal": 10000,
                    "annual_rate": "0.05",
                    "guarantee_type": "credit",
                    "status": "settled",
                    "close_date": "2022-05-01",
                },
                {
                    "loan_id": "L1",
                    "customer_id": "C1",
                    "product": "consumer",
                    "open_date": "2024-01-15",
                    "maturity_date": "2027-01-15",
                    "principal": 60000,
                    "annual_rate": "0.0435",
                    "guarantee_type": "credit",
                    "status": "written_off",
                    "close_date": "2025-09-30",
                },
            ],
            "loan_performance": perf,
            "bureau_reports": bureau,
            "tax_records": tax,
            "invoices": invoices,
            "farmland": [
                {
                    "customer_id": "C4",
                    "land_area_mu": 12.5,
                    "main_crop": "grain",
                    "machinery_count": 2,
                    "machinery_value": 36000,
                    "cooperative_member": True,
                }
            ],
            "social_security": social,
            "devices": [
                _device("D1", "C1", "fp-1", "2024-01-01", rooted=False),
                _device("D2", "C1", "fp-2", "2025-08-01", rooted=True),
            ],
            "contacts": [
                {"customer_id": "C1", "contact_phone_token": "phone-X1", "relation": "spouse"},
                {"customer_id": "C1", "contact_phone_token": "phone-X2", "relation": "friend"},
            ],
            "negative_list": [
                _negative("N1", "phone", "phone-C1", "2025-07-15"),
                _negative("N2", "id_number", "id-C2", "2025-01-01"),
            ],
        },
    )


def _account(account: str, cid: str, product: str, opened: str, *, closed: str | None = None) -> Row:
    return {
        "account_id": account,
        "customer_id": cid,
        "product": product,
        "opened_date": opened,
        "closed_date": closed,
        "status": "closed" if closed else "active",
    }


def _bureau(cid: str, day: str, **kw: Any) -> Row:
    row: Row = {
        "customer_id": cid,
        "report_date": day,
        "has_record": True,
        "inquiries_3m": 1,
        "inquiries_12m": 0,
        "open_accounts": 2,
        "card_limit": 0,
        "card_balance": 0,
        "total_exposure": 0,
        "worst_dpd_24m": 0,
        "delinquent_accounts": 0,
    }
    row.update(kw)
    return row


def _device(device: str, cid: str, fingerprint: str, seen: str, *, rooted: bool) -> Row:
    return {
        "device_id": device,
        "customer_id": cid,
        "fingerprint": fingerprint,
        "os": "android",
        "is_emulator": False,
        "is_rooted": rooted,
        "ip_address": None,
        "first_seen_date": seen,
    }


def _negative(entry: str, kind: str, value: str, listed: str) -> Row:
    return {
        "entry_id": entry,
        "kind": kind,
        "value_token": value,
        "reason": "fraud",
        "listed_date": listed,
        "source": "court",
    }
