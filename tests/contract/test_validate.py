"""Row validation against the contract (pure: frames in, good rows and reasons out).

Each test starts from a valid row of the factory extract, spoils one value and reads the
reason back. Values arrive as text (CSV, Excel) or as native Parquet types.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from creditfactory.contract.tables import BY_NAME, TABLES
from creditfactory.contract.validate import Checked, validate
from creditfactory.security import idcard
from tests.factories import LOAD_DATE, bank_extract, text_of

EXTRACT = bank_extract()


def text_row(table: str, index: int = 0, **changes: Any) -> dict[str, Any]:
    """Row ``index`` of the factory table as a CSV would carry it, with ``changes`` applied."""
    row = {k: text_of(v) or None for k, v in EXTRACT[table][index].items()}
    row.update(changes)
    return row


def check(
    table: str,
    rows: list[dict[str, Any]],
    *,
    schema: dict[str, Any] | None = None,
    known_keys: dict[str, pl.Series] | None = None,
    check_duplicates: bool = True,
) -> Checked:
    spec = BY_NAME[table]
    names = list(dict.fromkeys(k for row in rows for k in row))
    types = {n: pl.String for n in names} | (schema or {})
    frame = pl.DataFrame([[row.get(n) for n in names] for row in rows], schema=types, orient="row")
    frame = frame.with_columns(
        pl.lit(f"{table}.csv").alias("_file"), pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("_row")
    )
    return validate(spec, frame, today=LOAD_DATE, known_keys=known_keys, check_duplicates=check_duplicates)


def reasons(checked: Checked) -> list[str]:
    return checked.rejects["_reasons"].to_list()


def only_reason(table: str, **changes: Any) -> str:
    """The reason a single spoiled row is rejected (and check that it is)."""
    checked = check(table, [text_row(table, **changes)])
    assert checked.good.height == 0, f"row was accepted: {changes}"
    [reason] = reasons(checked)
    return reason


def value(table: str, column: str, raw: Any, *, dtype: Any = pl.String, **changes: Any) -> Any:
    """The value at rest of an accepted cell."""
    checked = check(table, [text_row(table, **{column: raw}, **changes)], schema={column: dtype})
    assert reasons(checked) == []
    return checked.good[column].item()


class TestValidRows:
    @pytest.mark.parametrize("table", [t.name for t in TABLES])
    def test_every_factory_row_passes(self, table: str) -> None:
        rows = [text_row(table, i) for i in range(len(EXTRACT[table]))]
        checked = check(table, rows)
        assert reasons(checked) == []
        assert checked.good.height == len(rows)

    def test_good_rows_carry_file_row_and_every_column(self) -> None:
        checked = check("branches", [text_row("branches", 0), text_row("branches", 1)])
        assert checked.good.columns == ["_file", "_row", *BY_NAME["branches"].column_names]
        assert checked.good["_row"].to_list() == [2, 3]

    def test_optional_columns_may_be_absent_from_the_file(self) -> None:
        row = text_row("branches")
        del row["address"]
        checked = check("branches", [row])
        assert reasons(checked) == []
        assert checked.good["address"].item() is None


class TestRequired:
    def test_missing_value(self) -> None:
        assert only_reason("customers", phone=None) == "phone: required value is missing"

    def test_blank_text_counts_as_missing(self) -> None:
        assert only_reason("staff", name="   ") == "name: required value is missing"

    def test_optional_value_may_be_missing(self) -> None:
        assert value("customers", "manager_id", None) is None

    def test_all_reasons_of_a_row_are_listed(self) -> None:
        reason = only_reason("branches", branch_name=None, lat="north", opened_date="soon")
        assert reason.split("; ") == [
            "branch_name: required value is missing",
            "lat: not a number ('north')",
            "opened_date: not a date (YYYY-MM-DD) ('soon')",
        ]


class TestInt:
    @pytest.mark.parametrize(("raw", "dtype"), [("12", pl.String), (12, pl.Int64), (12.0, pl.Float64)])
    def test_whole_numbers(self, raw: Any, dtype: Any) -> None:
        assert value("loan_performance", "dpd", raw, dtype=dtype) == 12

    @pytest.mark.parametrize(
        ("raw", "dtype", "shown"), [("12.5", pl.String, "12.5"), (12.5, pl.Float64, "12.5")]
    )
    def test_fractions_are_refused(self, raw: Any, dtype: Any, shown: str) -> None:
        checked = check("loan_performance", [text_row("loan_performance", dpd=raw)], schema={"dpd": dtype})
        assert reasons(checked) == [f"dpd: not a whole number ('{shown}')"]

    def test_below_minimum(self) -> None:
        assert only_reason("loan_performance", dpd="-1") == "dpd: '-1' is below the minimum 0"


class TestFloat:
    def test_number(self) -> None:
        assert value("branches", "lat", "30.5") == 30.5
        assert value("branches", "lat", 30.5, dtype=pl.Float64) == 30.5

    def test_not_a_number(self) -> None:
        assert only_reason("branches", lat="north") == "lat: not a number ('north')"

    def test_range(self) -> None:
        assert only_reason("branches", lat="91") == "lat: '91' is above the maximum 90"
        assert only_reason("branches", lon="-180.5") == "lon: '-180.5' is below the minimum -180"


class TestAmount:
    @pytest.mark.parametrize(
        ("raw", "fen"),
        [
            ("8500.5", 850050),
            ("8500.50", 850050),
            ("8500", 850000),
            ("+0.01", 1),
            ("9999999999999999.99", 999999999999999999),
        ],
    )
    def test_text_becomes_fen(self, raw: str, fen: int) -> None:
        assert value("account_flows", "end_balance", raw) == fen

    @pytest.mark.parametrize("raw", ["8500.555", "1,000.00", "12e3", "¥100", "abc"])
    def test_text_that_is_not_an_amount(self, raw: str) -> None:
        assert (
            only_reason("account_flows", end_balance=raw)
            == f"end_balance: not an amount in yuan with at most 2 decimals ('{raw}')"
        )

    def test_below_minimum(self) -> None:
        assert (
            only_reason("account_flows", end_balance="-5.00") == "end_balance: '-5.00' is below the minimum 0"
        )
        assert only_reason("loans", principal="0.00") == "principal: '0.00' is below the minimum 0.01"

    def test_decimal_column(self) -> None:
        assert value("account_flows", "end_balance", Decimal("1.50"), dtype=pl.Decimal(18, 2)) == 150
        assert value("account_flows", "end_balance", Decimal("1.500"), dtype=pl.Decimal(18, 3)) == 150
        assert value("account_flows", "end_balance", Decimal("7.5"), dtype=pl.Decimal(10, 1)) == 750

    def test_decimal_with_too_many_places(self) -> None:
        checked = check(
            "account_flows",
            [text_row("account_flows", end_balance=Decimal("1.005"))],
            schema={"end_balance": pl.Decimal(18, 3)},
        )
        assert reasons(checked) == ["end_balance: not an amount in yuan with at most 2 decimals ('1.005')"]

    def test_integer_column_is_whole_yuan(self) -> None:
        assert value("account_flows", "end_balance", 7, dtype=pl.Int64) == 700

    @pytest.mark.parametrize(
        ("raw", "fen"), [(0.1 + 0.2, 30), (1234.56, 123456), (8500.0, 850000), (0.07, 7)]
    )
    def test_excel_style_floats_within_a_hair_of_a_fen(self, raw: float, fen: int) -> None:
        assert value("account_flows", "end_balance", raw, dtype=pl.Float64) == fen

    def test_float_with_a_fraction_of_a_fen(self) -> None:
        checked = check(
            "account_flows",
            [text_row("account_flows", end_balance=100.005)],
            schema={"end_balance": pl.Float64},
        )
        assert reasons(checked) == ["end_balance: not an amount in yuan with at most 2 decimals ('100.005')"]

    def test_rule_compares_amounts_not_text(self) -> None:
        # 900 + 200 > 1000 although "900.00" + "200.00" would sort below "1000.00" as text.
        reason = only_reason("account_flows", inflow="1000.00", payroll_in="900.00", acquiring_in="200.00")
        assert reason == (
            "rule inflow_covers_components failed: payroll_in + acquiring_in + subsidy_in does not exceed inflow"
        )


class TestRate:
    @pytest.mark.parametrize(
        ("raw", "dtype"),
        [("0.0435", pl.String), (Decimal("0.0435"), pl.Decimal(12, 8)), (0.0435, pl.Float64)],
    )
    def test_rate_at_scale_eight(self, raw: Any, dtype: Any) -> None:
        assert value("loans", "annual_rate", raw, dtype=dtype) == 4_350_000

    def test_the_maximum_itself_is_allowed(self) -> None:
        assert value("loans", "annual_rate", "0.36") == 36_000_000

    def test_too_many_places(self) -> None:
        assert (
            only_reason("loans", annual_rate="0.043500001")
            == "annual_rate: not a rate (a decimal fraction with at most 8 places) ('0.043500001')"
        )

    def test_above_maximum(self) -> None:
        assert only_reason("loans", annual_rate="4.35") == "annual_rate: '4.35' is above the maximum 0.36"


class TestDate:
    @pytest.mark.parametrize("raw", ["2025-06-30", "2025/06/30", "20250630", " 2025-06-30 "])
    def test_text_forms(self, raw: str) -> None:
        assert value("branches", "opened_date", raw) == date(2025, 6, 30)

    def test_native_dates_and_midnight_datetimes(self) -> None:
        assert value("branches", "opened_date", date(2025, 6, 30), dtype=pl.Date) == date(2025, 6, 30)
        assert value("branches", "opened_date", datetime(2025, 6, 30), dtype=pl.Datetime("us")) == date(
            2025, 6, 30
        )

    def test_datetime_with_a_time_of_day_is_not_a_date(self) -> None:
        checked = check(
            "branches",
            [text_row("branches", opened_date=datetime(2025, 6, 30, 10, 30))],
            schema={"opened_date": pl.Datetime("us")},
        )
        [reason] = reasons(checked)
        assert reason.startswith("opened_date: not a date (YYYY-MM-DD) ('2025-06-30 10:30")

    @pytest.mark.parametrize("raw", ["2025-06-31", "30/06/2025", "yesterday"])
    def test_not_a_date(self, raw: str) -> None:
        assert only_reason("branches", opened_date=raw) == f"opened_date: not a date (YYYY-MM-DD) ('{raw}')"

    def test_before_1900(self) -> None:
        assert only_reason("branches", opened_date="1899-12-31") == "opened_date: date before 1900-01-01"

    def test_after_the_load_date(self) -> None:
        assert (
            only_reason("branches", opened_date="2025-07-02")
            == "opened_date: date 2025-07-02 is after the load date 2025-07-01"
        )
        assert value("branches", "opened_date", "2025-07-01") == LOAD_DATE

    def test_future_allowed_where_declared(self) -> None:
        assert value("loans", "maturity_date", "2030-01-01") == date(2030, 1, 1)


class TestMonth:
    @pytest.mark.parametrize("raw", ["2025-06", "2025-06-01", "2025/06", "20250601"])
    def test_first_of_the_month(self, raw: str) -> None:
        assert value("account_flows", "month", raw) == date(2025, 6, 1)

    def test_another_day_of_the_month(self) -> None:
        assert (
            only_reason("account_flows", month="2025-06-15")
            == "month: a month must be given as its first day, got 2025-06-15"
        )

    def test_not_a_month(self) -> None:
        assert (
            only_reason("account_flows", month="2025-13")
            == "month: not a month (YYYY-MM or YYYY-MM-01) ('2025-13')"
        )


class TestBool:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("true", True),
            ("TRUE", True),
            ("Y", True),
            ("1", True),
            ("是", True),
            ("false", False),
            ("N", False),
            ("0", False),
            ("否", False),
            ("no", False),
        ],
    )
    def test_text_forms(self, raw: str, expected: bool) -> None:
        assert value("staff", "active", raw) is expected

    def test_native(self) -> None:
        assert value("staff", "active", False, dtype=pl.Boolean) is False
        assert value("staff", "active", 1, dtype=pl.Int64) is True

    def test_not_a_bool(self) -> None:
        assert only_reason("staff", active="maybe") == "active: not true/false ('maybe')"


class TestCode:
    def test_declared_code(self) -> None:
        assert value("customers", "segment", " merchant ") == "merchant"

    def test_unknown_code_lists_the_allowed_ones(self) -> None:
        assert (
            only_reason("customers", segment="Farmer")
            == "segment: unknown code 'Farmer' (allowed: farmer, merchant, salaried, other)"
        )


class TestMaxLength:
    def test_longer_than_declared(self) -> None:
        assert only_reason("branches", branch_id="B" * 17) == "branch_id: longer than 16 characters"

    def test_exactly_the_limit(self) -> None:
        assert value("branches", "branch_id", "B" * 16) == "B" * 16


def _id(first17: str) -> str:
    return first17 + idcard.check_char(first17)


class TestIdNumber:
    BORN = date(1980, 5, 17)
    VALID = idcard.make("330521", BORN, 11)

    def spoil(self, id_number: str) -> str:
        return only_reason("customers", id_number=id_number)

    def test_valid_number_is_kept_upper_case(self) -> None:
        with_x = next(n for s in range(1, 999, 2) if (n := idcard.make("330521", self.BORN, s)).endswith("X"))
        assert value("customers", "id_number", with_x.lower()) == with_x

    def test_wrong_check_character(self) -> None:
        expected = self.VALID[-1]
        wrong = "0" if expected != "0" else "1"
        assert (
            self.spoil(self.VALID[:17] + wrong)
            == f"id_number: check character is {wrong}, expected {expected}"
        )

    def test_unknown_province(self) -> None:
        assert self.spoil(_id("990521" + self.VALID[6:17])) == "id_number: unknown province code 99"

    def test_birth_date_not_on_the_calendar(self) -> None:
        reason = self.spoil(_id("33052119800230" + "011"))
        assert reason.startswith("id_number: birth date 19800230 is not a calendar date")

    def test_length_and_shape(self) -> None:
        assert self.spoil(self.VALID[:17]) == "id_number: must be 18 characters, got 17"
        assert self.spoil(self.VALID[:16] + "XX") == "id_number: must be 17 digits followed by a digit or X"

    def test_birth_date_must_match(self) -> None:
        reason = only_reason("customers", birth_date="1980-05-18")
        assert (
            reason
            == "rule id_matches_birth_date failed: birth_date equals the birth date encoded in id_number"
        )

    def test_gender_must_match(self) -> None:
        reason = only_reason("customers", gender="F")
        assert (
            reason == "rule id_matches_gender failed: gender agrees with the sex digit of id_number (odd = M)"
        )


class TestPhone:
    @pytest.mark.parametrize(
        "raw",
        [
            "13812345678",
            "+86 138-1234-5678",
            "+8613812345678",
            "8613812345678",
            "138 1234 5678",
            "(138)1234-5678",
        ],
    )
    def test_normalised_to_eleven_digits(self, raw: str) -> None:
        assert value("customers", "phone", raw) == "13812345678"

    def test_native_integer(self) -> None:
        assert value("customers", "phone", 13812345678, dtype=pl.Int64) == "13812345678"

    @pytest.mark.parametrize("raw", ["1381234567", "12812345678", "+1 415 555 0100", "138-1234-567x"])
    def test_not_a_mainland_mobile(self, raw: str) -> None:
        assert (
            only_reason("customers", phone=raw) == f"phone: not an 11-digit mainland mobile number ('{raw}')"
        )


class TestRules:
    def test_closed_after_opened(self) -> None:
        reason = only_reason("deposit_accounts", closed_date="2013-01-01")  # opened 2013-03-01
        assert (
            reason == "rule closed_after_opened failed: closed_date, when present, is on or after opened_date"
        )
        assert value("deposit_accounts", "closed_date", "2013-03-01") == date(2013, 3, 1)

    def test_maturity_after_open(self) -> None:
        reason = only_reason("loans", maturity_date="2024-07-15")
        assert reason == "rule maturity_after_open failed: maturity_date is after open_date"

    @pytest.mark.parametrize(
        ("kind", "listed", "accepted"),
        [
            ("phone", "13700000009", True),
            ("phone", "1370000000", False),
            ("id_number", idcard.make("110105", date(1970, 1, 1), 3), True),
            ("id_number", idcard.make("110105", date(1970, 1, 1), 3)[:17] + "Y", False),
            ("device", "fp-anything", True),
        ],
    )
    def test_negative_value_matches_kind(self, kind: str, listed: str, accepted: bool) -> None:
        checked = check("negative_list", [text_row("negative_list", kind=kind, value=listed)])
        if accepted:
            assert reasons(checked) == []
        else:
            assert reasons(checked) == [
                "rule negative_value_matches_kind failed: value is a valid ID number or phone when kind says so"
            ]

    @pytest.mark.parametrize("table", [t for t in TABLES if t.rules], ids=lambda t: t.name)
    def test_every_declared_rule_is_implemented(self, table: Any) -> None:
        checked = check(table.name, [text_row(table.name)])
        assert reasons(checked) == []


class TestForeignKeys:
    KNOWN = {"branches": pl.Series(["B01", "B02"]), "staff": pl.Series(["S001", "S003"])}

    def test_unknown_reference(self) -> None:
        checked = check("customers", [text_row("customers", branch_id="B09")], known_keys=self.KNOWN)
        assert reasons(checked) == ["branch_id: 'B09' not found in branches"]

    def test_known_reference_and_missing_optional_one(self) -> None:
        checked = check("customers", [text_row("customers", manager_id=None)], known_keys=self.KNOWN)
        assert reasons(checked) == []

    def test_not_checked_without_the_keys(self) -> None:
        assert reasons(check("customers", [text_row("customers", branch_id="B09")])) == []


class TestDuplicates:
    def test_both_rows_of_a_duplicate_key_are_rejected(self) -> None:
        rows = [
            text_row("customers", 0),
            text_row("customers", 1, customer_id="C0001"),
            text_row("customers", 2),
        ]
        checked = check("customers", rows)
        assert checked.rejects["_row"].to_list() == [2, 3]
        assert reasons(checked) == ["duplicate key (customer_id) C0001: appears 2 times in this load"] * 2
        assert checked.good["customer_id"].to_list() == ["C0003"]

    def test_composite_key(self) -> None:
        rows = [text_row("account_flows", 0), text_row("account_flows", 1, month="2025-04-01")]
        assert (
            reasons(check("account_flows", rows))
            == ["duplicate key (account_id, month) A0001/2025-04-01: appears 2 times in this load"] * 2
        )

    def test_same_key_in_another_month_is_fine(self) -> None:
        assert (
            reasons(check("account_flows", [text_row("account_flows", 0), text_row("account_flows", 1)]))
            == []
        )

    def test_unique_column(self) -> None:
        id_number = EXTRACT["customers"][0]["id_number"]
        rows = [
            text_row("customers", 0),
            text_row("customers", 1, id_number=id_number, birth_date="1980-05-17", gender="M"),
        ]
        assert (
            reasons(check("customers", rows))
            == [f"duplicate unique value (id_number) {id_number}: appears 2 times in this load"] * 2
        )

    def test_can_be_left_to_the_caller(self) -> None:
        rows = [text_row("customers", 0), text_row("customers", 0)]
        assert reasons(check("customers", rows, check_duplicates=False)) == []


class TestRejects:
    def test_carry_file_row_reasons_and_the_values_as_sent(self) -> None:
        rows = [text_row("loans", 0), text_row("loans", 1, principal="20,000.00", annual_rate=" 0.05125 ")]
        checked = check("loans", rows)
        assert checked.rejects.columns == ["_file", "_row", "_reasons", *BY_NAME["loans"].column_names]
        [reject] = checked.rejects.to_dicts()
        assert reject["_file"] == "loans.csv"
        assert reject["_row"] == 3
        assert reject["principal"] == "20,000.00"
        assert reject["annual_rate"] == "0.05125"
        assert reject["open_date"] == "2022-03-01"

    def test_native_values_are_shown_as_text(self) -> None:
        checked = check(
            "account_flows",
            [text_row("account_flows", end_balance=Decimal("1.005"), txn_count=-3)],
            schema={"end_balance": pl.Decimal(18, 3), "txn_count": pl.Int64},
        )
        [reject] = checked.rejects.to_dicts()
        assert (reject["end_balance"], reject["txn_count"]) == ("1.005", "-3")
