"""The double-entry ledger, pure: accounts, the lending chart, entries, posting rules, balances.

Everything here is a value: nothing reads a clock or a database. An :class:`Entry` is a set of
:class:`Line` s that is checked when it is built: at least two lines, every amount positive and
on the currency's minor unit (the fen for CNY), and debits equal to credits in each currency.
An entry that does not balance raises :class:`UnbalancedEntry` naming its ``source_key`` and the
difference, so an unbalanced entry can never exist, let alone be posted. Entries are immutable;
a correction is a new entry that reverses the old one (:func:`reverse`).

The posting rules servicing needs (:func:`disbursement`, :func:`interest_accrual`,
:func:`penalty_accrual`, :func:`fee_charge`, :func:`repayment`, :func:`write_off`,
:func:`recovery`, :func:`provision_charge`, :func:`provision_release`) are plain functions that
return entries. They know accounts and amounts, never loan products: a per-product principal
account is passed in (:func:`principal_receivable`), and the subledger (``"loan:L123"``) is an
opaque label that lets balances be summed per loan.

Example, a disbursement and its first day of interest::

    >>> from datetime import date
    >>> from decimal import Decimal
    >>> out = disbursement(source_key="disburse:L1", value_date=date(2025, 7, 1),
    ...                    subledger="loan:L1", amount=Decimal("10000.00"))
    >>> accrued = interest_accrual(source_key="accrual:L1:2025-07-01", value_date=date(2025, 7, 1),
    ...                            subledger="loan:L1", amount=Decimal("2.19"))
    >>> account_balance([out, accrued], LOAN_PRINCIPAL.code)
    Decimal('10000.00')
    >>> TrialBalance.from_entries([out, accrued]).is_balanced
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from creditfactory.errors import Conflict, DomainError, NotFound
from creditfactory.money import CNY, Currency, from_scaled

__all__ = [
    "CHART",
    "CLEARING",
    "CUSTOMER_SETTLEMENT",
    "FEE_INCOME",
    "FEE_RECEIVABLE",
    "INTEREST_INCOME",
    "INTEREST_RECEIVABLE",
    "LOAN_LOSS_ALLOWANCE",
    "LOAN_PRINCIPAL",
    "OVERPAYMENT",
    "PENALTY_INCOME",
    "PENALTY_RECEIVABLE",
    "PROVISION_EXPENSE",
    "RECOVERIES_INCOME",
    "WRITE_OFF_EXPENSE",
    "Account",
    "AccountConflict",
    "AccountType",
    "AlreadyReversed",
    "Entry",
    "InvalidEntry",
    "Line",
    "LedgerError",
    "Side",
    "SourceKeyConflict",
    "TrialBalance",
    "TrialBalanceRow",
    "UnbalancedEntry",
    "UnknownAccount",
    "UnknownEntry",
    "account_balance",
    "cr",
    "disbursement",
    "dr",
    "fee_charge",
    "interest_accrual",
    "penalty_accrual",
    "principal_receivable",
    "provision_charge",
    "provision_release",
    "recovery",
    "repayment",
    "reverse",
    "write_off",
]

#: Longest texts the ledger's tables hold.
MAX_CODE = 32
MAX_NAME = 128
MAX_SOURCE_KEY = 200
MAX_SUBLEDGER = 100
MAX_DESCRIPTION = 500

_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*", re.ASCII)
_PRODUCT = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]*", re.ASCII)
_ZERO = Decimal(0)


# --------------------------------------------------------------------------------------------
# Errors


class LedgerError(DomainError):
    code = "ledger_error"
    title = "Ledger error"


class InvalidEntry(LedgerError):
    """An entry or line that breaks a rule of double entry (shape, sign, places)."""

    code = "ledger_invalid_entry"
    http_status = 422
    title = "Invalid journal entry"


class UnbalancedEntry(InvalidEntry):
    """Debits and credits of an entry differ in a currency."""

    code = "ledger_unbalanced_entry"
    title = "Journal entry does not balance"


class SourceKeyConflict(LedgerError, Conflict):
    """A different entry was already posted under this source key."""

    code = "ledger_source_key_conflict"
    http_status = 409
    title = "Another journal entry holds this source key"


class AccountConflict(LedgerError, Conflict):
    """An account code is already in the chart with another type."""

    code = "ledger_account_conflict"
    http_status = 409
    title = "Account code already used with another type"


class AlreadyReversed(LedgerError, Conflict):
    code = "ledger_already_reversed"
    http_status = 409
    title = "Journal entry already reversed"


class UnknownAccount(LedgerError, NotFound):
    code = "ledger_unknown_account"
    http_status = 404
    title = "No such ledger account"


class UnknownEntry(LedgerError, NotFound):
    code = "ledger_unknown_entry"
    http_status = 404
    title = "No such journal entry"


# --------------------------------------------------------------------------------------------
# Accounts


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountType(StrEnum):
    """The five kinds of account; each grows on its normal side."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"

    @property
    def normal_side(self) -> Side:
        return Side.DEBIT if self in (AccountType.ASSET, AccountType.EXPENSE) else Side.CREDIT


