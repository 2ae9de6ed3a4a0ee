"""The pure ledger: accounts, balanced entries, posting rules and balances, as worked examples."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory import ledger
from creditfactory.ledger import (
    CUSTOMER_SETTLEMENT,
    FEE_INCOME,
    FEE_RECEIVABLE,
    INTEREST_INCOME,
    INTEREST_RECEIVABLE,
    LOAN_LOSS_ALLOWANCE,
    LOAN_PRINCIPAL,
    OVERPAYMENT,
    PENALTY_INCOME,
    PENALTY_RECEIVABLE,
    PROVISION_EXPENSE,
    RECOVERIES_INCOME,
    WRITE_OFF_EXPENSE,
    Account,
    AccountType,
    Entry,
    InvalidEntry,
    Side,
    TrialBalance,
    UnbalancedEntry,
    account_balance,
    cr,
    dr,
)
from creditfactory.money import CNY, Currency

D = Decimal
LOAN = "loan:L0001"
USD = Currency("USD", 2)


def balances(entries: list[Entry]) -> dict[str, Decimal]:
    """Every account's balance on its normal side, leaving out accounts at zero."""
    trial = TrialBalance.from_entries(entries)
    return {row.account.code: row.balance for row in trial.rows if row.balance}


class TestAccounts:
    @pytest.mark.parametrize(
        ("account_type", "side"),
        [
            (AccountType.ASSET, Side.DEBIT),
            (AccountType.EXPENSE, Side.DEBIT),
            (AccountType.LIABILITY, Side.CREDIT),
            (AccountType.EQUITY, Side.CREDIT),
            (AccountType.INCOME, Side.CREDIT),
        ],
    )
    def test_each_type_grows_on_its_normal_side(self, account_type: AccountType, side: Side) -> None:
        assert account_type.normal_side is side
        assert Account("9999", "Test", account_type).normal_side is side

    def test_the_allowance_is_a_contra_asset_with_a_credit_balance(self) -> None:
        assert LOAN_LOSS_ALLOWANCE.type is AccountType.ASSET
        assert LOAN_LOSS_ALLOWANCE.normal_side is Side.CREDIT
        assert LOAN_LOSS_ALLOWANCE.signed(D("0.00"), D("500.00")) == D("500.00")

    def test_the_chart_has_every_account_lending_needs_once(self) -> None:
        codes = [a.code for a in ledger.CHART]
        assert len(codes) == len(set(codes)) == 14
        by_type = {t: {a.code for a in ledger.CHART if a.type is t} for t in AccountType}
        assert by_type[AccountType.ASSET] == {"1301", "113201", "113202", "122101", "1304"}
        assert by_type[AccountType.LIABILITY] == {"2011", "224101", "3001"}
        assert by_type[AccountType.INCOME] == {"601101", "601102", "6021", "6301"}
        assert by_type[AccountType.EXPENSE] == {"670101", "670102"}

    def test_principal_accounts_per_product(self) -> None:
        consumer = ledger.principal_receivable("CONSUMER")
        assert consumer.code == "1301.CONSUMER"
        assert consumer.type is AccountType.ASSET
        assert ledger.principal_receivable() is LOAN_PRINCIPAL
        with pytest.raises(InvalidEntry, match="product code"):
            ledger.principal_receivable("bad code")

    @pytest.mark.parametrize("code", ["", " 1301", "13 01", "1301/2", "-1301", "x" * 33])
    def test_refuses_bad_codes(self, code: str) -> None:
        with pytest.raises(InvalidEntry, match="account code"):
            Account(code, "Name", AccountType.ASSET)


