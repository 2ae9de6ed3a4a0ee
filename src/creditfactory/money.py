"""Amounts, rounding and the scaled integers that carry them to the database.

Money in memory is :class:`~decimal.Decimal`, built through :func:`to_decimal` and never from a
float. Amounts are yuan with two places; rounding happens only at named points (instalment
amount, daily accrual posting, fee charge, allocation result) through a :class:`RoundingPolicy`
that the caller passes in. Intermediate arithmetic runs under :func:`calc_context`, which keeps
34 significant digits.

At rest, amounts are integers in the currency's minor unit (fen) and rates are integers at a
declared scale (:func:`to_minor`, :func:`from_minor`, :func:`to_scaled`, :func:`from_scaled`).
These conversions are exact: a value that does not fit the scale is refused, never rounded.

Example::

    >>> policy = RoundingPolicy()                      # half-up to the fen
    >>> policy.round(to_decimal("2.675"))
    Decimal('2.68')
    >>> allocate(to_decimal("100.00"), [1, 1, 1], policy=policy)
    [Decimal('33.34'), Decimal('33.33'), Decimal('33.33')]
    >>> to_minor(to_decimal("12.30"))
    1230
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "CNY",
    "FEN_HALF_UP",
    "CALC_PRECISION",
    "Currency",
    "RoundingMode",
    "RoundingPolicy",
    "allocate",
    "calc_context",
    "format_yuan",
    "from_minor",
    "from_scaled",
    "to_decimal",
    "to_minor",
    "to_scaled",
]

#: Significant digits kept by :func:`calc_context` (IEEE 754 decimal128).
CALC_PRECISION = 34


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency and the number of decimal places of its minor unit."""

    code: str
    exponent: int

    def __post_init__(self) -> None:
        if not (isinstance(self.code, str) and len(self.code) == 3 and self.code.isascii()):
            raise ValueError(f"currency code must be three ASCII letters, got {self.code!r}")
        if not self.code.isalpha() or not self.code.isupper():
            raise ValueError(f"currency code must be three upper-case letters, got {self.code!r}")
        if isinstance(self.exponent, bool) or not isinstance(self.exponent, int):
            raise TypeError(f"currency exponent must be an int, got {type(self.exponent).__name__}")
        if not 0 <= self.exponent <= 8:
            raise ValueError(f"currency exponent must be 0..8, got {self.exponent}")

    @property
    def minor_unit(self) -> Decimal:
        """The smallest amount of the currency, e.g. ``Decimal('0.01')`` for CNY."""
        return Decimal((0, (1,), -self.exponent))

    def __str__(self) -> str:
        return self.code


#: Renminbi: yuan with two decimal places (fen).
CNY = Currency("CNY", 2)


def to_decimal(value: str | int | Decimal) -> Decimal:
    """Build an amount or rate from text, an int or a Decimal; the one way in for numbers.

    Floats (and bools) are refused with :class:`TypeError`, because a float already lost the
    digits the caller meant. Text may carry surrounding whitespace and ``_`` digit separators.
    NaN, infinities and text that is not a number raise :class:`ValueError`.
    """
    if isinstance(value, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(value, float):
        raise TypeError(f"float {value!r} is not accepted for money or rates; pass a str, int or Decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            with decimal.localcontext(_calc_ctx()):  # traps InvalidOperation whatever the caller set
                result = Decimal(text)
        except decimal.InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    else:
        raise TypeError(f"expected str, int or Decimal, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


class RoundingMode(StrEnum):
    """Rounding modes a product may choose, named as in configuration files."""

    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    DOWN = "down"
    UP = "up"
    CEILING = "ceiling"
    FLOOR = "floor"

    @property
    def decimal(self) -> str:
        """The matching :mod:`decimal` rounding constant (e.g. ``decimal.ROUND_HALF_UP``)."""
        return _DECIMAL_ROUNDING[self]


_DECIMAL_ROUNDING: dict[RoundingMode, str] = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.DOWN: decimal.ROUND_DOWN,
    RoundingMode.UP: decimal.ROUND_UP,
    RoundingMode.CEILING: decimal.ROUND_CEILING,
    RoundingMode.FLOOR: decimal.ROUND_FLOOR,
}


def _calc_ctx() -> decimal.Context:
    return decimal.Context(
        prec=CALC_PRECISION,
        rounding=decimal.ROUND_HALF_EVEN,
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
    )


@contextmanager
def calc_context() -> Iterator[decimal.Context]:
    """A local decimal context for intermediate arithmetic.

    Precision is 34 significant digits with banker's rounding of the last digit, and
    invalid operations, division by zero and overflow raise instead of producing NaN or
    infinity. Round to the fen afterwards, at a named point, with a :class:`RoundingPolicy`.
    """
    with decimal.localcontext(_calc_ctx()) as ctx:
        yield ctx


def _require_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what} must be finite, got {value}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"{what} must be a Decimal or int, got {type(value).__name__}")