@dataclass(frozen=True, slots=True)
class Account:
    """An account of the chart: a code, a name and a type.

    A *contra* account sits under its type but grows on the other side, like the loan-loss
    allowance: an asset account with a credit balance that is netted against the loans.
    """

    code: str
    name: str
    type: AccountType
    contra: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code) or len(self.code) > MAX_CODE:
            raise InvalidEntry(
                f"account code must be 1..{MAX_CODE} ASCII letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit; got {self.code!r}",
                account=str(self.code),
            )
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > MAX_NAME:
            raise InvalidEntry(
                f"account {self.code}: name must be 1..{MAX_NAME} characters", account=self.code
            )
        object.__setattr__(self, "type", AccountType(self.type))
        if not isinstance(self.contra, bool):
            raise InvalidEntry(f"account {self.code}: contra must be a bool", account=self.code)

    @property
    def normal_side(self) -> Side:
        side = self.type.normal_side
        if self.contra:
            return Side.CREDIT if side is Side.DEBIT else Side.DEBIT
        return side

    def signed(self, debit: Decimal, credit: Decimal) -> Decimal:
        """The balance of ``debit`` and ``credit`` totals, positive on the normal side."""
        return debit - credit if self.normal_side is Side.DEBIT else credit - debit

    def same_definition(self, other: Account) -> bool:
        """Same code, type and side (the name is only a label)."""
        return (self.code, self.type, self.contra) == (other.code, other.type, other.contra)


A = AccountType

# The lending chart. Codes follow the Ministry of Finance chart for financial enterprises
# (金融企业会计科目) where it has the account, with six-digit sub-accounts below it.

#: 1301 贷款 — loan principal outstanding. Per-product accounts: :func:`principal_receivable`.
LOAN_PRINCIPAL = Account("1301", "Loans - principal receivable", A.ASSET)
#: 113201 应收利息—贷款利息 — interest accrued and not yet paid.
INTEREST_RECEIVABLE = Account("113201", "Interest receivable - loans", A.ASSET)
#: 113202 应收利息—罚息 — penalty (overdue) interest accrued and not yet paid.
PENALTY_RECEIVABLE = Account("113202", "Penalty interest receivable - loans", A.ASSET)
#: 122101 其他应收款—应收费用 — fees charged and not yet paid.
FEE_RECEIVABLE = Account("122101", "Fees receivable - loans", A.ASSET)
#: 1304 贷款损失准备 — the allowance for loan losses, netted against the loans.
LOAN_LOSS_ALLOWANCE = Account("1304", "Loan loss allowance", A.ASSET, contra=True)
#: 2011 吸收存款 — the customers' settlement (deposit) accounts loans are paid into and from.
CUSTOMER_SETTLEMENT = Account("2011", "Customer settlement deposits", A.LIABILITY)
#: 224101 其他应付款—溢缴款 — money received beyond what a loan owes, held for the customer.
OVERPAYMENT = Account("224101", "Overpayments held for customers", A.LIABILITY)
#: 3001 清算资金往来 — disbursement clearing / suspense: paid out, not yet settled with the network.
CLEARING = Account("3001", "Disbursement clearing (suspense)", A.LIABILITY)
#: 601101 利息收入—贷款利息.
INTEREST_INCOME = Account("601101", "Interest income - loans", A.INCOME)
#: 601102 利息收入—罚息.
PENALTY_INCOME = Account("601102", "Penalty interest income - loans", A.INCOME)
#: 6021 手续费及佣金收入.
FEE_INCOME = Account("6021", "Fee and commission income - loans", A.INCOME)
#: 6301 营业外收入—核销贷款收回 — cash recovered on loans already written off.
RECOVERIES_INCOME = Account("6301", "Recoveries of loans written off", A.INCOME)
#: 670101 资产减值损失—贷款减值准备 — the charge that builds the allowance.
PROVISION_EXPENSE = Account("670101", "Loan impairment - provision charge", A.EXPENSE)
#: 670102 资产减值损失—贷款核销 — loans written off beyond the allowance used.
WRITE_OFF_EXPENSE = Account("670102", "Loan impairment - write-off loss", A.EXPENSE)