class TestLine:
    def test_debit_and_credit_lines(self) -> None:
        debit = dr(INTEREST_RECEIVABLE, D("1.50"), subledger=LOAN)
        credit = cr(INTEREST_INCOME, D("1.50"), subledger=LOAN)
        assert (debit.side, debit.amount, debit.minor) == (Side.DEBIT, D("1.50"), 150)
        assert (credit.side, credit.amount, credit.minor) == (Side.CREDIT, D("1.50"), -150)
        assert credit.swapped() == dr(INTEREST_INCOME, D("1.50"), subledger=LOAN)

    @pytest.mark.parametrize(
        ("debit", "credit", "message"),
        [
            (D("0"), D("0"), "exactly one positive side"),
            (D("1.00"), D("1.00"), "exactly one positive side"),
            (D("-1.00"), D("0"), "must not be negative"),
            (D("1.005"), D("0"), "more than 2 decimal places"),
            (D("NaN"), D("0"), "finite"),
            (D("Infinity"), D("0"), "finite"),
            (1.5, D("0"), "must be a Decimal"),
            ("1.50", D("0"), "must be a Decimal"),
            (True, D("0"), "must be a Decimal"),
        ],
    )
    def test_refuses_amounts_that_are_not_one_positive_fen_amount(
        self, debit: object, credit: object, message: str
    ) -> None:
        with pytest.raises(InvalidEntry, match=message):
            ledger.Line(INTEREST_RECEIVABLE, debit, credit)  # type: ignore[arg-type]

    def test_whole_yuan_and_trailing_zeros_are_fen_amounts(self) -> None:
        assert dr(FEE_RECEIVABLE, 30).minor == 3000  # type: ignore[arg-type]
        assert dr(FEE_RECEIVABLE, D("30.000")).minor == 3000
        assert dr(FEE_RECEIVABLE, D("3E+1")).minor == 3000

    @pytest.mark.parametrize("subledger", ["", " loan:L1", "x" * 101, 7])
    def test_refuses_bad_subledgers(self, subledger: object) -> None:
        with pytest.raises(InvalidEntry, match="subledger"):
            dr(FEE_RECEIVABLE, D("1.00"), subledger=subledger)  # type: ignore[arg-type]


class TestEntry:
    def test_refuses_an_entry_with_one_line(self) -> None:
        with pytest.raises(InvalidEntry, match="at least two lines, got 1"):
            Entry("manual:1", date(2025, 7, 1), "One-legged", (dr(FEE_RECEIVABLE, D("1.00")),))

    def test_an_unbalanced_entry_names_its_key_and_the_difference(self) -> None:
        with pytest.raises(UnbalancedEntry) as caught:
            Entry(
                "accrual:L0001:2025-07-01",
                date(2025, 7, 1),
                "Interest",
                [dr(INTEREST_RECEIVABLE, D("2.19")), cr(INTEREST_INCOME, D("2.18"))],
            )
        error = caught.value
        assert "accrual:L0001:2025-07-01" in error.message
        assert "difference 0.01" in error.message
        assert error.details == {
            "source_key": "accrual:L0001:2025-07-01",
            "currency": "CNY",
            "debits": "2.19",
            "credits": "2.18",
            "difference": "0.01",
        }
        assert error.code == "ledger_unbalanced_entry"

    def test_balances_per_currency(self) -> None:
        mixed = [
            dr(CUSTOMER_SETTLEMENT, D("100.00")),
            cr(FEE_INCOME, D("100.00"), currency=USD),
        ]
        with pytest.raises(UnbalancedEntry, match="in CNY: debits 100.00, credits 0.00"):
            Entry("fx:1", date(2025, 7, 1), "Mixed", mixed)
        both = Entry(
            "fx:2",
            date(2025, 7, 1),
            "Both",
            [*mixed, cr(FEE_INCOME, D("100.00")), dr(CUSTOMER_SETTLEMENT, D("100.00"), currency=USD)],
        )
        assert both.currencies == (CNY, USD)
        assert (both.debits(USD), both.credits(USD)) == (D("100.00"), D("100.00"))

    def test_is_immutable(self) -> None:
        entry = ledger.fee_charge(
            source_key="fee:1", value_date=date(2025, 7, 1), subledger=LOAN, amount=D("5")
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.description = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.lines[0].debit = D("1.00")  # type: ignore[misc]
        assert isinstance(entry.lines, tuple)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"source_key": ""}, "source_key"),
            ({"source_key": " padded"}, "source_key"),
            ({"source_key": "k" * 201}, "source_key"),
            ({"value_date": datetime(2025, 7, 1, 9)}, "value_date must be a datetime.date"),
            ({"description": "x" * 501}, "description"),
            ({"reverses": "fee:1"}, "cannot reverse itself"),
        ],
    )
    def test_refuses_bad_headers(self, kwargs: dict[str, object], message: str) -> None:
        fields: dict[str, object] = {
            "source_key": "fee:1",
            "value_date": date(2025, 7, 1),
            "description": "Fee",
            "lines": (dr(FEE_RECEIVABLE, D("5.00")), cr(FEE_INCOME, D("5.00"))),
        }
        fields.update(kwargs)
        with pytest.raises(InvalidEntry, match=message):
            Entry(**fields)  # type: ignore[arg-type]

    def test_signature_ignores_line_order_and_description(self) -> None:
        lines = [dr(FEE_RECEIVABLE, D("5.00"), subledger=LOAN), cr(FEE_INCOME, D("5.00"), subledger=LOAN)]
        one = Entry("fee:1", date(2025, 7, 1), "Fee", lines)
        other = Entry("fee:1", date(2025, 7, 1), "Annual fee", lines[::-1])
        assert one.signature() == other.signature()
        later = Entry("fee:1", date(2025, 7, 2), "Fee", lines)
        assert one.signature() != later.signature()


