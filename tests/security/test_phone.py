"""PRC mainland mobile numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditfactory.errors import InvalidInput
from creditfactory.security import phone
from creditfactory.security.phone import InvalidPhone


class TestNormalise:
    @pytest.mark.parametrize(
        "written",
        [
            "13812345678",
            "+8613812345678",
            "8613812345678",
            "+86 138 1234 5678",
            "138-1234-5678",
            "+86-138-1234-5678",
            " 138 1234 5678 ",
            "86 138 1234 5678",
        ],
    )
    def test_ways_people_write_the_same_number(self, written: str) -> None:
        assert phone.normalise(written) == "13812345678"
        assert phone.problems(written) == []

    @pytest.mark.parametrize("prefix", "3456789")
    def test_every_allowed_second_digit(self, prefix: str) -> None:
        number = f"1{prefix}012345678"
        assert phone.normalise(number) == number

    def test_invalid_raises_a_domain_error(self) -> None:
        with pytest.raises(InvalidPhone, match="must be 11 digits") as excinfo:
            phone.normalise("1381234567")
        assert isinstance(excinfo.value, InvalidInput)
        assert excinfo.value.code == "invalid_phone"

    def test_error_does_not_repeat_the_number(self) -> None:
        with pytest.raises(InvalidPhone) as excinfo:
            phone.normalise("12812345678")
        assert "12812345678" not in str(excinfo.value)

    @given(st.from_regex(r"\A1[3-9][0-9]{9}\Z"))
    def test_valid_numbers_are_their_own_normal_form(self, number: str) -> None:
        assert phone.normalise(number) == number
        assert phone.normalise("+86 " + number[:3] + "-" + number[3:]) == number


class TestProblems:
    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ("12812345678", "second digit must be 3-9, got 2"),
            ("10812345678", "second digit must be 3-9, got 0"),
            ("23812345678", "must start with 1, got 2"),
            ("1381234567", "must be 11 digits, got 10"),
            ("138123456789", "must be 11 digits, got 12"),
            ("+85213812345678", "only the +86 country code is accepted"),
            ("138 1234 567a", "may contain only digits, spaces, hyphens and a +86 prefix"),
            ("１３８１２３４５６７８", "may contain only digits, spaces, hyphens and a +86 prefix"),
            ("(138)12345678", "may contain only digits, spaces, hyphens and a +86 prefix"),
            ("", "is empty"),
            ("  - ", "is empty"),
            ("+86", "is empty"),
        ],
    )
    def test_reasons(self, value: str, problem: str) -> None:
        assert problem in phone.problems(value)
        assert not phone.is_valid(value)

    def test_landline_is_not_a_mobile(self) -> None:
        assert not phone.is_valid("010-12345678")

    def test_not_text(self) -> None:
        assert phone.problems(13812345678) == ["expected text, got int"]
        assert phone.problems(None) == ["expected text, got NoneType"]

    def test_86_prefix_only_counts_before_eleven_digits(self) -> None:
        # "86" followed by ten digits is neither a prefixed nor a bare mobile number
        assert not phone.is_valid("861381234567")