del A

#: Every account of the standard lending chart (per-product principal accounts come on top).
CHART: tuple[Account, ...] = (
    LOAN_PRINCIPAL,
    INTEREST_RECEIVABLE,
    PENALTY_RECEIVABLE,
    FEE_RECEIVABLE,
    LOAN_LOSS_ALLOWANCE,
    CUSTOMER_SETTLEMENT,
    OVERPAYMENT,
    CLEARING,
    INTEREST_INCOME,
    PENALTY_INCOME,
    FEE_INCOME,
    RECOVERIES_INCOME,
    PROVISION_EXPENSE,
    WRITE_OFF_EXPENSE,
)


def principal_receivable(product: str | None = None) -> Account:
    """The principal account for loans of ``product`` (``1301.<product>``), or ``1301`` itself."""
    if product is None:
        return LOAN_PRINCIPAL
    if not isinstance(product, str) or not _PRODUCT.fullmatch(product):
        raise InvalidEntry(f"product code must be ASCII letters, digits, '_' or '-'; got {product!r}")
    return Account(
        f"{LOAN_PRINCIPAL.code}.{product}", f"{LOAN_PRINCIPAL.name} ({product})", AccountType.ASSET
    )


# --------------------------------------------------------------------------------------------
# Lines and entries


def _units(value: object, side: str, code: str, currency: Currency) -> int:
    """``value`` in the currency's minor units; refuses floats, negatives and extra places."""
    if value is _ZERO:
        return 0
    if type(value) is not Decimal:
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        else:
            raise InvalidEntry(
                f"{side} on {code} must be a Decimal (or int), got {type(value).__name__} {value!r}",
                account=code,
                amount=repr(value),
            )
    assert isinstance(value, Decimal)
    if not value.is_finite():
        raise InvalidEntry(f"{side} on {code} must be finite, got {value}", account=code, amount=str(value))
    scaled = value.scaleb(currency.exponent)
    units = int(scaled)
    if units != scaled:
        raise InvalidEntry(
            f"{side} on {code} of {value} has more than {currency.exponent} decimal places for "
            f"{currency.code}; round it at its posting point first",
            account=code,
            amount=str(value),
        )
    if units < 0:
        raise InvalidEntry(
            f"{side} on {code} must not be negative, got {value}", account=code, amount=str(value)
        )
    return units


_ZEROS: dict[int, Decimal] = {}


def _zero(exponent: int) -> Decimal:
    return _ZEROS.setdefault(exponent, Decimal(0).scaleb(-exponent))