class TestWorkedExamples:
    """A loan's life in the books: each step's entry, then the balances it leaves."""

    def test_disbursement_into_the_customers_settlement_account(self) -> None:
        entry = ledger.disbursement(
            source_key="disburse:L0001", value_date=date(2025, 7, 1), subledger=LOAN, amount=D("10000.00")
        )
        assert [(ln.account.code, ln.debit, ln.credit, ln.subledger) for ln in entry.lines] == [
            ("1301", D("10000.00"), D("0"), LOAN),
            ("2011", D("0"), D("10000.00"), LOAN),
        ]
        assert entry.description == "Loan disbursed"
        assert balances([entry]) == {"1301": D("10000.00"), "2011": D("10000.00")}

    def test_disbursement_through_clearing_to_a_per_product_account(self) -> None:
        consumer = ledger.principal_receivable("CONSUMER")
        entry = ledger.disbursement(
            source_key="disburse:L0002",
            value_date=date(2025, 7, 1),
            subledger="loan:L0002",
            amount=D("3000.00"),
            principal_account=consumer,
            paid_to=ledger.CLEARING,
            paid_to_subledger="payout:P9",
        )
        assert balances([entry]) == {"1301.CONSUMER": D("3000.00"), "3001": D("3000.00")}
        assert entry.lines[1].subledger == "payout:P9"

    def test_accruals_then_a_repayment_split_by_the_waterfall(self) -> None:
        day = date(2025, 7, 1)
        entries = [
            ledger.disbursement(
                source_key="disburse:L0001", value_date=day, subledger=LOAN, amount=D("10000.00")
            ),
            ledger.interest_accrual(
                source_key="accrual:L0001:2025-07-31",
                value_date=date(2025, 7, 31),
                subledger=LOAN,
                amount=D("65.75"),
            ),
            ledger.penalty_accrual(
                source_key="penalty:L0001:2025-08-05",
                value_date=date(2025, 8, 5),
                subledger=LOAN,
                amount=D("4.25"),
            ),
            ledger.fee_charge(
                source_key="fee:L0001:late", value_date=date(2025, 8, 5), subledger=LOAN, amount=D("30")
            ),
        ]
        assert balances(entries) == {
            "1301": D("10000.00"),
            "113201": D("65.75"),
            "113202": D("4.25"),
            "122101": D("30.00"),
            "2011": D("10000.00"),
            "601101": D("65.75"),
            "601102": D("4.25"),
            "6021": D("30.00"),
        }
        # The customer pays 950.00 into the settlement account, which the waterfall splits.
        paid = ledger.repayment(
            source_key="repay:L0001:R1",
            value_date=date(2025, 8, 6),
            subledger=LOAN,
            penalty=D("4.25"),
            fee=D("30.00"),
            interest=D("65.75"),
            principal=D("800.00"),
            overpayment=D("50.00"),
        )
        assert [(ln.account.code, ln.side, ln.amount) for ln in paid.lines] == [
            ("2011", Side.DEBIT, D("950.00")),
            ("1301", Side.CREDIT, D("800.00")),
            ("113201", Side.CREDIT, D("65.75")),
            ("113202", Side.CREDIT, D("4.25")),
            ("122101", Side.CREDIT, D("30.00")),
            ("224101", Side.CREDIT, D("50.00")),
        ]
        after = balances([*entries, paid])
        assert after == {
            "1301": D("9200.00"),
            "2011": D("9050.00"),
            "224101": D("50.00"),
            "601101": D("65.75"),
            "601102": D("4.25"),
            "6021": D("30.00"),
        }
        assert account_balance([*entries, paid], INTEREST_RECEIVABLE.code, subledger=LOAN) == D("0.00")
        assert account_balance([*entries, paid], LOAN_PRINCIPAL.code, as_of=date(2025, 8, 5)) == D("10000.00")

    def test_a_repayment_leaves_out_the_parts_that_are_zero(self) -> None:
        paid = ledger.repayment(
            source_key="repay:1", value_date=date(2025, 8, 6), subledger=LOAN, interest=D("12.00")
        )
        assert [ln.account for ln in paid.lines] == [CUSTOMER_SETTLEMENT, INTEREST_RECEIVABLE]
        with pytest.raises(InvalidEntry, match="allocates nothing"):
            ledger.repayment(source_key="repay:2", value_date=date(2025, 8, 6), subledger=LOAN)
        with pytest.raises(InvalidEntry, match="principal must not be negative"):
            ledger.repayment(
                source_key="repay:3",
                value_date=date(2025, 8, 6),
                subledger=LOAN,
                principal=D("-1"),
                fee=D("2"),
            )

    def test_provision_write_off_then_recovery(self) -> None:
        day = date(2025, 12, 31)
        history = [
            ledger.disbursement(
                source_key="disburse:L0001", value_date=date(2025, 7, 1), subledger=LOAN, amount=D("9200")
            ),
            ledger.interest_accrual(
                source_key="accrual:L0001", value_date=date(2025, 9, 30), subledger=LOAN, amount=D("12")
            ),
            ledger.provision_charge(
                source_key="provision:L0001:Q3",
                value_date=date(2025, 9, 30),
                subledger=LOAN,
                amount=D("5000"),
            ),
        ]
        assert balances(history)["1304"] == D("5000.00")
        written = ledger.write_off(
            source_key="writeoff:L0001",
            value_date=day,
            subledger=LOAN,
            principal=D("9200.00"),
            interest=D("12.00"),
            from_allowance=D("5000.00"),
        )
        assert [(ln.account.code, ln.side, ln.amount) for ln in written.lines] == [
            ("1304", Side.DEBIT, D("5000.00")),
            ("670102", Side.DEBIT, D("4212.00")),
            ("1301", Side.CREDIT, D("9200.00")),
            ("113201", Side.CREDIT, D("12.00")),
        ]
        after_write_off = balances([*history, written])
        assert after_write_off == {
            "2011": D("9200.00"),
            "601101": D("12.00"),
            "670101": D("5000.00"),
            "670102": D("4212.00"),
        }
        recovered = ledger.recovery(
            source_key="recovery:L0001:1", value_date=date(2026, 3, 1), subledger=LOAN, amount=D("1000.00")
        )
        assert [(ln.account, ln.side) for ln in recovered.lines] == [
            (CUSTOMER_SETTLEMENT, Side.DEBIT),
            (RECOVERIES_INCOME, Side.CREDIT),
        ]
        final = balances([*history, written, recovered])
        assert final["6301"] == D("1000.00")
        assert final["2011"] == D("8200.00")
        assert TrialBalance.from_entries([*history, written, recovered]).is_balanced

    def test_write_off_without_allowance_goes_all_to_loss(self) -> None:
        written = ledger.write_off(
            source_key="writeoff:L9",
            value_date=date(2025, 12, 31),
            subledger=LOAN,
            principal=D("100"),
            penalty=D("3"),
        )
        assert [(ln.account, ln.amount) for ln in written.lines] == [
            (WRITE_OFF_EXPENSE, D("103.00")),
            (LOAN_PRINCIPAL, D("100")),
            (PENALTY_RECEIVABLE, D("3")),
        ]
        with pytest.raises(InvalidEntry, match="exceeds the 103.00 written off"):
            ledger.write_off(
                source_key="writeoff:L9",
                value_date=date(2025, 12, 31),
                subledger=LOAN,
                principal=D("100"),
                penalty=D("3"),
                from_allowance=D("103.01"),
            )

    def test_provision_release(self) -> None:
        charged = ledger.provision_charge(
            source_key="p:1", value_date=date(2025, 9, 30), subledger=LOAN, amount=D("80")
        )
        released = ledger.provision_release(
            source_key="p:2", value_date=date(2025, 10, 31), subledger=LOAN, amount=D("30")
        )
        assert balances([charged, released]) == {"1304": D("50.00"), "670101": D("50.00")}
        assert (
            released.lines[0].account is LOAN_LOSS_ALLOWANCE
            and released.lines[1].account is PROVISION_EXPENSE
        )

    def test_a_wrong_accrual_is_reversed_not_edited(self) -> None:
        wrong = ledger.interest_accrual(
            source_key="accrual:L0001:2025-07-02",
            value_date=date(2025, 7, 2),
            subledger=LOAN,
            amount=D("21.90"),
        )
        undo = ledger.reverse(
            wrong, source_key="reverse:accrual:L0001:2025-07-02", value_date=date(2025, 7, 3)
        )
        right = ledger.interest_accrual(
            source_key="accrual:L0001:2025-07-02:v2",
            value_date=date(2025, 7, 3),
            subledger=LOAN,
            amount=D("2.19"),
        )
        assert undo.reverses == wrong.source_key
        assert undo.description == "Reversal of accrual:L0001:2025-07-02"
        assert [(ln.account, ln.side, ln.amount) for ln in undo.lines] == [
            (INTEREST_RECEIVABLE, Side.CREDIT, D("21.90")),
            (INTEREST_INCOME, Side.DEBIT, D("21.90")),
        ]
        assert balances([wrong, undo]) == {}
        assert balances([wrong, undo, right]) == {"113201": D("2.19"), "601101": D("2.19")}
        # The books as of the day of the mistake still show it: history is not rewritten.
        assert account_balance([wrong, undo, right], INTEREST_INCOME.code, as_of=date(2025, 7, 2)) == D(
            "21.90"
        )

    def test_posting_rules_refuse_zero_amounts(self) -> None:
        with pytest.raises(InvalidEntry, match="accrued interest must be positive, got 0"):
            ledger.interest_accrual(
                source_key="a", value_date=date(2025, 7, 1), subledger=LOAN, amount=D("0")
            )
        with pytest.raises(InvalidEntry, match="must be finite"):
            ledger.recovery(source_key="r", value_date=date(2025, 7, 1), subledger=LOAN, amount=D("NaN"))
        with pytest.raises(InvalidEntry, match="from_allowance must be a finite Decimal"):
            ledger.write_off(
                source_key="w",
                value_date=date(2025, 7, 1),
                subledger=LOAN,
                principal=D(1),
                from_allowance=D("NaN"),
            )
        with pytest.raises(InvalidEntry, match="disbursed amount must be positive"):
            ledger.disbursement(source_key="d", value_date=date(2025, 7, 1), subledger=LOAN, amount=D("-5"))

    def test_trial_balance_as_of_a_date(self) -> None:
        entries = [
            ledger.interest_accrual(
                source_key=f"a:{d}", value_date=date(2025, 7, d), subledger=LOAN, amount=D("1.00")
            )
            for d in range(1, 11)
        ]
        trial = TrialBalance.from_entries(entries, as_of=date(2025, 7, 4))
        assert trial.balance(INTEREST_INCOME.code) == D("4.00")
        assert trial.balance(PENALTY_INCOME.code) == D("0")
        assert trial.totals() == {"CNY": (D("4.00"), D("4.00"))}
        assert trial.is_balanced and trial.difference() == 0
        assert OVERPAYMENT.code not in {row.account.code for row in trial.rows}


