"""The Excel hand-over template: export a version, import a hand-approved list row by row."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from creditfactory import whitelist
from creditfactory.bootstrap import Container
from creditfactory.security import idcard
from creditfactory.security.roles import Principal
from creditfactory.whitelist import excel, handover
from creditfactory.whitelist import service as wl
from tests.factories import bank_extract
from tests.whitelist.conftest import ON, Publish, lines

CUSTOMERS = {c["customer_id"]: c for c in bank_extract()["customers"]}
HEADER = [
    "客户号 customer_id",
    "证件号码 id_number",
    "姓名 name",
    "手机号码 phone",
    "额度 limit",
    "年利率 annual_rate",
    "等级 grade",
    "有效期至 expiry_date",
    "备注 note",
]


def workbook(
    path: Path, rows: list[list[Any]], *, header: list[str] = HEADER, title: str | None = None
) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = excel.SHEET
    if title:
        sheet.append([title])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def row_for(cid: str, limit: Any = "50000", rate: Any = "0.0435", **changes: Any) -> list[Any]:
    c = CUSTOMERS[cid]
    values = {
        "customer_id": cid,
        "id_number": c["id_number"],
        "name": c["name"],
        "phone": c["phone"],
        "limit": limit,
        "annual_rate": rate,
        "grade": "A",
        "expiry_date": "2025-09-30",
        "note": "approved by S002",
    }
    values.update(changes)
    return list(values.values())


def run_import(container: Container, path: Path, **kw: Any) -> handover.ImportResult:
    return handover.import_list(
        container.uow,
        path=path,
        name=kw.pop("name", "manual"),
        lake=container.lake_dir,
        reject_dir=container.reject_dir,
        vault=container.vault,
        bounds=kw.pop("bounds", whitelist.ImportBounds()),
        business_date=ON,
        expiry_days=90,
        imported_by="S002",
        now=container.clock.now(),
    )


def rejects(result: handover.ImportResult) -> dict[int, str]:
    assert result.reject_file is not None
    sheet = load_workbook(result.reject_file)[excel.REJECT_SHEET]
    return {int(r[0]): r[1] for r in sheet.iter_rows(min_row=2, values_only=True)}


class TestImport:
    def test_good_rows_publish_a_version_and_bad_rows_come_back_with_reasons(
        self, bank: Container, tmp_path: Path
    ) -> None:
        c1 = CUSTOMERS["C0001"]
        bad_check = c1["id_number"][:-1] + ("0" if c1["id_number"][-1] != "0" else "1")
        path = workbook(
            tmp_path / "list.xlsx",
            [
                row_for("C0001"),  # row 2: good
                row_for("C0002", limit="12345.678"),  # row 3: too many places
                row_for("C0003", rate="0.36"),  # row 4: rate out of bounds
                row_for("C0004", id_number=bad_check),  # row 5: check character
                row_for("C0005", phone="12345"),  # row 6: phone format
                row_for("C0006", name="某某某"),  # row 7: name differs
                row_for("C0007", customer_id="C0008"),  # row 8: id number is C0007's
                row_for("C0008", limit=500),  # row 9: limit below the minimum
                [
                    None,
                    idcard.make("110105", date(1949, 12, 31), 2),
                    None,
                    None,
                    10000,
                    0.05,
                    None,
                    None,
                    None,
                ],  # row 10: unknown person
                row_for("C0002", limit=20000, expiry_date="2024-01-01"),  # row 11: expired date
            ],
        )
        result = run_import(bank, path)
        assert (result.rows, result.accepted, result.rejected) == (10, 1, 9)
        got = rejects(result)
        assert "limit: 12345.678 has more than 2 decimal places" in got[3]
        assert "annual_rate: 0.36 is outside the product's bounds" in got[4]
        assert "id_number: check character" in got[5]
        assert got[6].startswith("phone: ")
        assert got[7] == "name: does not match the bank's record for this ID number"
        assert "customer_id: C0008 does not hold this ID number (the bank's record says C0007)" in got[8]
        assert "limit: 500 is outside the product's bounds 1000–300000" in got[9]
        assert got[10] == "id_number: no customer of the bank has this ID number"
        assert "expiry_date: 2024-01-01 is before the business date" in got[11]
        with bank.uow() as uow:
            offer = wl.current_offer(uow, customer_id="C0001", on=ON)
            assert (offer.limit, offer.annual_rate, offer.list_name) == (
                Decimal("50000.00"),
                Decimal("0.0435"),
                "manual",
            )

    def test_a_customer_on_two_rows_is_rejected_on_both(self, bank: Container, tmp_path: Path) -> None:
        path = workbook(
            tmp_path / "dup.xlsx", [row_for("C0001"), row_for("C0002"), row_for("C0001", limit=60000)]
        )
        result = run_import(bank, path)
        assert (result.accepted, result.rejected) == (1, 2)
        got = rejects(result)
        assert got[2] == got[4] == "customer_id: C0001 appears on rows 2, 4"

    def test_reimporting_the_same_file_changes_nothing(self, bank: Container, tmp_path: Path) -> None:
        path = workbook(tmp_path / "list.xlsx", [row_for("C0001"), row_for("C0002", limit=30000)])
        first = run_import(bank, path)
        again = run_import(bank, path)
        assert again.unchanged and again.version_id == first.version_id
        with bank.uow() as uow:
            assert len(wl.list_versions(uow)) == 1

    def test_an_id_number_typed_as_a_number_is_refused_not_guessed(
        self, bank: Container, tmp_path: Path
    ) -> None:
        number = int(CUSTOMERS["C0003"]["id_number"][:15])
        path = workbook(
            tmp_path / "num.xlsx", [row_for("C0001"), row_for("C0003", id_number=float(number) * 1000)]
        )
        result = run_import(bank, path)
        assert "format the column as text" in rejects(result)[3]

    def test_a_title_row_and_reordered_columns_are_fine(self, bank: Container, tmp_path: Path) -> None:
        header = ["额度", "证件号码", "年利率", "经办人 officer"]
        c = CUSTOMERS["C0004"]
        path = workbook(
            tmp_path / "t.xlsx",
            [[8000, c["id_number"], "4.35%", "S002"]],
            header=header,
            title="2025年7月名单",
        )
        result = run_import(bank, path)
        assert result.accepted == 1
        with bank.uow() as uow:
            offer = wl.current_offer(uow, customer_id="C0004", on=ON)
        assert offer.annual_rate == Decimal("0.0435") and offer.expiry_date == date(2025, 9, 29)

    def test_a_workbook_without_the_required_columns_names_them(
        self, bank: Container, tmp_path: Path
    ) -> None:
        path = workbook(tmp_path / "bad.xlsx", [["x", 1]], header=["证件号码 id_number", "姓名 name"])
        with pytest.raises(
            excel.TemplateError, match=r"bad.xlsx, sheet '名单 Whitelist'.*额度 limit, 年利率 annual_rate"
        ):
            run_import(bank, path)

    def test_a_file_that_is_not_a_workbook_is_a_clear_error(self, bank: Container, tmp_path: Path) -> None:
        path = tmp_path / "list.xlsx"
        path.write_text("customer_id,limit\n")
        with pytest.raises(excel.TemplateError, match="list.xlsx: not a readable .xlsx workbook"):
            run_import(bank, path)


class TestExport:
    def test_export_then_import_gives_the_same_offers(
        self, bank: Container, publish: Publish, tmp_path: Path
    ) -> None:
        v = publish(lines([("C0001", "eligible", "A", 50_000, 435), ("C0002", "eligible", "B", 30_000, 565)]))
        path = tmp_path / "out.xlsx"
        approver = Principal(id="S002", roles=frozenset({"risk_analyst", "approver"}))  # type: ignore[arg-type]
        with bank.uow() as uow:
            n = handover.export_version(
                uow,
                version_id=v.version_id,
                path=path,
                vault=bank.vault,
                principal=approver,
                now=bank.clock.now(),
            )
            uow.commit()
        assert n == 2
        sheet = load_workbook(path)[excel.SHEET]
        header = [cell.value for cell in sheet[1]]
        first = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
        assert first["证件号码 id_number"] == CUSTOMERS["C0001"]["id_number"]
        assert first["状态 status"] == "offered"
        result = run_import(bank, path, name="reissue")
        assert (result.accepted, result.rejected) == (2, 0)
        with bank.uow() as uow:
            offer = wl.current_offer(uow, customer_id="C0002", on=ON)
        assert (offer.list_name, offer.limit, offer.annual_rate) == (
            "reissue",
            Decimal("30000.00"),
            Decimal("0.0565"),
        )

    def test_a_role_without_personal_data_gets_masked_values_and_the_export_is_audited(
        self, bank: Container, publish: Publish, tmp_path: Path
    ) -> None:
        from creditfactory.security.audit import AccessRecord

        v = publish(lines([("C0001", "eligible", "A", 50_000, 435)]))
        analyst = Principal(id="S010", roles=frozenset({"risk_analyst"}))  # type: ignore[arg-type]
        with bank.uow() as uow:
            handover.export_version(
                uow,
                version_id=v.version_id,
                path=tmp_path / "m.xlsx",
                vault=bank.vault,
                principal=analyst,
                now=bank.clock.now(),
            )
            uow.commit()
            audit = uow.session.query(AccessRecord).filter(AccessRecord.action == "customer.export").one()
            assert (audit.principal_id, audit.unmasked, audit.subject_id) == (
                "S010",
                False,
                f"whitelist:v{v.version_id}",
            )
        sheet = load_workbook(tmp_path / "m.xlsx")[excel.SHEET]
        id_number = sheet.cell(row=2, column=2).value
        assert id_number != CUSTOMERS["C0001"]["id_number"] and "*" in id_number