@dataclass(frozen=True, slots=True)
class Line:
    """One side of an entry: an amount debited *or* credited to an account.

    ``debit`` and ``credit`` are Decimals ≥ 0 with at most the currency's places (kept with
    exactly that many: ``5`` becomes ``5.00``); exactly one of them is positive. ``subledger``
    is an optional label (``"loan:L123"``) that balances can be summed by. Build lines with
    :func:`dr` and :func:`cr`.
    """

    account: Account
    debit: Decimal = _ZERO
    credit: Decimal = _ZERO
    subledger: str | None = None
    currency: Currency = CNY
    #: Signed amount in minor units: debit positive, credit negative.
    minor: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.account) is not Account:
            raise InvalidEntry(f"line account must be an Account, got {type(self.account).__name__}")
        code = self.account.code
        if type(self.currency) is not Currency:
            raise InvalidEntry(f"line on {code}: currency must be a Currency, got {self.currency!r}")
        debit = _units(self.debit, "debit", code, self.currency)
        credit = _units(self.credit, "credit", code, self.currency)
        if (debit > 0) == (credit > 0):
            raise InvalidEntry(
                f"line on {code} must have exactly one positive side, got debit {self.debit} and credit "
                f"{self.credit}",
                account=code,
            )
        sub = self.subledger
        if sub is not None and (
            type(sub) is not str or not sub or len(sub) > MAX_SUBLEDGER or sub != sub.strip()
        ):
            raise InvalidEntry(
                f"line on {code}: subledger must be None or 1..{MAX_SUBLEDGER} characters without "
                f"surrounding spaces, got {sub!r}",
                account=code,
            )
        # Amounts are kept with exactly the currency's places: 5 → 5.00.
        exponent = self.currency.exponent
        zero = _ZEROS.get(exponent)
        if zero is None:
            zero = _zero(exponent)
        if debit:
            object.__setattr__(self, "debit", Decimal(debit).scaleb(-exponent))
            object.__setattr__(self, "credit", zero)
        else:
            object.__setattr__(self, "debit", zero)
            object.__setattr__(self, "credit", Decimal(credit).scaleb(-exponent))
        object.__setattr__(self, "minor", debit or -credit)

    @property
    def side(self) -> Side:
        return Side.DEBIT if self.minor > 0 else Side.CREDIT

    @property
    def amount(self) -> Decimal:
        """The positive amount, whichever side it is on."""
        return self.debit if self.minor > 0 else self.credit

    def swapped(self) -> Line:
        """The same amount on the other side (the line of a reversal)."""
        return Line(self.account, self.credit, self.debit, self.subledger, self.currency)


def dr(account: Account, amount: Decimal, *, subledger: str | None = None, currency: Currency = CNY) -> Line:
    """A debit line."""
    return Line(account, amount, _ZERO, subledger, currency)


def cr(account: Account, amount: Decimal, *, subledger: str | None = None, currency: Currency = CNY) -> Line:
    """A credit line."""
    return Line(account, _ZERO, amount, subledger, currency)


#: What makes two postings the same: value date, the entry reversed, and the lines as a multiset.
Signature = tuple[date, str | None, tuple[tuple[str, str, str, int], ...]]


@dataclass(frozen=True, slots=True)
class Entry:
    """A balanced, immutable journal entry.

    ``source_key`` says what caused it and makes posting idempotent
    (``"accrual:L123:2025-07-01"``); ``value_date`` is the business date it counts for;
    ``lines`` may be given as any sequence and are kept as a tuple; ``reverses`` is the source
    key of the entry it reverses, if it is a reversal.
    """

    source_key: str
    value_date: date
    description: str
    lines: tuple[Line, ...]
    reverses: str | None = None

    def __post_init__(self) -> None:
        key = self.source_key
        if type(key) is not str or not key or len(key) > MAX_SOURCE_KEY or key != key.strip():
            raise InvalidEntry(
                f"source_key must be 1..{MAX_SOURCE_KEY} characters without surrounding spaces, got {key!r}"
            )
        if type(self.value_date) is not date:
            raise InvalidEntry(
                f"entry {key}: value_date must be a datetime.date, got {type(self.value_date).__name__}",
                source_key=key,
            )
        if type(self.description) is not str or len(self.description) > MAX_DESCRIPTION:
            raise InvalidEntry(
                f"entry {key}: description must be text of at most {MAX_DESCRIPTION} characters",
                source_key=key,
            )
        if self.reverses is not None and (type(self.reverses) is not str or not self.reverses):
            raise InvalidEntry(f"entry {key}: reverses must be a source key or None", source_key=key)
        if self.reverses == key:
            raise InvalidEntry(f"entry {key} cannot reverse itself", source_key=key)
        lines = self.lines if type(self.lines) is tuple else tuple(self.lines)
        object.__setattr__(self, "lines", lines)
        if len(lines) < 2:
            raise InvalidEntry(f"entry {key} needs at least two lines, got {len(lines)}", source_key=key)
        first = None
        total = 0
        mixed = False
        for line in lines:
            if type(line) is not Line:
                raise InvalidEntry(
                    f"entry {key}: lines must be Line values, got {type(line).__name__}", source_key=key
                )
            if first is None:
                first = line.currency
            elif line.currency is not first and line.currency != first:
                mixed = True
            total += line.minor
        if mixed:
            sums: dict[Currency, int] = {}
            for line in lines:
                sums[line.currency] = sums.get(line.currency, 0) + line.minor
            for currency, units in sums.items():
                if units:
                    self._unbalanced(currency)
        elif total:
            assert first is not None
            self._unbalanced(first)

    def _unbalanced(self, currency: Currency) -> None:
        debits = self.debits(currency)
        credits = self.credits(currency)
        difference = debits - credits
        raise UnbalancedEntry(
            f"entry {self.source_key} does not balance in {currency.code}: debits {debits}, "
            f"credits {credits}, difference {difference}",
            source_key=self.source_key,
            currency=currency.code,
            debits=str(debits),
            credits=str(credits),
            difference=str(difference),
        )

    def debits(self, currency: Currency = CNY) -> Decimal:
        units = sum(line.minor for line in self.lines if line.minor > 0 and line.currency == currency)
        return from_scaled(units, currency.exponent)

    def credits(self, currency: Currency = CNY) -> Decimal:
        units = -sum(line.minor for line in self.lines if line.minor < 0 and line.currency == currency)
        return from_scaled(units, currency.exponent)

    @property
    def currencies(self) -> tuple[Currency, ...]:
        return tuple(dict.fromkeys(line.currency for line in self.lines))

    def signature(self) -> Signature:
        """What makes two postings the same: value date, the entry reversed and the lines
        (account, subledger, currency, signed minor units) in any order; not the description."""
        lines = sorted((ln.account.code, ln.subledger or "", ln.currency.code, ln.minor) for ln in self.lines)
        return (self.value_date, self.reverses, tuple(lines))


