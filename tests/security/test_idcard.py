"""PRC resident identity numbers (GB 11643-1999)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditfactory.errors import InvalidInput
from creditfactory.security import idcard
from creditfactory.security.idcard import IdNumber, InvalidIdNumber

#: The worked example printed in GB 11643-1999: Beijing Chaoyang, born 1949-12-31, female.
STANDARD_EXAMPLE = "11010519491231002X"


def with_check(first17: str) -> str:
    return first17 + idcard.check_char(first17)


class TestCheckChar:
    def test_standard_example(self) -> None:
        assert idcard.check_char(STANDARD_EXAMPLE[:17]) == "X"

    def test_digit_check_character(self) -> None:
        # 440524188001010014 is the other example in the standard's annex
        assert idcard.check_char("44052418800101001") == "4"

    @pytest.mark.parametrize("bad", ["1101051949123100", "110105194912310021", "1101051949123100A"])
    def test_needs_seventeen_digits(self, bad: str) -> None:
        with pytest.raises(InvalidIdNumber):
            idcard.check_char(bad)


class TestProblems:
    def test_standard_example_is_valid(self) -> None:
        assert idcard.problems(STANDARD_EXAMPLE) == []
        assert idcard.is_valid(STANDARD_EXAMPLE)

    def test_digits_are_ascii_digits(self) -> None:
        # fullwidth or Arabic-Indic digits read as numbers to int(), but are not the number
        for digits in ("０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩"):
            other = STANDARD_EXAMPLE[:2] + STANDARD_EXAMPLE[2:17].translate(
                str.maketrans("0123456789", digits)
            )
            assert idcard.problems(other + "X") == ["must be 17 digits followed by a digit or X"]
            with pytest.raises(InvalidIdNumber):
                idcard.check_char(other)

    def test_lower_case_x_and_spaces_are_accepted(self) -> None:
        assert idcard.is_valid(" 11010519491231002x ")

    @pytest.mark.parametrize("position", range(17))
    def test_any_changed_digit_is_caught(self, position: int) -> None:
        digit = STANDARD_EXAMPLE[position]
        changed = STANDARD_EXAMPLE[:position] + str((int(digit) + 1) % 10) + STANDARD_EXAMPLE[position + 1 :]
        assert not idcard.is_valid(changed)

    def test_wrong_check_character_is_named(self) -> None:
        assert idcard.problems("110105194912310021") == ["check character is 1, expected X"]

    def test_x_only_as_the_check_character(self) -> None:
        assert idcard.problems("1101051949123100X2") == ["must be 17 digits followed by a digit or X"]

    def test_feb_29_in_a_common_year_is_not_a_date(self) -> None:
        assert idcard.problems(with_check("11010520230229001")) == [
            "birth date 20230229 is not a calendar date"
        ]
        assert idcard.is_valid(with_check("11010520240229001"))

    def test_unknown_province(self) -> None:
        assert idcard.problems(with_check("99010519491231002")) == ["unknown province code 99"]

    def test_province_level_region_code(self) -> None:
        assert idcard.problems(with_check("11000019491231002")) == [
            "region code 110000 names a province, not a county"
        ]

    def test_future_birth_date_with_as_of(self) -> None:
        number = with_check("11010520300101001")
        assert idcard.is_valid(number)
        assert idcard.problems(number, as_of=date(2025, 1, 1)) == ["birth date 2030-01-01 is in the future"]

    @pytest.mark.parametrize(
        ("value", "reason"), [("1101051949123100", "18 characters"), (None, "expected text")]
    )
    def test_shape(self, value: object, reason: str) -> None:
        (problem,) = idcard.problems(value)
        assert reason in problem

    def test_several_problems_are_all_reported(self) -> None:
        found = idcard.problems("990105202302290011")
        assert len(found) == 3


class TestParse:
    def test_standard_example(self) -> None:
        parsed = idcard.parse(STANDARD_EXAMPLE)
        assert parsed == IdNumber(
            value=STANDARD_EXAMPLE, region_code="110105", birth_date=date(1949, 12, 31), sex="F"
        )
        assert parsed.province_code == "11"

    def test_odd_sequence_is_male(self) -> None:
        assert idcard.parse(with_check("11010519491231001")).sex == "M"

    def test_age_counts_from_the_birthday(self) -> None:
        parsed = idcard.parse(STANDARD_EXAMPLE)
        assert parsed.age_on(date(2025, 12, 30)) == 75
        assert parsed.age_on(date(2025, 12, 31)) == 76

    def test_invalid_raises_a_domain_error_listing_problems(self) -> None:
        with pytest.raises(InvalidIdNumber, match="check character") as excinfo:
            idcard.parse("110105194912310021")
        assert isinstance(excinfo.value, InvalidInput)
        assert excinfo.value.code == "invalid_id_number"


class TestMake:
    def test_rebuilds_the_standard_example(self) -> None:
        assert idcard.make("110105", date(1949, 12, 31), 2) == STANDARD_EXAMPLE

    @pytest.mark.parametrize(("region", "sequence"), [("11010", 1), ("110105", 1000), ("110105", -1)])
    def test_refuses_bad_parts(self, region: str, sequence: int) -> None:
        with pytest.raises(InvalidIdNumber):
            idcard.make(region, date(1990, 1, 1), sequence)

    @given(
        born=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
        sequence=st.integers(min_value=0, max_value=999),
        region=st.sampled_from(["110105", "440524", "510104", "650102", "330106"]),
    )
    def test_round_trips_through_parse(self, born: date, sequence: int, region: str) -> None:
        number = idcard.make(region, born, sequence)
        parsed = idcard.parse(number)
        assert parsed.value == number
        assert parsed.birth_date == born
        assert parsed.region_code == region
        assert parsed.sex == ("M" if sequence % 2 else "F")
