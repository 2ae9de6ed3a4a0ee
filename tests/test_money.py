"""Amounts, rounding, allocation and scaled integers."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditfactory.money import (
    CNY,
    FEN_HALF_UP,
    Currency,
    RoundingMode,
    RoundingPolicy,
    allocate,
    calc_context,
    format_yuan,
    from_minor,
    from_scaled,
    to_decimal,
    to_minor,
    to_scaled,
)

D = Decimal
HALF_EVEN = RoundingPolicy(RoundingMode.HALF_EVEN)

fen_amounts = st.integers(min_value=-(10**15), max_value=10**15).map(lambda n: from_minor(n))


class TestCurrency:
    def test_cny_has_two_places(self) -> None:
        assert CNY.code == "CNY"
        assert CNY.exponent == 2
        assert CNY.minor_unit == D("0.01")

    def test_yen_has_no_minor_unit_places(self) -> None:
        assert Currency("JPY", 0).minor_unit == D("1")

    @pytest.mark.parametrize("code", ["cny", "CN", "CNYY", "C1Y"])
    def test_rejects_bad_codes(self, code: str) -> None:
        with pytest.raises(ValueError, match="currency code"):
            Currency(code, 2)

    def test_is_frozen(self) -> None:
        with pytest.raises(AttributeError):
            CNY.exponent = 3  # type: ignore[misc]


class TestToDecimal:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("1234.56", D("1234.56")), (" 0.10 ", D("0.10")), (42, D(42)), (D("-3.5"), D("-3.5"))],
    )
    def test_builds_exact_decimals(self, value: str | int | Decimal, expected: Decimal) -> None:
        result = to_decimal(value)
        assert isinstance(result, Decimal)
        assert result == expected
        assert str(result) == str(expected)

    def test_keeps_trailing_zeros_of_text(self) -> None:
        assert str(to_decimal("10.00")) == "10.00"

    @pytest.mark.parametrize("value", [0.1, 1.0, float("nan")])
    def test_refuses_float(self, value: float) -> None:
        with pytest.raises(TypeError, match="float"):
            to_decimal(value)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [True, False])
    def test_refuses_bool(self, value: bool) -> None:
        with pytest.raises(TypeError):
            to_decimal(value)

    @pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "sNaN", D("NaN"), D("Infinity")])
    def test_refuses_non_finite(self, value: str | Decimal) -> None:
        with pytest.raises(ValueError, match="finite"):
            to_decimal(value)

    @pytest.mark.parametrize("value", ["", "abc", "1,000.00", "1.2.3", "¥5"])
    def test_refuses_unparsable_text(self, value: str) -> None:
        with pytest.raises(ValueError, match="not a number"):
            to_decimal(value)

    def test_refuses_other_types(self) -> None:
        with pytest.raises(TypeError):
            to_decimal([1])  # type: ignore[arg-type]


class TestRoundingMode:
    def test_maps_to_decimal_constants(self) -> None:
        assert RoundingMode.HALF_UP.decimal == decimal.ROUND_HALF_UP
        assert RoundingMode.HALF_EVEN.decimal == decimal.ROUND_HALF_EVEN
        assert RoundingMode.DOWN.decimal == decimal.ROUND_DOWN
        assert RoundingMode.UP.decimal == decimal.ROUND_UP
        assert RoundingMode.CEILING.decimal == decimal.ROUND_CEILING
        assert RoundingMode.FLOOR.decimal == decimal.ROUND_FLOOR

    def test_values_are_the_configuration_names(self) -> None:
        assert RoundingMode("half_even") is RoundingMode.HALF_EVEN
        assert [m.value for m in RoundingMode] == [
            "half_up",
            "half_even",
            "down",
            "up",
            "ceiling",
            "floor",
        ]


class TestRoundingPolicy:
    def test_default_is_half_up_to_the_fen(self) -> None:
        assert FEN_HALF_UP == RoundingPolicy(RoundingMode.HALF_UP, 2)
        assert FEN_HALF_UP.quantum == D("0.01")

    @pytest.mark.parametrize(
        ("value", "half_up", "half_even"),
        [
            ("0.125", "0.13", "0.12"),
            ("0.135", "0.14", "0.14"),
            ("0.145", "0.15", "0.14"),
            ("-0.125", "-0.13", "-0.12"),
            ("2.675", "2.68", "2.68"),
            ("0.1249999", "0.12", "0.12"),
        ],
    )
    def test_half_up_and_half_even_differ_only_on_ties_to_even(
        self, value: str, half_up: str, half_even: str
    ) -> None:
        assert str(FEN_HALF_UP.round(D(value))) == half_up
        assert str(HALF_EVEN.round(D(value))) == half_even

    @pytest.mark.parametrize(
        ("mode", "positive", "negative"),
        [
            (RoundingMode.DOWN, "1.23", "-1.23"),
            (RoundingMode.UP, "1.24", "-1.24"),
            (RoundingMode.CEILING, "1.24", "-1.23"),
            (RoundingMode.FLOOR, "1.23", "-1.24"),
        ],
    )
    def test_directed_modes(self, mode: RoundingMode, positive: str, negative: str) -> None:
        policy = FEN_HALF_UP.with_mode(mode)
        assert str(policy.round(D("1.231"))) == positive
        assert str(policy.round(D("-1.231"))) == negative

    def test_result_always_has_the_policy_places(self) -> None:
        assert str(FEN_HALF_UP.round(D("7"))) == "7.00"
        assert str(FEN_HALF_UP.round(7)) == "7.00"
        assert str(RoundingPolicy(exponent=0).round(D("7.5"))) == "8"
        assert str(RoundingPolicy(exponent=4).round(D("0.123456"))) == "0.1235"

    def test_does_not_depend_on_the_ambient_context(self) -> None:
        with decimal.localcontext() as ctx:
            ctx.rounding = decimal.ROUND_FLOOR
            ctx.prec = 3
            assert FEN_HALF_UP.round(D("12345.675")) == D("12345.68")

    def test_refuses_float(self) -> None:
        with pytest.raises(TypeError):
            FEN_HALF_UP.round(0.125)  # type: ignore[arg-type]

    def test_with_mode_keeps_exponent_and_leaves_original(self) -> None:
        policy = RoundingPolicy(exponent=4).with_mode("half_even")
        assert policy == RoundingPolicy(RoundingMode.HALF_EVEN, 4)
        assert FEN_HALF_UP.mode is RoundingMode.HALF_UP

    def test_mode_given_as_text_becomes_the_enum(self) -> None:
        assert RoundingPolicy("half_even").mode is RoundingMode.HALF_EVEN  # type: ignore[arg-type]

    def test_rejects_unknown_mode(self) -> None:
        with pytest.raises(ValueError):
            RoundingPolicy("bankers")  # type: ignore[arg-type]


class TestRoundToMultiple:
    @pytest.mark.parametrize(
        ("value", "multiple", "expected"),
        [
            ("1234.49", "1", "1234.00"),
            ("1234.50", "1", "1235.00"),
            ("1234.56", "0.10", "1234.60"),
            ("1234.56", "5", "1235.00"),
            ("1232.49", "5", "1230.00"),
            ("-1234.50", "1", "-1235.00"),
        ],
    )
    def test_instalment_rounding_half_up(self, value: str, multiple: str, expected: str) -> None:
        assert str(FEN_HALF_UP.round_to_multiple(D(value), D(multiple))) == expected

    def test_uses_the_policy_mode(self) -> None:
        assert FEN_HALF_UP.with_mode("up").round_to_multiple(D("1234.01"), D("1")) == D("1235")
        assert HALF_EVEN.round_to_multiple(D("1234.50"), D("1")) == D("1234")

    @pytest.mark.parametrize("multiple", ["0", "-1"])
    def test_multiple_must_be_positive(self, multiple: str) -> None:
        with pytest.raises(ValueError, match="positive"):
            FEN_HALF_UP.round_to_multiple(D("1"), D(multiple))

    def test_multiple_must_be_on_the_policy_grid(self) -> None:
        with pytest.raises(ValueError, match="finer"):
            FEN_HALF_UP.round_to_multiple(D("1"), D("0.005"))


class TestCalcContext:
    def test_keeps_34_significant_digits(self) -> None:
        with calc_context():
            third = D(1) / D(3)
        assert len(third.as_tuple().digits) == 34

    def test_division_by_zero_raises(self) -> None:
        with calc_context(), pytest.raises(decimal.DivisionByZero):
            _ = D(1) / D(0)

    def test_invalid_operation_raises(self) -> None:
        with calc_context(), pytest.raises(decimal.InvalidOperation):
            _ = D(0) / D(0)

    def test_restores_the_outer_context(self) -> None:
        before = decimal.getcontext().prec
        with calc_context() as ctx:
            assert ctx.prec == 34
            assert decimal.getcontext() is ctx
        assert decimal.getcontext().prec == before


class TestAllocate:
    def test_equal_thirds_put_the_extra_fen_first(self) -> None:
        parts = allocate(D("100.00"), [1, 1, 1], policy=FEN_HALF_UP)
        assert parts == [D("33.34"), D("33.33"), D("33.33")]

    def test_largest_remainder_wins_not_the_first(self) -> None:
        # exact shares 3.333.., 6.666..: the second has the larger remainder
        assert allocate(D("10.00"), [1, 2], policy=FEN_HALF_UP) == [D("3.33"), D("6.67")]
        # exact shares 1.25 and 3.75 fen
        assert allocate(D("0.05"), [D("0.25"), D("0.75")], policy=FEN_HALF_UP) == [
            D("0.01"),
            D("0.04"),
        ]

    def test_tie_on_remainder_goes_to_the_lower_index(self) -> None:
        # exact shares 1.5 and 3.5 fen: equal remainders
        assert allocate(D("0.05"), [D("0.3"), D("0.7")], policy=FEN_HALF_UP) == [
            D("0.02"),
            D("0.03"),
        ]

    def test_negative_total_mirrors_the_positive_split(self) -> None:
        assert allocate(D("-100.00"), [1, 1, 1], policy=FEN_HALF_UP) == [
            D("-33.34"),
            D("-33.33"),
            D("-33.33"),
        ]

    def test_zero_weights_get_zero(self) -> None:
        assert allocate(D("1.00"), [0, 3, 0, 1], policy=FEN_HALF_UP) == [
            D("0.00"),
            D("0.75"),
            D("0.00"),
            D("0.25"),
        ]

    def test_parts_have_the_policy_places(self) -> None:
        assert [str(p) for p in allocate(D("6"), [1, 2], policy=FEN_HALF_UP)] == ["2.00", "4.00"]

    def test_grid_follows_the_policy_exponent(self) -> None:
        assert allocate(D("10"), [1, 1, 1], policy=RoundingPolicy(exponent=0)) == [
            D(4),
            D(3),
            D(3),
        ]

    def test_total_with_too_many_places_is_refused(self) -> None:
        with pytest.raises(ValueError, match="decimal places"):
            allocate(D("1.005"), [1, 1], policy=FEN_HALF_UP)

    def test_trailing_zeros_beyond_the_grid_are_fine(self) -> None:
        assert allocate(D("1.000"), [1, 1], policy=FEN_HALF_UP) == [D("0.50"), D("0.50")]

    def test_all_zero_weights_are_refused(self) -> None:
        with pytest.raises(ValueError, match="all weights are zero"):
            allocate(D("1.00"), [0, D("0.00")], policy=FEN_HALF_UP)

    def test_negative_weight_is_refused(self) -> None:
        with pytest.raises(ValueError, match="weight 1 is negative"):
            allocate(D("1.00"), [1, -1, 2], policy=FEN_HALF_UP)

    def test_no_weights_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one weight"):
            allocate(D("1.00"), [], policy=FEN_HALF_UP)

    def test_float_weight_is_refused(self) -> None:
        with pytest.raises(TypeError):
            allocate(D("1.00"), [0.5, 0.5], policy=FEN_HALF_UP)  # type: ignore[list-item]

    @given(
        total=fen_amounts,
        weights=st.lists(
            st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=25,
        ).filter(lambda ws: any(w > 0 for w in ws)),
    )
    def test_parts_sum_to_total_and_stay_within_a_fen_of_the_exact_share(
        self, total: Decimal, weights: list[Decimal]
    ) -> None:
        parts = allocate(total, weights, policy=FEN_HALF_UP)
        assert len(parts) == len(weights)
        assert sum(parts, D(0)) == total
        weight_sum = sum(Fraction(w) for w in weights)
        for part, weight in zip(parts, weights, strict=True):
            exact = Fraction(total) * Fraction(weight) / weight_sum
            assert abs(Fraction(part) - exact) < Fraction(1, 100)
            assert part.as_tuple().exponent == -2
            if weight == 0:
                assert part == 0

    @given(total=fen_amounts, n=st.integers(min_value=1, max_value=12))
    def test_is_deterministic_and_sign_symmetric(self, total: Decimal, n: int) -> None:
        weights = [1] * n
        first = allocate(total, weights, policy=FEN_HALF_UP)
        assert first == allocate(total, weights, policy=FEN_HALF_UP)
        assert allocate(-total, weights, policy=FEN_HALF_UP) == [-p for p in first]
        # equal weights: parts are non-increasing in magnitude (ties go to the lower index)
        magnitudes = [abs(p) for p in first]
        assert magnitudes == sorted(magnitudes, reverse=True)


class TestMinorUnits:
    @pytest.mark.parametrize(
        ("amount", "fen"),
        [("0.01", 1), ("12.30", 1230), ("12.3", 1230), ("-5", -500), ("0", 0), ("1.000", 100)],
    )
    def test_to_minor(self, amount: str, fen: int) -> None:
        assert to_minor(D(amount)) == fen

    def test_to_minor_never_rounds(self) -> None:
        with pytest.raises(ValueError, match="more than 2 decimal places"):
            to_minor(D("1.005"))

    def test_to_minor_refuses_float(self) -> None:
        with pytest.raises(TypeError):
            to_minor(1.5)  # type: ignore[arg-type]

    def test_to_minor_is_exact_beyond_default_precision(self) -> None:
        # 31 significant digits: more than the default decimal context keeps (28)
        assert to_minor(D("12345678901234567890123456789.01")) == 1234567890123456789012345678901

    def test_from_minor_has_exactly_two_places(self) -> None:
        assert str(from_minor(100)) == "1.00"
        assert str(from_minor(-5)) == "-0.05"
        assert str(from_minor(0)) == "0.00"

    def test_currency_exponent_is_used(self) -> None:
        jpy = Currency("JPY", 0)
        assert to_minor(D("150"), jpy) == 150
        assert str(from_minor(150, jpy)) == "150"
        with pytest.raises(ValueError):
            to_minor(D("150.5"), jpy)

    def test_from_minor_refuses_non_int(self) -> None:
        with pytest.raises(TypeError):
            from_minor(D("1"))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            from_minor(True)

    @given(st.integers(min_value=-(10**30), max_value=10**30))
    def test_round_trip_from_minor(self, fen: int) -> None:
        assert to_minor(from_minor(fen)) == fen

    @given(
        st.decimals(places=2, allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12)
    )
    def test_round_trip_to_minor(self, amount: Decimal) -> None:
        back = from_minor(to_minor(amount))
        assert back == amount
        assert back.as_tuple().exponent == -2


class TestScaled:
    def test_rate_at_scale_eight(self) -> None:
        assert to_scaled(D("0.0435"), 8) == 4_350_000
        assert str(from_scaled(4_350_000, 8)) == "0.04350000"

    def test_refuses_loss(self) -> None:
        with pytest.raises(ValueError, match="scale 10\\^-8"):
            to_scaled(D("0.000000001"), 8)

    def test_negative_values(self) -> None:
        assert to_scaled(D("-1.5"), 1) == -15
        assert from_scaled(-15, 1) == D("-1.5")

    @given(
        i=st.integers(min_value=-(10**20), max_value=10**20),
        scale=st.integers(min_value=0, max_value=12),
    )
    def test_round_trip(self, i: int, scale: int) -> None:
        assert to_scaled(from_scaled(i, scale), scale) == i


class TestFormatYuan:
    @pytest.mark.parametrize(
        ("amount", "text"),
        [
            ("1234567.89", "¥1,234,567.89"),
            ("0", "¥0.00"),
            ("0.5", "¥0.50"),
            ("999", "¥999.00"),
            ("1000", "¥1,000.00"),
            ("-1234.5", "-¥1,234.50"),
        ],
    )
    def test_examples(self, amount: str, text: str) -> None:
        assert format_yuan(D(amount)) == text

    def test_refuses_unrounded_amounts(self) -> None:
        with pytest.raises(ValueError):
            format_yuan(D("1.005"))
