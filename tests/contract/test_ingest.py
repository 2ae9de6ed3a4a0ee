"""Ingestion of a bank's extracts, end to end on the real database (SQLite and PostgreSQL).

The factory extract (tests/factories.py) is written into a folder, loaded, and what arrived in
the Parquet lake, the database and the reject files is read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select

from creditfactory.bootstrap import Container
from creditfactory.contract import (
    IngestResult,
    IngestSettings,
    SourceError,
    find_customer_by_id_number,
    scan,
    service,
    table_counts,
)
from creditfactory.contract import ingest as ingest_mod
from creditfactory.contract import lake as lake_mod
from creditfactory.contract.store import OPERATIONAL, FileStatus, IngestFile, IngestRun, RunStatus
from creditfactory.contract.tables import BY_NAME, TABLES
from creditfactory.db import migrate
from creditfactory.security import idcard
from creditfactory.security.pii import PiiVault
from tests.factories import (
    Extract,
    bank_extract,
    copy_extract,
    drop_column,
    edit_csv,
    read_rejects,
    row_counts,
    text_of,
    write_csv,
    write_extract,
)

Ingest = Callable[..., IngestResult]

FULL = row_counts()
OPERATIONAL_COUNTS = {"branches": 2, "staff": 3, "customers": 8, "negative_list": 3}


@pytest.fixture
def ingest(container: Container) -> Ingest:
    def run(directory: Path, *, batch_rows: int = 2_000_000, lake: Path | None = None) -> IngestResult:
        return service.ingest_directory(
            directory=directory,
            uow_factory=container.sessions,
            clock=container.clock,
            vault=container.vault,
            settings=IngestSettings(
                lake=lake or container.lake_dir, reject_root=container.reject_dir, batch_rows=batch_rows
            ),
        )

    return run


@pytest.fixture
def extract_dir(tmp_path: Path) -> Path:
    return write_extract(tmp_path / "extract-2025-06-30")


def db_rows(container: Container, table: str) -> list[dict[str, Any]]:
    spec = OPERATIONAL[table]
    with container.uow() as uow:
        query = select(spec).order_by(*spec.primary_key.columns)
        return [dict(r) for r in uow.session.execute(query).mappings()]


def db_counts(container: Container) -> dict[str, int]:
    return {name: len(db_rows(container, name)) for name in OPERATIONAL}


def lake_files(lake: Path) -> dict[str, bytes]:
    return {p.relative_to(lake).as_posix(): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}


def lake_table(container: Container, table: str) -> pl.DataFrame:
    return scan(container.lake_dir, table).collect().sort(list(lake_keys(table)))


def lake_keys(table: str) -> list[str]:
    spec = BY_NAME[table]
    return [f"{k}_token" if spec.column(k).pii else k for k in spec.key]


def file_log(container: Container, run_id: int) -> dict[str, IngestFile]:
    with container.uow() as uow:
        files = list(uow.session.scalars(select(IngestFile).where(IngestFile.run_id == run_id)))
        uow.session.expunge_all()
    return {f.path.rsplit("/", 1)[-1]: f for f in files}


def runs(container: Container) -> list[IngestRun]:
    with container.uow() as uow:
        found = list(uow.session.scalars(select(IngestRun).order_by(IngestRun.id)))
        uow.session.expunge_all()
    return found


def rejects_of(result: IngestResult) -> dict[str, list[dict[str, str]]]:
    """Every reject file of a run, by table."""
    if result.reject_dir is None:
        return {}
    return {p.stem: read_rejects(p) for p in sorted(Path(result.reject_dir).glob("*.csv"))}


def where(rows: list[dict[str, str]]) -> list[tuple[str, int, str]]:
    return [(r["_file"], int(r["_row"]), r["_reasons"]) for r in rows]


#: For tests of file formats, where the database plays no part.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class TestCleanExtract:
    def test_loads_every_row(self, container: Container, ingest: Ingest, extract_dir: Path) -> None:
        self.check_complete_load(container, ingest(extract_dir))

    @sqlite_only
    @pytest.mark.parametrize("fmt", ["parquet", "xlsx", "workbook"])
    def test_loads_every_format(self, fmt: str, container: Container, ingest: Ingest, tmp_path: Path) -> None:
        self.check_complete_load(container, ingest(write_extract(tmp_path / fmt, fmt)))

    def check_complete_load(self, container: Container, result: IngestResult) -> None:
        assert result.rejected == 0
        assert result.reject_dir is None
        assert {name: t.loaded for name, t in result.tables.items()} == FULL
        assert table_counts(lake=container.lake_dir) == FULL
        assert db_counts(container) == OPERATIONAL_COUNTS
        [run] = runs(container)
        assert (run.status, run.rows_loaded, run.rows_rejected, run.error) == (
            RunStatus.COMPLETED,
            59,
            0,
            None,
        )
        assert run.finished_at == container.clock.now()

    @sqlite_only
    def test_every_format_gives_the_same_rows_at_rest(self, ingest: Ingest, tmp_path: Path) -> None:
        lakes = {}
        for fmt in ("csv", "parquet", "xlsx"):
            lakes[fmt] = tmp_path / f"lake-{fmt}"
            ingest(write_extract(tmp_path / fmt, fmt), lake=lakes[fmt])
        for table in TABLES:
            frames = {
                fmt: scan(lake, table).collect().drop("_file", "_row", "_batch").sort(lake_keys(table.name))
                for fmt, lake in lakes.items()
            }
            assert frames["parquet"].equals(frames["csv"]), table.name
            assert frames["xlsx"].equals(frames["csv"]), table.name

    def test_values_at_rest(self, container: Container, ingest: Ingest, extract_dir: Path) -> None:
        ingest(extract_dir)
        flows = lake_table(container, "account_flows")
        first = flows.row(0, named=True)
        assert (first["account_id"], first["month"], first["inflow"], first["outflow"]) == (
            "A0001",
            date(2025, 4, 1),
            850_000,
            720_050,
        )
        loans = lake_table(container, "loans")
        assert loans["annual_rate"].to_list() == [4_350_000, 5_125_000]
        assert loans["principal"].to_list() == [5_000_000, 2_000_000]

    def test_lineage_columns(self, container: Container, ingest: Ingest, extract_dir: Path) -> None:
        result = ingest(extract_dir)
        customers = lake_table(container, "customers")
        assert customers["_file"].unique().to_list() == ["customers.csv"]
        assert customers["_row"].to_list() == list(range(2, 10))
        assert customers["_batch"].unique().to_list() == [result.run_id]

    def test_customers_are_found_by_id_number(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        ingest(extract_dir)
        wang = bank_extract()["customers"][1]
        with container.uow() as uow:
            found = find_customer_by_id_number(
                uow, vault=container.vault, id_number=wang["id_number"].lower()
            )
            missing = find_customer_by_id_number(
                uow, vault=container.vault, id_number=idcard.make("330521", date(1990, 1, 1), 1)
            )
        assert (found, missing) == ("C0002", None)

    def test_personal_data_in_the_database_decrypts(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        ingest(extract_dir)
        [zhang] = [r for r in db_rows(container, "customers") if r["customer_id"] == "C0001"]
        assert container.vault.decrypt(zhang["name_enc"]) == "张伟"
        assert container.vault.decrypt(zhang["phone_enc"]) == "13812345678"
        assert zhang["phone_token"] == container.vault.token("13812345678", kind="phone")
        assert zhang["birth_date"] == date(1980, 5, 17)
        assert zhang["marketing_consent"] is True

    def test_file_log(self, container: Container, ingest: Ingest, extract_dir: Path) -> None:
        result = ingest(extract_dir)
        log = file_log(container, result.run_id)
        assert set(log) == {f"{t.name}.csv" for t in TABLES}
        customers = log["customers.csv"]
        assert (customers.status, customers.rows_read, customers.rows_loaded, customers.rows_rejected) == (
            FileStatus.LOADED,
            8,
            8,
            0,
        )
        assert customers.sha256 == hashlib.sha256((extract_dir / "customers.csv").read_bytes()).hexdigest()

    def test_files_that_are_not_part_of_the_contract_are_reported(
        self, ingest: Ingest, extract_dir: Path
    ) -> None:
        (extract_dir / "readme.txt").write_text("extract of 2025-06-30")
        (extract_dir / "notes.csv").write_text("a,b\n1,2\n")
        result = ingest(extract_dir)
        assert result.ignored == ["notes.csv: not a contract table", "readme.txt: not a contract table"]
        assert result.loaded == 59

    def test_an_extracts_subfolder(self, container: Container, ingest: Ingest, tmp_path: Path) -> None:
        write_extract(tmp_path / "delivery" / "extracts")
        assert ingest(tmp_path / "delivery").loaded == 59


def corrupt(directory: Path) -> Path:
    """Spoil a copy of the factory extract; the expected rejects are in :data:`BAD`."""
    edit_csv(directory / "customers.csv", _bad_customers)
    edit_csv(directory / "deposit_accounts.csv", _bad_accounts)
    edit_csv(directory / "account_flows.csv", lambda rows: rows[1].update(inflow="abc"))
    edit_csv(directory / "loans.csv", lambda rows: rows[1].update(principal="20k"))
    edit_csv(directory / "bureau_reports.csv", lambda rows: [*rows, dict(rows[0])])
    return directory


def _bad_customers(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    rows[6]["phone"] = "1381234"  # C0007: not a mobile number
    id_number = rows[7]["id_number"]  # C0008: wrong check character
    rows[7]["id_number"] = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    extra = dict(rows[0], customer_id="C0009", branch_id="B09")  # unknown branch
    extra["id_number"] = idcard.make("330521", date(1980, 5, 17), 13)
    extra["phone"] = "13800000009"
    return [*rows, extra]


def _bad_accounts(rows: list[dict[str, str]]) -> None:
    rows[8]["closed_date"] = "2019-12-31"  # A0009 opened 2020-01-15: closed before it opened


def _expected_bad() -> dict[str, list[tuple[str, int, str]]]:
    ids = bank_extract()["customers"][7]["id_number"]
    wrong = "0" if ids[17] != "0" else "1"
    return {
        "customers": [
            ("customers.csv", 8, "phone: not an 11-digit mainland mobile number ('1381234')"),
            ("customers.csv", 9, f"id_number: check character is {wrong}, expected {ids[17]}"),
            ("customers.csv", 10, "branch_id: 'B09' not found in branches"),
        ],
        "deposit_accounts": [
            ("deposit_accounts.csv", 8, "customer_id: 'C0007' not found in customers"),
            ("deposit_accounts.csv", 9, "customer_id: 'C0008' not found in customers"),
            (
                "deposit_accounts.csv",
                10,
                "rule closed_after_opened failed: closed_date, when present, is on or after opened_date",
            ),
        ],
        "account_flows": [
            ("account_flows.csv", 3, "inflow: not an amount in yuan with at most 2 decimals ('abc')"),
        ],
        "loans": [("loans.csv", 3, "principal: not an amount in yuan with at most 2 decimals ('20k')")],
        "bureau_reports": [
            (
                "bureau_reports.csv",
                row,
                "duplicate key (customer_id, report_date) C0001/2025-01-10: appears 2 times in this load",
            )
            for row in (2, 6)
        ],
    }


class TestCorruptedExtract:
    @pytest.fixture
    def result(self, ingest: Ingest, extract_dir: Path, tmp_path: Path) -> IngestResult:
        return ingest(corrupt(copy_extract(extract_dir, tmp_path / "corrupted")))

    def test_reject_files_list_exactly_the_bad_rows(self, result: IngestResult) -> None:
        assert {table: where(rows) for table, rows in rejects_of(result).items()} == _expected_bad()

    def test_only_the_good_rows_are_loaded(self, container: Container, result: IngestResult) -> None:
        bad = {table: len(rows) for table, rows in _expected_bad().items()}
        expected = {name: n - bad.get(name, 0) for name, n in FULL.items()}
        expected["customers"] = 6  # 8 sent plus C0009, less three bad ones
        expected["bureau_reports"] = FULL["bureau_reports"] - 1  # one of five rows sent was a repeat
        assert {name: t.loaded for name, t in result.tables.items()} == expected
        assert table_counts(lake=container.lake_dir) == expected
        assert result.rejected == 10
        assert lake_table(container, "customers")["customer_id"].to_list() == [
            f"C000{n}" for n in range(1, 7)
        ]
        assert [r["customer_id"] for r in db_rows(container, "customers")] == [
            f"C000{n}" for n in range(1, 7)
        ]
        assert "A0009" not in lake_table(container, "deposit_accounts")["account_id"].to_list()

    def test_reject_files_keep_the_row_as_sent(self, result: IngestResult) -> None:
        customers = rejects_of(result)["customers"]
        assert list(customers[0])[:3] == ["_file", "_row", "_reasons"]
        assert list(customers[0])[3:] == list(BY_NAME["customers"].column_names)
        assert customers[0]["customer_id"] == "C0007"
        assert customers[0]["phone"] == "1381234"
        assert customers[0]["name"] == "赵军"
        reject_file = Path(result.reject_dir or "") / "customers.csv"
        assert reject_file.read_bytes().startswith("\ufeff_file,_row,_reasons".encode())

    def test_counts_per_file_and_summary(self, container: Container, result: IngestResult) -> None:
        log = file_log(container, result.run_id)
        customers = log["customers.csv"]
        assert (customers.rows_read, customers.rows_loaded, customers.rows_rejected) == (9, 6, 3)
        summary = json.loads((Path(result.reject_dir or "") / "summary.json").read_text())
        assert summary["rejected"] == 10
        assert summary["tables"]["customers"]["reject_file"].endswith("customers.csv")
        [run] = runs(container)
        assert (run.rows_loaded, run.rows_rejected, run.reject_dir) == (
            result.loaded,
            10,
            result.reject_dir,
        )
        assert result.reject_dir == str(container.reject_dir / f"run-{result.run_id:08d}")


class TestUnusableSources:
    def nothing_loaded(self, container: Container) -> None:
        assert lake_files(container.lake_dir) == {}
        assert db_counts(container) == dict.fromkeys(OPERATIONAL, 0)
        assert runs(container) == []

    def test_missing_required_column(self, container: Container, ingest: Ingest, extract_dir: Path) -> None:
        drop_column(extract_dir / "customers.csv", "phone")
        with pytest.raises(SourceError) as caught:
            ingest(extract_dir)
        assert caught.value.details["problems"] == [
            f"{extract_dir / 'customers.csv'}: missing required column(s) phone"
        ]
        assert "nothing was loaded" in caught.value.message
        self.nothing_loaded(container)

    def test_a_missing_optional_column_is_fine(self, ingest: Ingest, extract_dir: Path) -> None:
        drop_column(extract_dir / "customers.csv", "education")
        assert ingest(extract_dir).tables["customers"].loaded == 8

    def test_unreadable_file(self, container: Container, ingest: Ingest, extract_dir: Path) -> None:
        (extract_dir / "loans.csv").unlink()
        (extract_dir / "loans.parquet").write_bytes(b"this is not parquet at all")
        with pytest.raises(SourceError) as caught:
            ingest(extract_dir)
        [problem] = caught.value.details["problems"]
        assert problem.startswith(f"{extract_dir / 'loans.parquet'}: cannot be read")
        self.nothing_loaded(container)

    def test_every_problem_is_named_at_once(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        drop_column(extract_dir / "staff.csv", "role")
        drop_column(extract_dir / "loans.csv", "principal")
        (extract_dir / "devices.csv").write_text("")
        with pytest.raises(SourceError) as caught:
            ingest(extract_dir)
        problems = caught.value.details["problems"]
        assert problems == [
            f"{extract_dir / 'devices.csv'}: the file is empty (no header row)",
            f"{extract_dir / 'loans.csv'}: missing required column(s) principal",
            f"{extract_dir / 'staff.csv'}: missing required column(s) role",
        ]
        assert all(p in caught.value.message for p in problems)
        self.nothing_loaded(container)

    def test_repeated_and_unnamed_header_columns(self, ingest: Ingest, tmp_path: Path) -> None:
        path = tmp_path / "x" / "branches.csv"
        path.parent.mkdir()
        path.write_text(
            "branch_id,branch_name,,region_code,lat,lat,lon,opened_date\nB01,a,,330521,1,1,1,2000-01-01\n"
        )
        with pytest.raises(SourceError) as caught:
            ingest(path.parent)
        assert caught.value.details["problems"] == [
            f"{path}: header has unnamed columns at positions [3]",
            f"{path}: header repeats columns ['lat']",
        ]

    def test_missing_or_empty_directory(self, ingest: Ingest, tmp_path: Path) -> None:
        with pytest.raises(SourceError, match="does not exist"):
            ingest(tmp_path / "nowhere")
        (tmp_path / "empty").mkdir()
        with pytest.raises(SourceError, match="no extract files"):
            ingest(tmp_path / "empty")


def _excel(path: Path, rows: list[list[Any]], merges: tuple[str, ...] = ()) -> Path:
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    for row in rows:
        ws.append(row)
    for rng in merges:
        ws.merge_cells(rng)
    wb.save(path)
    return path


def _rewrite_sheet(path: Path, old: str, new: str) -> None:
    """Replace text in the first worksheet's XML, as another spreadsheet program would write it."""
    member = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(path) as zf:
        parts = {info: zf.read(info.filename) for info in zf.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in parts.items():
            if info.filename == member:
                assert old.encode() in data
                data = data.replace(old.encode(), new.encode())
            zf.writestr(info, data)


def _customer_cells(extract: Extract) -> list[list[Any]]:
    names = BY_NAME["customers"].column_names
    return [list(names), *([row[c] for c in names] for row in extract["customers"])]


@sqlite_only
class TestExcel:
    @pytest.fixture
    def base(self, tmp_path: Path) -> Path:
        tables = bank_extract()
        return write_extract(
            tmp_path / "base", "xlsx", {"branches": tables["branches"], "staff": tables["staff"]}
        )

    def test_title_row_above_the_header(self, container: Container, ingest: Ingest, base: Path) -> None:
        cells = _customer_cells(bank_extract())
        cells[2][BY_NAME["customers"].column_names.index("segment")] = "unknown"  # C0002, row 4 of the sheet
        _excel(base / "customers.xlsx", [["德清农商行 客户清单 2025-06-30"], *cells], merges=("A1:Q1",))
        result = ingest(base)
        assert result.tables["customers"].loaded == 7
        assert where(rejects_of(result)["customers"]) == [
            (
                "customers.xlsx",
                4,
                "segment: unknown code 'unknown' (allowed: farmer, merchant, salaried, other)",
            )
        ]
        assert lake_table(container, "customers")["_row"].to_list()[:2] == [3, 5]

    def test_merged_header_cells_are_named(self, container: Container, ingest: Ingest, base: Path) -> None:
        path = _excel(base / "customers.xlsx", _customer_cells(bank_extract()), merges=("B1:C1",))
        with pytest.raises(SourceError) as caught:
            ingest(base)
        [problem] = caught.value.details["problems"]
        assert problem.startswith(f"{path}: header cells B1:C1 are merged")
        assert lake_files(container.lake_dir) == {}

    def test_numbers_as_excel_keeps_them(self, container: Container, ingest: Ingest, base: Path) -> None:
        tables = bank_extract()
        tables["customers"][0]["phone"] = 13812345678  # typed into a number cell
        write_extract(base, "xlsx", {"customers": tables["customers"]})
        flows = tables["account_flows"][:1]
        flows[0].update(inflow=0.3, outflow=1234.56, payroll_in=0.3, acquiring_in=0.0, subsidy_in=0.0)
        write_extract(base, "xlsx", {"deposit_accounts": tables["deposit_accounts"], "account_flows": flows})
        # What Excel itself writes for a cell computed as =0.1+0.2 (shown as 0.30).
        _rewrite_sheet(base / "account_flows.xlsx", "<v>0.3</v>", "<v>0.30000000000000004</v>")
        result = ingest(base)
        assert result.rejected == 0
        [flow] = lake_table(container, "account_flows").to_dicts()
        assert (flow["inflow"], flow["outflow"], flow["payroll_in"]) == (30, 123456, 30)
        zhang = lake_table(container, "customers").row(0, named=True)
        assert zhang["phone_token"] == container.vault.token("13812345678", kind="phone")


def _write_gbk(
    path: Path, table: str, rows: list[dict[str, Any]], *, final_newline: bool = True, pad: str = ""
) -> Path:
    names = BY_NAME[table].column_names
    lines = [",".join(names)]
    for row in rows:
        lines.append(",".join(text_of(row[c]) for c in names))
    if pad:
        lines[1] = lines[1].replace("德清县城支行", "德清县城支行" + pad, 1)
    text = "\n".join(lines) + ("\n" if final_newline else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("gbk"))
    return path


def _cuts_a_character(block: bytes) -> bool:
    """Whether ``block`` ends with the first byte of a two-byte GBK character."""
    try:
        block.decode("gbk")
    except UnicodeDecodeError:
        block[:-1].decode("gbk")
        return True
    return False


@sqlite_only
class TestEncoding:
    def test_gbk_csv(self, container: Container, ingest: Ingest, tmp_path: Path) -> None:
        tables = bank_extract()
        for table in ("branches", "staff", "customers"):
            _write_gbk(tmp_path / "gbk" / f"{table}.csv", table, tables[table])
        result = ingest(tmp_path / "gbk")
        assert result.rejected == 0
        assert [r["branch_name"] for r in db_rows(container, "branches")] == ["德清县城支行", "新市分理处"]
        names = [container.vault.decrypt(r["name_enc"]) for r in db_rows(container, "customers")]
        assert names == [c["name"] for c in tables["customers"]]

    def test_gbk_csv_whose_only_chinese_ends_the_file(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        farmer = dict(bank_extract()["farmland"][0], cooperative_member="是")
        (extract_dir / "farmland.csv").unlink()
        _write_gbk(extract_dir / "farmland.csv", "farmland", [farmer], final_newline=False)
        result = ingest(extract_dir)
        assert result.tables["farmland"].loaded == 1
        assert lake_table(container, "farmland")["cooperative_member"].to_list() == [True]

    def test_large_gbk_csv_whose_first_block_ends_inside_a_character(
        self, ingest: Ingest, tmp_path: Path
    ) -> None:
        branch = bank_extract()["branches"][0]
        rows = [
            dict(branch, branch_id=f"B{n:04d}", branch_name=f"德清县城支行第{n}营业部") for n in range(1400)
        ]
        path = tmp_path / "gbk" / "branches.csv"
        block = 1 << 16
        for pad in ("", "x", "xx", "xxx"):
            data = _write_gbk(path, "branches", rows, pad=pad).read_bytes()
            if _cuts_a_character(data[:block]):
                break
        else:
            pytest.fail("could not place a character across the 64 KiB boundary")
        assert ingest(path.parent).tables["branches"].loaded == 1400

    def test_utf8_with_byte_order_mark(self, ingest: Ingest, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "bom" / "branches.csv", BY_NAME["branches"], bank_extract()["branches"])
        path.write_bytes("\ufeff".encode() + path.read_bytes())
        assert ingest(path.parent).tables["branches"].loaded == 2


class TestRerun:
    def test_same_directory_again_changes_nothing(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        first = ingest(extract_dir)
        lake_before = lake_files(container.lake_dir)
        db_before = {name: db_rows(container, name) for name in OPERATIONAL}
        counts_before = table_counts(lake=container.lake_dir)
        container.clock.advance(days=1)

        again = ingest(extract_dir)

        assert again.run_id != first.run_id
        assert again.loaded == again.rejected == 0
        assert all(t.unchanged_files == t.files == 1 for t in again.tables.values())
        assert lake_files(container.lake_dir) == lake_before
        assert {name: db_rows(container, name) for name in OPERATIONAL} == db_before
        assert table_counts(lake=container.lake_dir) == counts_before
        assert {f.status for f in file_log(container, again.run_id).values()} == {FileStatus.UNCHANGED}

    def test_a_changed_row_replaces_the_earlier_one(
        self, container: Container, ingest: Ingest, extract_dir: Path, tmp_path: Path
    ) -> None:
        first = ingest(extract_dir)
        later = copy_extract(extract_dir, tmp_path / "extract-2025-07-31")
        edit_csv(
            later / "customers.csv", lambda rows: rows[1].update(segment="salaried", phone="13900001111")
        )
        edit_csv(later / "contacts.csv", lambda rows: rows[0].update(relation="friend"))
        container.clock.advance(days=31)

        second = ingest(later)

        customers = second.tables["customers"]
        assert (customers.loaded, customers.inserted, customers.updated) == (8, 0, 1)
        assert second.tables["branches"].unchanged_files == 1
        wang = lake_table(container, "customers").filter(pl.col("customer_id") == "C0002").row(0, named=True)
        assert (wang["segment"], wang["_batch"]) == ("salaried", second.run_id)
        assert wang["phone_token"] == container.vault.token("13900001111", kind="phone")
        assert table_counts(lake=container.lake_dir) == FULL
        by_id = {r["customer_id"]: r for r in db_rows(container, "customers")}
        assert (by_id["C0002"]["segment"], by_id["C0002"]["batch_id"]) == ("salaried", second.run_id)
        assert container.vault.decrypt(by_id["C0002"]["phone_enc"]) == "13900001111"
        assert by_id["C0001"]["batch_id"] == first.run_id
        relations = lake_table(container, "contacts")["relation"].to_list()
        assert sorted(relations) == ["friend", "parent"]

    def test_a_run_that_fails_half_way_leaves_nothing_half_done(
        self, container: Container, ingest: Ingest, extract_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        publish = lake_mod.publish

        def failing_publish(lake: Path, table: str, run_id: int) -> int:
            if table == "customers":
                raise OSError("disk full")
            return publish(lake, table, run_id)

        monkeypatch.setattr(lake_mod, "publish", failing_publish)
        with pytest.raises(OSError, match="disk full"):
            ingest(extract_dir)
        assert not list(container.lake_dir.rglob("_staging-*"))
        assert lake_mod.exists(container.lake_dir, "branches")
        assert not lake_mod.exists(container.lake_dir, "customers")
        with pytest.raises(FileNotFoundError):
            scan(container.lake_dir, "customers")
        [failed] = runs(container)
        assert (failed.status, failed.error) == (RunStatus.FAILED, "OSError: disk full")

        monkeypatch.setattr(lake_mod, "publish", publish)
        again = ingest(extract_dir)

        assert again.rejected == 0
        assert again.tables["branches"].unchanged_files == 1
        assert again.tables["customers"].loaded == 8
        assert table_counts(lake=container.lake_dir) == FULL
        assert db_counts(container) == OPERATIONAL_COUNTS
        assert [r.status for r in runs(container)] == [RunStatus.FAILED, RunStatus.COMPLETED]


class TestDuplicatesAcrossBatchesAndFiles:
    def test_large_table_in_small_batches(self, container: Container, ingest: Ingest, tmp_path: Path) -> None:
        tables = bank_extract()
        flows = tables["account_flows"]
        flows.append(dict(flows[0], inflow=flows[0]["inflow"] + 1))  # record 10 repeats record 1's key
        directory = write_extract(tmp_path / "parts", "parquet", tables)
        result = ingest(directory, batch_rows=3)
        assert where(rejects_of(result)["account_flows"]) == [
            (
                "account_flows.parquet",
                row,
                "duplicate key (account_id, month) A0001/2025-04-01: appears in more than one batch of this load",
            )
            for row in (1, 10)
        ]
        assert result.tables["account_flows"].loaded == 8
        lake = lake_table(container, "account_flows")
        assert lake.height == 8
        assert (
            lake.filter((pl.col("account_id") == "A0001") & (pl.col("month") == date(2025, 4, 1))).height == 0
        )
        assert rejects_of(result)["account_flows"][0]["inflow"] == "8500.00"

    def test_part_files_of_a_large_table(self, container: Container, ingest: Ingest, tmp_path: Path) -> None:
        tables = bank_extract()
        flows = tables.pop("account_flows")
        directory = write_extract(tmp_path / "parts", "csv", tables)
        write_csv(directory / "account_flows" / "part-1.csv", BY_NAME["account_flows"], flows[:5])
        write_csv(directory / "account_flows" / "part-2.csv", BY_NAME["account_flows"], flows[4:])
        result = ingest(directory)
        assert sorted(where(rejects_of(result)["account_flows"])) == [
            (
                name,
                row,
                "duplicate key (account_id, month) A0002/2025-05-01: appears in more than one batch of this load",
            )
            for name, row in (("part-1.csv", 6), ("part-2.csv", 2))
        ]
        assert result.tables["account_flows"].files == 2
        assert table_counts(lake=container.lake_dir)["account_flows"] == 8

    def test_small_table_split_over_files(self, container: Container, ingest: Ingest, tmp_path: Path) -> None:
        tables = bank_extract()
        customers = tables.pop("customers")
        directory = write_extract(tmp_path / "parts", "csv", tables)
        twin = dict(customers[0], customer_id="C0010", phone="13800000010")  # C0001's ID number again
        write_csv(directory / "customers" / "a.csv", BY_NAME["customers"], customers[:5])
        write_csv(directory / "customers" / "b.csv", BY_NAME["customers"], [*customers[4:], twin])
        result = ingest(directory)
        twin_id, c5_id = customers[0]["id_number"], customers[4]["id_number"]
        again = "appears in more than one file of this load"
        c5 = (
            f"duplicate key (customer_id) C0005: {again}; duplicate unique value (id_number) {c5_id}: {again}"
        )
        assert sorted(where(rejects_of(result)["customers"])) == [
            ("a.csv", 2, f"duplicate unique value (id_number) {twin_id}: {again}"),
            ("a.csv", 6, c5),
            ("b.csv", 2, c5),
            ("b.csv", 6, f"duplicate unique value (id_number) {twin_id}: {again}"),
        ]
        assert [r["customer_id"] for r in db_rows(container, "customers")] == [
            "C0002",
            "C0003",
            "C0004",
            "C0006",
            "C0007",
            "C0008",
        ]
        log = file_log(container, result.run_id)
        assert (log["a.csv"].rows_read, log["a.csv"].rows_rejected) == (5, 2)
        assert (log["b.csv"].rows_read, log["b.csv"].rows_rejected) == (5, 2)


class TestPersonalData:
    SECRETS = ("13812345678", "张伟", "浙江省湖州市德清县武康街道1号", "13700000009", "13900000001")

    def test_nothing_personal_in_clear_in_the_lake(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        ingest(extract_dir)
        secrets = (*self.SECRETS, bank_extract()["customers"][0]["id_number"])
        for name, data in lake_files(container.lake_dir).items():
            assert not any(s.encode() in data for s in secrets), name
        for table in TABLES:
            frame = scan(container.lake_dir, table).collect()
            cells = {str(v) for col in frame.columns for v in frame[col].to_list()}
            assert not cells & set(secrets), table.name
            assert not {c.name for c in table.columns if c.pii} & set(frame.columns), table.name

    def test_nothing_personal_in_clear_in_the_database(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        ingest(extract_dir)
        secrets = (*self.SECRETS, bank_extract()["customers"][0]["id_number"])
        with container.engine.connect() as conn:
            for table in migrate.metadata().sorted_tables:
                text = repr(conn.execute(select(table)).all())
                assert not any(s in text for s in secrets), table.name
        if container.engine.dialect.name == "sqlite":
            container.close()
            database = Path(container.engine.url.database or "")
            for path in database.parent.glob(f"{database.name}*"):
                data = path.read_bytes()
                assert not any(s.encode() in data for s in secrets), path.name

    def test_the_content_hash_needs_the_key(self) -> None:
        spec = BY_NAME["negative_list"]
        row = {k: text_of(v) for k, v in bank_extract()["negative_list"][0].items()}
        good = pl.DataFrame([row]).with_columns(pl.col("listed_date").str.to_date())

        def hashed(key: bytes) -> str:
            [db_row] = ingest_mod.to_db_rows(spec, good, vault=PiiVault(key), run_id=1, now=None)
            return str(db_row["row_hash"])

        assert hashed(bytes(32)) == hashed(bytes(32))  # stable: a re-run writes nothing
        assert hashed(bytes(32)) != hashed(bytes(range(32)))
        unkeyed = hashlib.blake2b("\x1f".join(row.values()).encode(), digest_size=16).hexdigest()
        assert hashed(bytes(32)) != unkeyed


class TestAcrossLoads:
    def test_an_id_number_already_held_by_another_customer_is_rejected(
        self, container: Container, ingest: Ingest, extract_dir: Path, tmp_path: Path
    ) -> None:
        ingest(extract_dir)
        later = copy_extract(extract_dir, tmp_path / "extract-2025-07-31")
        taken: dict[str, str] = {}

        def add_impostor(rows: list[dict[str, str]]) -> list[dict[str, str]]:
            impostor = dict(rows[0])
            taken.update(id_number=impostor["id_number"], owner=impostor["customer_id"])
            impostor["customer_id"] = "C9999"
            return [*rows[1:], impostor]

        edit_csv(later / "customers.csv", add_impostor)

        result = ingest(later)

        rows = rejects_of(result)["customers"]
        assert [r["customer_id"] for r in rows] == ["C9999"]
        assert (
            rows[0]["_reasons"]
            == f"id_number: already belongs to customer_id {taken['owner']} from an earlier load"
        )
        ids = {r["customer_id"] for r in db_rows(container, "customers")}
        assert "C9999" not in ids and taken["owner"] in ids


class TestIngestLock:
    def test_a_second_ingestion_into_the_same_lake_is_refused_while_one_runs(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        from creditfactory.contract.lake import LakeBusy, ingest_lock

        with ingest_lock(container.lake_dir):
            lock = container.lake_dir / ".ingest.lock"
            lock.write_text("1")  # process 1 (init) is alive: someone else holds the lake
            with pytest.raises(LakeBusy, match="process 1"):
                ingest(extract_dir)
            lock.write_text(str(os.getpid()))
        assert not (container.lake_dir / ".ingest.lock").exists()

    def test_a_lock_left_by_a_dead_process_is_taken_over(
        self, container: Container, ingest: Ingest, extract_dir: Path
    ) -> None:
        container.lake_dir.mkdir(parents=True, exist_ok=True)
        (container.lake_dir / ".ingest.lock").write_text("999999999")
        assert ingest(extract_dir).rejected == 0
        assert not (container.lake_dir / ".ingest.lock").exists()


class TestLoadDate:
    def test_the_load_date_is_the_banks_day_not_utcs(self, container: Container, extract_dir: Path) -> None:
        # 2025-07-01T17:00Z is already 2 July in Beijing: a row dated 2 July is not in the future.
        container.clock.set(datetime(2025, 7, 1, 17, 0, tzinfo=UTC))
        edit_csv(extract_dir / "branches.csv", lambda rows: rows[0].update(opened_date="2025-07-02"))
        settings = IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir)
        result = service.ingest_directory(
            directory=extract_dir,
            uow_factory=container.sessions,
            clock=container.clock,
            vault=container.vault,
            settings=settings,
        )
        assert result.tables["branches"].rejected == 0
        utc_day = IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir, timezone="UTC")
        edit_csv(extract_dir / "branches.csv", lambda rows: rows[0].update(branch_name="renamed"))
        again = service.ingest_directory(
            directory=extract_dir,
            uow_factory=container.sessions,
            clock=container.clock,
            vault=container.vault,
            settings=utc_day,
        )
        assert again.tables["branches"].rejected == 1