#: Characters a subledger of a :class:`Spread` may not hold (it is written as delimited text).
_UNSAFE = frozenset("\t\n\r\\")


@dataclass(frozen=True, slots=True)
class Spread:
    """A balanced entry of one line per subledger on ``account``, all on ``side``, against one
    line on ``counter`` with their total: the shape of the daily accrual (each loan's interest
    receivable debited, interest income credited with the sum), kept as two columns instead of
    a :class:`Line` per subledger.

    ``amounts`` are whole minor units of ``currency``, each positive, one per subledger (a
    subledger may appear once). :meth:`entry` is the same posting as an :class:`Entry`; posting
    either under the same key is the same posting.
    """

    source_key: str
    value_date: date
    description: str
    account: Account
    counter: Account
    subledgers: tuple[str, ...]
    amounts: tuple[int, ...]
    side: Side = Side.DEBIT
    currency: Currency = CNY

    def __post_init__(self) -> None:
        key = self.source_key
        # The key, date and description follow the rules of an Entry (checked on a two-line one).
        Entry(key, self.value_date, self.description, (dr(self.account, _ONE), cr(self.counter, _ONE)))
        subledgers = tuple(self.subledgers)
        amounts = tuple(self.amounts)
        object.__setattr__(self, "subledgers", subledgers)
        object.__setattr__(self, "amounts", amounts)
        if type(self.side) is not Side or type(self.currency) is not Currency:
            raise InvalidEntry(f"spread {key}: side must be a Side and currency a Currency", source_key=key)
        if not subledgers or len(subledgers) != len(amounts):
            raise InvalidEntry(
                f"spread {key}: needs one amount per subledger and at least one, got {len(subledgers)} "
                f"subledgers and {len(amounts)} amounts",
                source_key=key,
            )
        if not all(type(a) is int for a in amounts) or min(amounts) <= 0:
            raise InvalidEntry(f"spread {key}: amounts must be positive whole minor units", source_key=key)
        if not all(type(x) is str for x in subledgers):
            raise InvalidEntry(f"spread {key}: subledgers must be text", source_key=key)
        longest = max(map(len, subledgers))
        joined = "".join(subledgers)
        if (
            min(map(len, subledgers)) < 1
            or longest > MAX_SUBLEDGER
            or any(c in joined for c in _UNSAFE)
            or any(x != x.strip() for x in subledgers)
        ):
            raise InvalidEntry(
                f"spread {key}: each subledger must be 1..{MAX_SUBLEDGER} characters without surrounding "
                "spaces, tabs, line breaks or backslashes",
                source_key=key,
            )
        if len(set(subledgers)) != len(subledgers):
            raise InvalidEntry(f"spread {key}: a subledger appears twice", source_key=key)

    @property
    def total(self) -> int:
        """The counter line's amount, in minor units."""
        return sum(self.amounts)

    def entry(self) -> Entry:
        """The same posting as an :class:`Entry` of ``len(subledgers) + 1`` lines."""
        exponent = self.currency.exponent
        many = dr if self.side is Side.DEBIT else cr
        one = cr if self.side is Side.DEBIT else dr
        lines = [
            many(self.account, from_scaled(a, exponent), subledger=x, currency=self.currency)
            for x, a in zip(self.subledgers, self.amounts, strict=True)
        ]
        lines.append(one(self.counter, from_scaled(self.total, exponent), currency=self.currency))
        return Entry(self.source_key, self.value_date, self.description, tuple(lines))