# --------------------------------------------------------------------------------------------
# Properties

ACCOUNTS = st.sampled_from(ledger.CHART)
FEN = st.integers(min_value=1, max_value=10**11)


@st.composite
def balanced_entries(draw: st.DrawFn, key: str = "e") -> Entry:
    """A balanced entry: debits on random accounts, their total cut into random credit parts."""
    debits = draw(st.lists(st.tuples(ACCOUNTS, FEN), min_size=1, max_size=4))
    total = sum(units for _, units in debits)
    cuts = sorted(
        draw(st.sets(st.integers(min_value=1, max_value=total - 1), max_size=3)) if total > 1 else set()
    )
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    credit_accounts = draw(st.lists(ACCOUNTS, min_size=len(parts), max_size=len(parts)))
    subledger = draw(st.sampled_from([None, "loan:L1", "loan:L2"]))
    lines = [dr(account, D(units).scaleb(-2), subledger=subledger) for account, units in debits]
    lines += [
        cr(account, D(units).scaleb(-2), subledger=subledger)
        for account, units in zip(credit_accounts, parts, strict=True)
    ]
    order = draw(st.permutations(range(len(lines))))
    day = draw(st.dates(min_value=date(2025, 1, 1), max_value=date(2025, 12, 31)))
    return Entry(f"{key}:{draw(st.uuids())}", day, "generated", [lines[i] for i in order])


