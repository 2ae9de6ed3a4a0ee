"""Loan products: what a bank sells, with the settings that drive schedules, accrual and allocation.

A :class:`LoanProduct` is a frozen, validated value. Products are configuration: the bank keeps
them in YAML files (one product per file, or a ``products:`` list), read by :func:`load_products`.
Numbers in those files are read as :class:`~decimal.Decimal` from their text, never through a
float, and a float passed from Python is refused.

Example::

    >>> products = load_products(sample_products_dir())
    >>> product = products["consumer_equal_installment"]
    >>> product.annual_rate, product.day_count
    (Decimal('0.0435'), <DayCount.THIRTY_E_360: '30/360'>)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from creditfactory.clock import DayCount
from creditfactory.errors import InvalidInput
from creditfactory.money import RoundingMode, RoundingPolicy, calc_context

if TYPE_CHECKING:
    from creditfactory.servicing.model.schedule import Schedule

__all__ = [
    "DEFAULT_ALLOCATION_ORDER",
    "Component",
    "LoanProduct",
    "ProductError",
    "RepaymentMethod",
    "load_products",
    "sample_products_dir",
]


class RepaymentMethod(StrEnum):
    """How principal and interest are repaid."""

    #: 等额本息: the same instalment every month (annuity).
    EQUAL_INSTALLMENT = "equal_installment"
    #: 等额本金: the same principal every month, interest on the declining balance.
    EQUAL_PRINCIPAL = "equal_principal"
    #: 先息后本: interest every month, all principal at maturity.
    INTEREST_ONLY = "interest_only"
    #: 到期一次还本付息: principal and all interest at maturity.
    BULLET = "bullet"

    @property
    def label(self) -> str:
        """The Chinese name used on statements."""
        return _METHOD_LABELS[self]


_METHOD_LABELS = {
    RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
    RepaymentMethod.INTEREST_ONLY: "先息后本",
    RepaymentMethod.BULLET: "到期一次还本付息",
}


class Component(StrEnum):
    """The parts an amount due is made of, in the default order a repayment pays them."""

    PENALTY = "penalty"
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


#: Penalty interest first, then fees, interest and principal (the usual Chinese bank order).
DEFAULT_ALLOCATION_ORDER: tuple[Component, ...] = (
    Component.PENALTY,
    Component.FEE,
    Component.INTEREST,
    Component.PRINCIPAL,
)

_PENALTY_FACTOR = Decimal("1.5")
_RATE_PLACES = 8
_FEN = Decimal("0.01")


class ProductError(InvalidInput):
    """A product definition is invalid, or a request does not fit the product."""

    code = "invalid_product"
    title = "Invalid loan product"


def _no_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f"float {value!r} is not accepted for money or rates; write it as text or a Decimal")
    return value


def _on_fen_grid(value: Decimal) -> bool:
    return value == value.quantize(_FEN) if value.is_finite() else False


class LoanProduct(BaseModel):
    """A loan product: limits, price, repayment methods and servicing conventions.

    ``penalty_rate`` (罚息: the rate on overdue principal) is a fixed annual rate when given; left
    unset it stays ``None`` and each loan's penalty rate is 1.5 × that loan's own rate
    (:meth:`penalty_rate_for`), which on a credit line is the line's contract rate.
    ``grace_days`` are the days after a due date during which an unpaid instalment is not yet
    overdue. ``instalment_multiple`` rounds the equal instalment to a multiple such as
    ``Decimal("1")`` yuan (the last instalment absorbs the difference). ``allocation_order`` is
    the order a repayment pays the components of an instalment and must name each component
    once. A revolving product is a credit line: ``line_limit`` and ``line_term_months`` are
    required, and each drawdown is a loan between ``min_amount`` and ``max_amount``.
    ``prepayment`` is what an early partial repayment changes when the customer does not choose:
    ``keep_instalment`` (the term shortens, 缩短期限) or ``keep_term`` (the instalment falls,
    减少月供); interest-only and bullet loans always keep their term.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")  # one line of text
    min_amount: Decimal = Field(gt=0)
    max_amount: Decimal = Field(gt=0)
    min_term: int = Field(ge=1, le=600)
    max_term: int = Field(ge=1, le=600)
    methods: tuple[RepaymentMethod, ...] = Field(min_length=1)
    annual_rate: Decimal = Field(ge=0, lt=1)
    penalty_rate: Decimal | None = Field(default=None, ge=0, lt=2)
    grace_days: int = Field(default=0, ge=0, le=90)
    day_count: DayCount = DayCount.THIRTY_E_360
    rounding: RoundingMode = RoundingMode.HALF_UP
    instalment_multiple: Decimal | None = Field(default=None, gt=0)
    allocation_order: tuple[Component, ...] = DEFAULT_ALLOCATION_ORDER
    revolving: bool = False
    line_limit: Decimal | None = Field(default=None, gt=0)
    line_term_months: int | None = Field(default=None, ge=1, le=120)
    max_drawdowns: int | None = Field(default=None, ge=1)
    prepayment: Literal["keep_instalment", "keep_term"] = "keep_instalment"

    @model_validator(mode="before")
    @classmethod
    def _one_method(cls, data: Any) -> Any:
        # A product may say ``method: bullet`` instead of ``methods: [bullet]``.
        if isinstance(data, Mapping) and "method" in data:
            data = dict(data)
            if "methods" in data:
                raise ValueError("give either 'method' or 'methods', not both")
            data["methods"] = (data.pop("method"),)
        return data

    @field_validator(
        "min_amount",
        "max_amount",
        "annual_rate",
        "penalty_rate",
        "instalment_multiple",
        "line_limit",
        mode="before",
    )
    @classmethod
    def _decimal_not_float(cls, value: object) -> object:
        return _no_float(value)

    @field_validator("min_amount", "max_amount", "instalment_multiple", "line_limit")
    @classmethod
    def _fen(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not _on_fen_grid(value):
            raise ValueError(f"{value} has more than 2 decimal places (amounts are yuan and fen)")
        return value

    @field_validator("methods", "allocation_order")
    @classmethod
    def _unique(cls, value: tuple[StrEnum, ...]) -> tuple[StrEnum, ...]:
        seen = [str(v) for v in value]
        duplicates = sorted({v for v in seen if seen.count(v) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return value

    @field_validator("allocation_order")
    @classmethod
    def _complete_order(cls, value: tuple[Component, ...]) -> tuple[Component, ...]:
        missing = [c.value for c in Component if c not in value]
        if missing:
            raise ValueError(f"must name every component once; missing: {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LoanProduct:
        if self.min_amount > self.max_amount:
            raise ValueError(f"min_amount {self.min_amount} is above max_amount {self.max_amount}")
        if self.min_term > self.max_term:
            raise ValueError(f"min_term {self.min_term} is above max_term {self.max_term}")
        if self.revolving:
            if self.line_limit is None or self.line_term_months is None:
                raise ValueError("a revolving product needs line_limit and line_term_months")
            if self.max_amount > self.line_limit:
                raise ValueError(f"max_amount {self.max_amount} is above line_limit {self.line_limit}")
        elif self.line_limit is not None or self.line_term_months is not None or self.max_drawdowns:
            raise ValueError("line_limit, line_term_months and max_drawdowns are for revolving products only")
        return self

    # ----------------------------------------------------------------------------------------

    @property
    def rounding_policy(self) -> RoundingPolicy:
        """The product's rounding to the fen."""
        return RoundingPolicy(self.rounding)

    @property
    def effective_penalty_rate(self) -> Decimal:
        """The annual penalty rate of a loan at the product's own rate (see :meth:`penalty_rate_for`)."""
        return self.penalty_rate_for(self.annual_rate)

    def penalty_rate_for(self, annual_rate: Decimal) -> Decimal:
        """The annual penalty rate of a loan at ``annual_rate`` (a line's contract rate may differ
        from the product's): the product's ``penalty_rate`` when it sets one, else 1.5 × the loan's
        own rate, kept to the 1e-8 that rates are stored at (rounded with the product's mode)."""
        if self.penalty_rate is not None:
            return self.penalty_rate
        with calc_context():
            return self.rounding_policy.with_exponent(_RATE_PLACES).round(annual_rate * _PENALTY_FACTOR)

    def check_loan(self, *, amount: Decimal, term: int, method: RepaymentMethod | str) -> RepaymentMethod:
        """Raise :class:`ProductError` unless amount, term and method fit; return the method."""
        if isinstance(amount, float) or not isinstance(amount, Decimal | int):
            raise TypeError(f"amount must be a Decimal, got {type(amount).__name__}")
        if not self.min_amount <= amount <= self.max_amount:
            raise ProductError(
                f"product {self.code!r}: amount {amount} is outside {self.min_amount}..{self.max_amount}",
                field="amount",
            )
        if not self.min_term <= term <= self.max_term:
            raise ProductError(
                f"product {self.code!r}: term {term} months is outside {self.min_term}..{self.max_term}",
                field="term",
            )
        try:
            chosen = RepaymentMethod(method)
        except ValueError:
            raise ProductError(f"unknown repayment method {method!r}", field="method") from None
        if chosen not in self.methods:
            allowed = ", ".join(m.value for m in self.methods)
            raise ProductError(
                f"product {self.code!r} does not offer {chosen.value}; it offers {allowed}", field="method"
            )
        return chosen

    def schedule(
        self,
        *,
        principal: Decimal,
        term: int,
        start: date,
        method: RepaymentMethod | str | None = None,
        first_due: date | None = None,
    ) -> Schedule:
        """The repayment schedule of a loan of this product (checked against its limits)."""
        from creditfactory.servicing.model.schedule import generate_schedule

        chosen = self.check_loan(amount=principal, term=term, method=method or self.methods[0])
        return generate_schedule(
            principal=principal,
            annual_rate=self.annual_rate,
            term=term,
            method=chosen,
            start=start,
            day_count=self.day_count,
            policy=self.rounding_policy,
            instalment_multiple=self.instalment_multiple,
            first_due=first_due,
        )


# --------------------------------------------------------------------------------------------
# Loading


class _DecimalLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader with every float read as a Decimal from its text: libyaml's where
    PyYAML was built with it (the shipped products in 0.3 ms instead of 2.4 ms)."""


def _decimal_constructor(loader: Any, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    lowered = text.lower()
    if lowered in {".nan", ".inf", "+.inf", "-.inf"}:
        raise ValueError(f"not a finite number: {text}")
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal_constructor)


def sample_products_dir() -> Path:
    """The folder of sample products shipped with creditfactory."""
    return Path(__file__).resolve().parent.parent / "products"


def _format_error(source: Path, code: str, error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    where = f"field {loc!r}" if loc else "product"
    return f"{source}: product {code!r}: {where}: {message}"


def _entries(source: Path, document: object) -> Iterable[tuple[int, object]]:
    if document is None:
        return []
    if isinstance(document, Mapping) and "products" in document:
        items = document["products"]
        if not isinstance(items, list):
            raise ProductError(f"{source}: 'products' must be a list of products", file=str(source))
        return list(enumerate(items))
    if isinstance(document, list):
        return list(enumerate(document))
    return [(0, document)]


def load_products(path: str | Path) -> dict[str, LoanProduct]:
    """Read products from a YAML file, or from every ``*.yaml``/``*.yml`` file in a folder.

    A file holds one product (a mapping), a list of products, or ``products: [...]``. Returns
    them by code. Raises :class:`ProductError` naming the file, the product and the field for
    the first invalid entry, an unreadable file, or a code defined twice.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
        if not files:
            raise ProductError(f"{root}: no *.yaml product files in this folder", file=str(root))
    elif root.is_file():
        files = [root]
    else:
        raise ProductError(f"{root}: no such product file or folder", file=str(root))

    products: dict[str, LoanProduct] = {}
    defined_in: dict[str, Path] = {}
    for source in files:
        try:
            document = yaml.load(source.read_text(encoding="utf-8"), Loader=_DecimalLoader)
        except (yaml.YAMLError, ValueError, ArithmeticError) as exc:
            raise ProductError(f"{source}: not valid YAML: {exc}", file=str(source)) from None
        for index, entry in _entries(source, document):
            if not isinstance(entry, Mapping):
                raise ProductError(f"{source}: entry {index} is not a mapping of fields", file=str(source))
            code = str(entry.get("code", f"#{index}"))
            try:
                product = LoanProduct.model_validate(dict(entry))
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first.get("loc", ()))
                raise ProductError(
                    _format_error(source, code, dict(first)), file=str(source), product=code, field=field
                ) from None
            except ValueError as exc:
                raise ProductError(
                    f"{source}: product {code!r}: {exc}", file=str(source), product=code
                ) from None
            if product.code in products:
                raise ProductError(
                    f"{source}: product {product.code!r} is already defined in {defined_in[product.code]}",
                    file=str(source),
                    product=product.code,
                )
            products[product.code] = product
            defined_in[product.code] = source
    return products