_ONE = Decimal(1)


def _entry(
    source_key: str, value_date: date, description: str | None, default: str, lines: list[Line]
) -> Entry:
    return Entry(source_key, value_date, default if description is None else description, tuple(lines))


def _is_number(value: object) -> bool:
    """A finite Decimal or an int: something that can be compared to zero (others are left to
    :class:`Line` to refuse with its message)."""
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(value: Decimal, what: str) -> None:
    if _is_number(value) and value <= 0:
        raise InvalidEntry(f"{what} must be positive, got {value}", amount=str(value))


def _parts(named: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Parts that are not zero; each must be ≥ 0 (checked again by :class:`Line`)."""
    kept: dict[str, Decimal] = {}
    for name, value in named.items():
        if _is_number(value):
            if value < 0:
                raise InvalidEntry(f"{name} must not be negative, got {value}", amount=str(value))
            if value == 0:
                continue
        kept[name] = value
    return kept


# --------------------------------------------------------------------------------------------
# Posting rules


def disbursement(
    *,
    source_key: str,
    value_date: date,
    subledger: str,
    amount: Decimal,
    principal_account: Account = LOAN_PRINCIPAL,
    paid_to: Account = CUSTOMER_SETTLEMENT,
    paid_to_subledger: str | None = None,
    description: str | None = None,
) -> Entry:
    """Loan paid out: Dr principal receivable, Cr the customer's settlement account (or
    :data:`CLEARING` when paid to an outside account)."""
    _positive(amount, "disbursed amount")
    return _entry(
        source_key,
        value_date,
        description,
        "Loan disbursed",
        [
            dr(principal_account, amount, subledger=subledger),
            cr(paid_to, amount, subledger=paid_to_subledger or subledger),
        ],
    )


def interest_accrual(
    *, source_key: str, value_date: date, subledger: str, amount: Decimal, description: str | None = None
) -> Entry:
    """Interest earned for a day or period: Dr interest receivable, Cr interest income."""
    _positive(amount, "accrued interest")
    return _entry(
        source_key,
        value_date,
        description,
        "Interest accrued",
        [
            dr(INTEREST_RECEIVABLE, amount, subledger=subledger),
            cr(INTEREST_INCOME, amount, subledger=subledger),
        ],
    )


def penalty_accrual(
    *, source_key: str, value_date: date, subledger: str, amount: Decimal, description: str | None = None
) -> Entry:
    """Penalty interest on overdue amounts: Dr penalty receivable, Cr penalty income."""
    _positive(amount, "accrued penalty")
    return _entry(
        source_key,
        value_date,
        description,
        "Penalty interest accrued",
        [
            dr(PENALTY_RECEIVABLE, amount, subledger=subledger),
            cr(PENALTY_INCOME, amount, subledger=subledger),
        ],
    )


def fee_charge(
    *, source_key: str, value_date: date, subledger: str, amount: Decimal, description: str | None = None
) -> Entry:
    """A fee charged to the loan: Dr fee receivable, Cr fee income."""
    _positive(amount, "fee")
    return _entry(
        source_key,
        value_date,
        description,
        "Fee charged",
        [dr(FEE_RECEIVABLE, amount, subledger=subledger), cr(FEE_INCOME, amount, subledger=subledger)],
    )


def repayment(
    *,
    source_key: str,
    value_date: date,
    subledger: str,
    principal: Decimal = _ZERO,
    interest: Decimal = _ZERO,
    penalty: Decimal = _ZERO,
    fee: Decimal = _ZERO,
    overpayment: Decimal = _ZERO,
    principal_account: Account = LOAN_PRINCIPAL,
    paid_from: Account = CUSTOMER_SETTLEMENT,
    paid_from_subledger: str | None = None,
    description: str | None = None,
) -> Entry:
    """A repayment as allocated by the waterfall: Dr the customer's settlement account with the
    total, Cr each receivable with its part, and any excess to :data:`OVERPAYMENT`.

    Parts that are zero are left out; at least one must be positive.
    """
    parts = _parts(
        {
            "principal": principal,
            "interest": interest,
            "penalty": penalty,
            "fee": fee,
            "overpayment": overpayment,
        }
    )
    if not parts:
        raise InvalidEntry(
            f"repayment {source_key} allocates nothing: every part is zero", source_key=source_key
        )
    accounts = {
        "principal": principal_account,
        "interest": INTEREST_RECEIVABLE,
        "penalty": PENALTY_RECEIVABLE,
        "fee": FEE_RECEIVABLE,
        "overpayment": OVERPAYMENT,
    }
    credits = [cr(accounts[name], value, subledger=subledger) for name, value in parts.items()]
    total = sum((line.credit for line in credits), _ZERO)
    return _entry(
        source_key,
        value_date,
        description,
        "Repayment",
        [dr(paid_from, total, subledger=paid_from_subledger or subledger), *credits],
    )


def write_off(
    *,
    source_key: str,
    value_date: date,
    subledger: str,
    principal: Decimal = _ZERO,
    interest: Decimal = _ZERO,
    penalty: Decimal = _ZERO,
    fee: Decimal = _ZERO,
    from_allowance: Decimal = _ZERO,
    principal_account: Account = LOAN_PRINCIPAL,
    description: str | None = None,
) -> Entry:
    """Write the loan off: Cr principal and each receivable with what is left on it; Dr the
    allowance with ``from_allowance`` (the provision already made for it) and the rest to
    :data:`WRITE_OFF_EXPENSE`.

    ``from_allowance`` may not exceed the total written off.
    """
    parts = _parts({"principal": principal, "interest": interest, "penalty": penalty, "fee": fee})
    if not parts:
        raise InvalidEntry(
            f"write-off {source_key} writes off nothing: every part is zero", source_key=source_key
        )
    accounts = {
        "principal": principal_account,
        "interest": INTEREST_RECEIVABLE,
        "penalty": PENALTY_RECEIVABLE,
        "fee": FEE_RECEIVABLE,
    }
    credits = [cr(accounts[name], value, subledger=subledger) for name, value in parts.items()]
    total = sum((line.credit for line in credits), _ZERO)
    used = _parts({"from_allowance": from_allowance}).get("from_allowance", _ZERO)
    if not _is_number(used):
        raise InvalidEntry(
            f"write-off {source_key}: from_allowance must be a finite Decimal, got {used!r}",
            source_key=source_key,
        )
    if used > total:
        raise InvalidEntry(
            f"write-off {source_key}: from_allowance {used} exceeds the {total} written off",
            source_key=source_key,
        )
    debits = []
    if used:
        debits.append(dr(LOAN_LOSS_ALLOWANCE, used, subledger=subledger))
    if total - used:
        debits.append(dr(WRITE_OFF_EXPENSE, total - used, subledger=subledger))
    return _entry(source_key, value_date, description, "Loan written off", [*debits, *credits])


def recovery(
    *,
    source_key: str,
    value_date: date,
    subledger: str,
    amount: Decimal,
    paid_from: Account = CUSTOMER_SETTLEMENT,
    paid_from_subledger: str | None = None,
    description: str | None = None,
) -> Entry:
    """Money collected on a loan already written off: Dr settlement, Cr recoveries income."""
    _positive(amount, "recovered amount")
    return _entry(
        source_key,
        value_date,
        description,
        "Recovery after write-off",
        [
            dr(paid_from, amount, subledger=paid_from_subledger or subledger),
            cr(RECOVERIES_INCOME, amount, subledger=subledger),
        ],
    )


def provision_charge(
    *, source_key: str, value_date: date, subledger: str, amount: Decimal, description: str | None = None
) -> Entry:
    """Build the allowance: Dr provision expense, Cr loan-loss allowance."""
    _positive(amount, "provision")
    return _entry(
        source_key,
        value_date,
        description,
        "Loan loss provision",
        [
            dr(PROVISION_EXPENSE, amount, subledger=subledger),
            cr(LOAN_LOSS_ALLOWANCE, amount, subledger=subledger),
        ],
    )


def provision_release(
    *, source_key: str, value_date: date, subledger: str, amount: Decimal, description: str | None = None
) -> Entry:
    """Release allowance no longer needed: Dr loan-loss allowance, Cr provision expense."""
    _positive(amount, "released provision")
    return _entry(
        source_key,
        value_date,
        description,
        "Loan loss provision released",
        [
            dr(LOAN_LOSS_ALLOWANCE, amount, subledger=subledger),
            cr(PROVISION_EXPENSE, amount, subledger=subledger),
        ],
    )


def reverse(entry: Entry, *, source_key: str, value_date: date, description: str | None = None) -> Entry:
    """The entry that undoes ``entry``: the same lines with debit and credit swapped.

    This is the only correction the ledger knows; the original stays as it was.
    """
    if type(entry) is not Entry:
        raise InvalidEntry(f"reverse takes an Entry, got {type(entry).__name__}")
    text = f"Reversal of {entry.source_key}"[:MAX_DESCRIPTION] if description is None else description
    return Entry(source_key, value_date, text, tuple(ln.swapped() for ln in entry.lines), entry.source_key)


# --------------------------------------------------------------------------------------------
# Balances


def account_balance(
    entries: Iterable[Entry],
    account_code: str,
    *,
    subledger: str | None = None,
    as_of: date | None = None,
    currency: Currency = CNY,
) -> Decimal:
    """Balance of an account over ``entries``, positive on its normal side (pure counterpart of
    the store's ``balance``); value dates up to and including ``as_of``."""
    account: Account | None = None
    units = 0
    for entry in entries:
        if as_of is not None and entry.value_date > as_of:
            continue
        for line in entry.lines:
            if line.account.code != account_code or line.currency != currency:
                continue
            if subledger is not None and line.subledger != subledger:
                continue
            account = line.account
            units += line.minor
    amount = from_scaled(units, currency.exponent)
    if account is None or account.normal_side is Side.DEBIT:
        return amount
    return -amount


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    account: Account
    currency: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        """Positive on the account's normal side."""
        return self.account.signed(self.debit, self.credit)


@dataclass(frozen=True, slots=True)
class TrialBalance:
    """Debit and credit totals per account and currency, up to and including ``as_of``."""

    as_of: date | None
    rows: tuple[TrialBalanceRow, ...]

    @classmethod
    def from_entries(cls, entries: Iterable[Entry], *, as_of: date | None = None) -> TrialBalance:
        totals: dict[tuple[str, str], list[Any]] = {}
        for entry in entries:
            if as_of is not None and entry.value_date > as_of:
                continue
            for line in entry.lines:
                key = (line.account.code, line.currency.code)
                slot = totals.get(key)
                if slot is None:
                    slot = totals[key] = [line.account, line.currency, 0, 0]
                if line.minor > 0:
                    slot[2] += line.minor
                else:
                    slot[3] -= line.minor
        rows = tuple(
            TrialBalanceRow(acc, cur.code, from_scaled(d, cur.exponent), from_scaled(c, cur.exponent))
            for (acc, cur, d, c) in (totals[k] for k in sorted(totals))
        )
        return cls(as_of, rows)

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per currency code: (total debits, total credits)."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for row in self.rows:
            d, c = out.get(row.currency, (_ZERO, _ZERO))
            out[row.currency] = (d + row.debit, c + row.credit)
        return out

    def difference(self, currency: str = CNY.code) -> Decimal:
        """Total debits minus total credits in ``currency``; zero when the books balance."""
        d, c = self.totals().get(currency, (_ZERO, _ZERO))
        return d - c

    @property
    def is_balanced(self) -> bool:
        return all(d == c for d, c in self.totals().values())

    def balance(self, account_code: str, currency: str = CNY.code) -> Decimal:
        """The account's balance, positive on its normal side (zero if it had no postings)."""
        for row in self.rows:
            if row.account.code == account_code and row.currency == currency:
                return row.balance
        return _ZERO