class TestProperties:
    @given(st.lists(balanced_entries(), max_size=30))
    @settings(max_examples=200)
    def test_any_set_of_balanced_entries_keeps_the_trial_balance_at_zero(self, entries: list[Entry]) -> None:
        trial = TrialBalance.from_entries(entries)
        assert trial.is_balanced
        assert trial.difference() == 0
        debits, credits = trial.totals().get("CNY", (D(0), D(0)))
        assert debits == credits == sum((e.debits() for e in entries), D(0))
        # Assets + expenses = liabilities + equity + income, on normal-side balances.
        left = sum(
            (r.account.signed(r.debit, r.credit) for r in trial.rows if r.account.normal_side is Side.DEBIT),
            D(0),
        )
        right = sum(
            (r.account.signed(r.debit, r.credit) for r in trial.rows if r.account.normal_side is Side.CREDIT),
            D(0),
        )
        assert left == right

    @given(st.lists(balanced_entries(), min_size=1, max_size=20), st.data())
    @settings(max_examples=200)
    def test_a_reversal_returns_every_balance_to_before(
        self, entries: list[Entry], data: st.DataObject
    ) -> None:
        target = data.draw(st.sampled_from(entries))
        undo = ledger.reverse(target, source_key=f"reverse:{target.source_key}", value_date=target.value_date)
        without = [e for e in entries if e is not target]
        codes = {ln.account.code for e in entries for ln in e.lines}
        for code in codes:
            for sub in (None, "loan:L1", "loan:L2"):
                assert account_balance([*entries, undo], code, subledger=sub) == account_balance(
                    without, code, subledger=sub
                )
        assert ledger.reverse(undo, source_key="again", value_date=target.value_date).lines == target.lines

    @given(balanced_entries(), st.integers(min_value=-(10**6), max_value=10**6).filter(bool), st.data())
    @settings(max_examples=200)
    def test_unbalanced_entries_are_refused_naming_the_difference(
        self, entry: Entry, delta: int, data: st.DataObject
    ) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(entry.lines) - 1))
        line = entry.lines[index]
        units = abs(line.minor) + delta
        if units <= 0:
            units = abs(line.minor) + abs(delta)
            delta = abs(delta)
        changed = dataclasses.replace(
            line,
            debit=D(units).scaleb(-2) if line.minor > 0 else D(0),
            credit=D(units).scaleb(-2) if line.minor < 0 else D(0),
        )
        lines = list(entry.lines)
        lines[index] = changed
        expected = D(delta if line.minor > 0 else -delta).scaleb(-2)
        with pytest.raises(UnbalancedEntry) as caught:
            Entry(entry.source_key, entry.value_date, entry.description, lines)
        assert caught.value.details["source_key"] == entry.source_key
        assert D(caught.value.details["difference"]) == expected
        assert f"difference {expected}" in caught.value.message