def _quantum(exponent: int) -> Decimal:
    return Decimal((0, (1,), -exponent))


def _places(value: Decimal) -> int:
    """Decimal places needed to write ``value`` exactly (0 for integers)."""
    _, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    if exp >= 0:
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if trailing_zeros == len(digits):  # the value is zero
        return 0
    return max(0, -exp - trailing_zeros)


def _fits(value: Decimal, exponent: int) -> bool:
    """True when ``value`` is a whole multiple of ``10**-exponent``."""
    _, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    shift = exp + exponent
    if shift >= 0:
        return True
    coefficient = int("".join(map(str, digits)))
    return coefficient % 10**-shift == 0


@dataclass(frozen=True, slots=True)
class RoundingPolicy:
    """How and to how many places amounts are rounded at a posting point.

    The default rounds half-up to the fen (``exponent=2``). A product that wants banker's
    rounding, as Apache Fineract offers, uses ``RoundingPolicy(RoundingMode.HALF_EVEN)``.
    Pass the policy to the function that rounds; nothing reads a global policy.
    """

    mode: RoundingMode = RoundingMode.HALF_UP
    exponent: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", RoundingMode(self.mode))
        if isinstance(self.exponent, bool) or not isinstance(self.exponent, int):
            raise TypeError(f"rounding exponent must be an int, got {type(self.exponent).__name__}")
        if not -18 <= self.exponent <= 18:
            raise ValueError(f"rounding exponent must be -18..18, got {self.exponent}")

    @property
    def quantum(self) -> Decimal:
        """The step results are rounded to, e.g. ``Decimal('0.01')``."""
        return _quantum(self.exponent)

    def round(self, x: Decimal | int) -> Decimal:
        """Round ``x`` to ``10**-exponent`` with this policy's mode."""
        value = _require_decimal(x, "amount")
        with calc_context() as ctx:
            return value.quantize(self.quantum, rounding=self.mode.decimal, context=ctx)

    def round_to_multiple(self, x: Decimal | int, multiple: Decimal | int) -> Decimal:
        """Round ``x`` to a whole number of ``multiple`` with this policy's mode.

        Used for instalments rounded to the yuan (``multiple=Decimal("1")``) or to ten fen.
        ``multiple`` must be positive and itself on this policy's grid, so the result is too;
        it is returned with the policy's number of places (``Decimal('1235.00')``).
        """
        value = _require_decimal(x, "amount")
        step = _require_decimal(multiple, "multiple")
        if step <= 0:
            raise ValueError(f"multiple must be positive, got {step}")
        if not _fits(step, self.exponent):
            raise ValueError(f"multiple {step} is finer than the policy's {self.exponent} decimal places")
        with calc_context() as ctx:
            count = (value / step).quantize(Decimal(1), rounding=self.mode.decimal, context=ctx)
            return (count * step).quantize(self.quantum, context=ctx)

    def with_mode(self, mode: RoundingMode | str) -> RoundingPolicy:
        """The same policy with another rounding mode."""
        return replace(self, mode=RoundingMode(mode))

    def with_exponent(self, exponent: int) -> RoundingPolicy:
        """The same policy rounding to another number of places."""
        return replace(self, exponent=exponent)


#: Half-up to the fen: the house default for CNY amounts.
FEN_HALF_UP = RoundingPolicy()


