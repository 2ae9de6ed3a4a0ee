"""Masking of personal data for display."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditfactory.security.masking import mask_address, mask_id_number, mask_name, mask_phone


class TestMaskIdNumber:
    def test_keeps_first_three_and_last_four(self) -> None:
        assert mask_id_number("11010519491231002X") == "110***********002X"

    def test_lower_case_x_and_spaces(self) -> None:
        assert mask_id_number(" 11010519491231002x ") == "110***********002X"

    def test_short_values_are_masked_whole(self) -> None:
        assert mask_id_number("1234567") == "*******"

    def test_none(self) -> None:
        assert mask_id_number(None) is None

    @given(st.from_regex(r"\A[0-9]{17}[0-9X]\Z"))
    def test_never_shows_the_birth_date(self, number: str) -> None:
        masked = mask_id_number(number)
        assert len(masked) == 18
        assert masked[3:14] == "*" * 11
        assert masked[:3] + masked[14:] == number[:3] + number[14:]


class TestMaskPhone:
    def test_keeps_first_three_and_last_four(self) -> None:
        assert mask_phone("13812345678") == "138****5678"

    @pytest.mark.parametrize("written", ["+86 138 1234 5678", "138-1234-5678", "8613812345678"])
    def test_written_forms_are_normalised_first(self, written: str) -> None:
        assert mask_phone(written) == "138****5678"

    def test_other_numbers_follow_the_same_rule(self) -> None:
        assert mask_phone("010-62345678") == "010****5678"

    def test_short_values_are_masked_whole(self) -> None:
        assert mask_phone("95588") == "*****"

    def test_none(self) -> None:
        assert mask_phone(None) is None


class TestMaskName:
    @pytest.mark.parametrize(
        ("name", "masked"),
        [
            ("张三", "张*"),
            ("欧阳娜娜", "欧***"),
            ("李小龙", "李**"),
            ("John Smith", "J*********"),
            (" 王五 ", "王*"),
            ("王", "*"),
            ("", ""),
        ],
    )
    def test_keeps_the_first_character(self, name: str, masked: str) -> None:
        assert mask_name(name) == masked

    def test_none(self) -> None:
        assert mask_name(None) is None


class TestMaskAddress:
    def test_keeps_the_first_six_characters(self) -> None:
        assert mask_address("北京市朝阳区建国路88号") == "北京市朝阳区****"
        assert mask_address("浙江省杭州市西湖区文三路1号") == "浙江省杭州市****"

    def test_short_addresses_keep_only_half(self) -> None:
        assert mask_address("某村3号") == "某村****"
        assert mask_address("北京市朝阳区") == "北京市****"

    def test_blank_and_none(self) -> None:
        assert mask_address("  ") == ""
        assert mask_address(None) is None

    @given(st.text(min_size=7).filter(lambda s: len(s.strip()) > 6))
    def test_never_more_than_six_characters_shown(self, address: str) -> None:
        masked = mask_address(address)
        assert masked == address.strip()[:6] + "****"