def allocate(
    total: Decimal | int, weights: Sequence[Decimal | int], *, policy: RoundingPolicy
) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum exactly to it.

    Largest-remainder method on the policy's grid (``10**-policy.exponent``): every part
    first gets its exact share rounded towards zero, and the units left over go one each to
    the parts with the largest remainders, the lower index first on a tie. Each part is
    therefore within one unit of its exact share, and the parts always add up to ``total``.
    A negative total is split like its absolute value, with the signs turned. Zero weights
    get zero. The policy's rounding mode does not apply: the method is exact.

    Raises :class:`ValueError` when ``total`` has more places than the policy allows, when
    there are no weights, when a weight is negative, or when all weights are zero.
    """
    amount = _require_decimal(total, "total")
    if not _fits(amount, policy.exponent):
        raise ValueError(f"total {amount} has more than {policy.exponent} decimal places; round it first")
    if len(weights) == 0:
        raise ValueError("allocate needs at least one weight")
    ws = [_require_decimal(w, f"weight {i}") for i, w in enumerate(weights)]
    for i, w in enumerate(ws):
        if w < 0:
            raise ValueError(f"weight {i} is negative ({w}); weights must be zero or positive")
    # Scale weights to integers so the split is done in exact integer arithmetic.
    weight_places = max(_places(w) for w in ws)
    int_weights = [to_scaled(w, weight_places) for w in ws]
    weight_sum = sum(int_weights)
    if weight_sum == 0:
        raise ValueError("all weights are zero; nothing to allocate by")

    units = to_scaled(amount, policy.exponent)
    sign = -1 if units < 0 else 1
    units = abs(units)
    floors: list[int] = []
    remainders: list[int] = []
    for w in int_weights:
        q, r = divmod(units * w, weight_sum)
        floors.append(q)
        remainders.append(r)
    left = units - sum(floors)
    # Highest remainder first; ties go to the lower index.
    for i in sorted(range(len(ws)), key=lambda k: (-remainders[k], k))[:left]:
        floors[i] += 1
    return [from_scaled(sign * part, policy.exponent) for part in floors]


def to_scaled(value: Decimal | int, scale: int) -> int:
    """``value * 10**scale`` as an int, for rates and factors stored at scale ``10**-scale``.

    Exact: raises :class:`ValueError` if ``value`` has more than ``scale`` decimal places.
    """
    number = _require_decimal(value, "value")
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise TypeError(f"scale must be an int, got {type(scale).__name__}")
    sign, digits, exp = number.as_tuple()
    assert isinstance(exp, int)
    coefficient = int("".join(map(str, digits)))
    shift = exp + scale
    if shift >= 0:
        result = coefficient * 10**shift
    else:
        result, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise ValueError(
                f"{number} has more than {scale} decimal places and cannot be stored at "
                f"scale 10^-{scale} without loss"
            )
    return -result if sign else result


def from_scaled(i: int, scale: int) -> Decimal:
    """The Decimal ``i * 10**-scale`` with exactly ``scale`` places (inverse of :func:`to_scaled`)."""
    if isinstance(i, bool) or not isinstance(i, int):
        raise TypeError(f"scaled value must be an int, got {type(i).__name__}")
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise TypeError(f"scale must be an int, got {type(scale).__name__}")
    sign = 1 if i < 0 else 0
    digits = tuple(int(c) for c in str(abs(i)))
    return Decimal((sign, digits, -scale))


def to_minor(amount: Decimal | int, currency: Currency = CNY) -> int:
    """The amount in minor units (yuan → fen) for storage.

    Never rounds: an amount with more places than the currency has (``Decimal('1.005')``
    for CNY) raises :class:`ValueError`; round it with a :class:`RoundingPolicy` first.
    """
    number = _require_decimal(amount, "amount")
    if not _fits(number, currency.exponent):
        raise ValueError(
            f"amount {number} has more than {currency.exponent} decimal places for "
            f"{currency.code}; round it with a RoundingPolicy before storing"
        )
    return to_scaled(number, currency.exponent)


def from_minor(minor: int, currency: Currency = CNY) -> Decimal:
    """The amount for ``minor`` units (fen → yuan), with exactly the currency's places."""
    return from_scaled(minor, currency.exponent)


def format_yuan(amount: Decimal | int, *, currency: Currency = CNY, symbol: str = "¥") -> str:
    """Display text such as ``¥1,234,567.89`` (``-¥5.00`` for negatives).

    The amount must already be on the fen grid (round it first at a named point);
    an amount with more places raises :class:`ValueError` rather than being rounded here.
    """
    minor = to_minor(amount, currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**currency.exponent)
    text = f"{whole:,}"
    if currency.exponent:
        text += f".{frac:0{currency.exponent}d}"
    return f"{sign}{symbol}{text}"
