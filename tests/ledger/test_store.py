"""The journal at rest, on SQLite and PostgreSQL: posting, idempotency, balances, guards, bulk."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from creditfactory import ledger
from creditfactory.bootstrap import Container
from creditfactory.ledger import (
    CUSTOMER_SETTLEMENT,
    INTEREST_INCOME,
    INTEREST_RECEIVABLE,
    LOAN_PRINCIPAL,
    Account,
    AccountType,
    Entry,
    PostingReport,
    TrialBalance,
    account_balance,
    cr,
    dr,
)
from creditfactory.ledger.store import LedgerEntry, LedgerEntryLine

D = Decimal
DAY = date(2025, 7, 1)


def disbursed(loan: str = "L0001", amount: str = "10000.00", day: date = DAY) -> Entry:
    return ledger.disbursement(
        source_key=f"disburse:{loan}", value_date=day, subledger=f"loan:{loan}", amount=D(amount)
    )


def accrued(loan: str = "L0001", amount: str = "2.19", day: date = DAY) -> Entry:
    return ledger.interest_accrual(
        source_key=f"accrual:{loan}:{day}", value_date=day, subledger=f"loan:{loan}", amount=D(amount)
    )


def post(container: Container, *entries: Entry) -> list[int]:
    with container.uow() as uow:
        ids = [ledger.post(uow.session, e, now=container.clock.now()) for e in entries]
        uow.commit()
    return ids


def count(container: Container, model: type[LedgerEntry] | type[LedgerEntryLine]) -> int:
    with container.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def is_postgres(container: Container) -> bool:
    return container.engine.dialect.name == "postgresql"


def random_history(seed: int, loans: int, days: int) -> list[Entry]:
    """Disbursements, daily accruals, some repayments and a reversal, over ``loans`` loans."""
    rng = random.Random(seed)
    entries: list[Entry] = []
    for n in range(loans):
        loan = f"L{n:04d}"
        sub = f"loan:{loan}"
        entries.append(disbursed(loan, f"{rng.randint(1_000, 50_000)}.00"))
        for d in range(days):
            day = DAY + timedelta(days=d)
            entries.append(accrued(loan, f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}", day))
            if rng.random() < 0.1:
                entries.append(
                    ledger.repayment(
                        source_key=f"repay:{loan}:{day}",
                        value_date=day,
                        subledger=sub,
                        principal=D(rng.randint(1, 500)),
                        interest=D(rng.randint(0, 5)),
                    )
                )
        entries.append(
            ledger.reverse(entries[-1], source_key=f"reverse:{loan}", value_date=DAY + timedelta(days=days))
        )
    return entries


class TestChart:
    def test_ensure_chart_seeds_once(self, container: Container) -> None:
        with container.uow() as uow:
            assert ledger.ensure_chart(uow.session) == len(ledger.CHART)
            assert ledger.ensure_chart(uow.session) == 0
            uow.commit()
        with container.uow() as uow:
            assert ledger.ensure_chart(uow.session) == 0
            assert ledger.list_accounts(uow.session) == sorted(ledger.CHART, key=lambda a: a.code)
            assert ledger.get_account(uow.session, "1304") == ledger.LOAN_LOSS_ALLOWANCE
            assert ledger.get_account(uow.session, "9999") is None

    def test_a_code_cannot_change_type(self, container: Container) -> None:
        with container.uow() as uow:
            ledger.ensure_chart(uow.session)
            with pytest.raises(ledger.AccountConflict, match="1301 is in the chart as asset, not liability"):
                ledger.ensure_accounts(uow.session, [Account("1301", "Loans", AccountType.LIABILITY)])
            with pytest.raises(ledger.AccountConflict, match="asset \\(contra\\)"):
                ledger.post(
                    uow.session,
                    Entry(
                        "manual:1",
                        DAY,
                        "Contra clash",
                        [
                            dr(Account("1301", "Loans", AccountType.ASSET, contra=True), D(1)),
                            cr(INTEREST_INCOME, D(1)),
                        ],
                    ),
                    now=container.clock.now(),
                )

    def test_posting_adds_the_accounts_it_names(self, container: Container) -> None:
        consumer = ledger.principal_receivable("CONSUMER")
        entry = ledger.disbursement(
            source_key="disburse:L7",
            value_date=DAY,
            subledger="loan:L7",
            amount=D("800"),
            principal_account=consumer,
        )
        post(container, entry)
        with container.uow() as uow:
            assert ledger.get_account(uow.session, "1301.CONSUMER") == consumer
            assert ledger.balance(uow.session, consumer.code) == D("800.00")


class TestPost:
    def test_posts_and_reads_back_the_same_entry(self, container: Container) -> None:
        entry = ledger.repayment(
            source_key="repay:L0001:1",
            value_date=DAY,
            subledger="loan:L0001",
            principal=D("100.00"),
            interest=D("2.19"),
            penalty=D("0.50"),
        )
        [entry_id] = post(container, entry)
        with container.uow() as uow:
            assert ledger.get_entry(uow.session, "repay:L0001:1") == entry
            assert ledger.get_entry(uow.session, "repay:L0001:2") is None
            row = uow.session.get(LedgerEntry, entry_id)
            assert row is not None
            assert row.posted_at == container.clock.now()
            assert row.value_date == DAY
            lines = uow.session.scalars(
                select(LedgerEntryLine).where(LedgerEntryLine.entry_id == entry_id)
            ).all()
            assert sorted((ln.account_code, ln.debit, ln.credit) for ln in lines) == [
                ("113201", D("0.00"), D("2.19")),
                ("113202", D("0.00"), D("0.50")),
                ("1301", D("0.00"), D("100.00")),
                ("2011", D("102.69"), D("0.00")),
            ]
            assert {ln.value_date for ln in lines} == {DAY}

    def test_reposting_the_same_source_key_returns_the_first_id(self, container: Container) -> None:
        [first] = post(container, accrued())
        [again] = post(container, accrued())
        renamed = Entry(accrued().source_key, DAY, "Another description", accrued().lines[::-1])
        [renamed_id] = post(container, renamed)
        assert first == again == renamed_id
        assert count(container, LedgerEntry) == 1
        assert count(container, LedgerEntryLine) == 2

    def test_a_different_entry_under_a_used_source_key_is_refused(self, container: Container) -> None:
        post(container, accrued(amount="2.19"))
        with pytest.raises(
            ledger.SourceKeyConflict, match="accrual:L0001:2025-07-01 is already posted with different lines"
        ):
            post(container, accrued(amount="2.20"))
        moved = Entry(accrued().source_key, DAY + timedelta(days=1), "Interest", accrued().lines)
        with pytest.raises(ledger.SourceKeyConflict, match="value date 2025-07-01"):
            post(container, moved)
        assert count(container, LedgerEntry) == 1

    def test_reversal_links_to_the_original_once(self, container: Container) -> None:
        original = accrued(amount="21.90")
        undo = ledger.reverse(original, source_key="reverse:1", value_date=DAY + timedelta(days=1))
        first_id, undo_id = post(container, original, undo)
        with container.uow() as uow:
            row = uow.session.get(LedgerEntry, undo_id)
            assert row is not None and row.reverses_entry_id == first_id
            assert ledger.balance(uow.session, INTEREST_INCOME.code) == D("0.00")
            assert ledger.balance(uow.session, INTEREST_INCOME.code, as_of=DAY) == D("21.90")
            assert ledger.get_entry(uow.session, "reverse:1") == undo
        assert post(container, undo) == [undo_id]
        twice = ledger.reverse(original, source_key="reverse:2", value_date=DAY + timedelta(days=2))
        with pytest.raises(ledger.AlreadyReversed, match="already reversed by reverse:1"):
            post(container, twice)
        with pytest.raises(ledger.UnknownEntry, match="reverses accrual:L0009"):
            post(container, ledger.reverse(accrued("L0009"), source_key="reverse:3", value_date=DAY))

    def test_nothing_stays_when_the_unit_of_work_rolls_back(self, container: Container) -> None:
        with container.uow() as uow:
            ledger.post(uow.session, disbursed(), now=container.clock.now())
        assert count(container, LedgerEntry) == 0
        assert count(container, LedgerEntryLine) == 0

    def test_refuses_a_naive_posting_time(self, container: Container) -> None:
        with container.uow() as uow, pytest.raises(ValueError, match="aware"):
            ledger.post(uow.session, accrued(), now=container.clock.now().replace(tzinfo=None))


class TestBalances:
    def test_balances_by_subledger_in_sql_equal_a_python_sum(self, container: Container) -> None:
        history = random_history(seed=7, loans=12, days=20)
        with container.uow() as uow:
            for entry in history:
                ledger.post(uow.session, entry, now=container.clock.now())
            uow.commit()
        loans = sorted({ln.subledger for e in history for ln in e.lines if ln.subledger})
        as_of = DAY + timedelta(days=9)
        with container.uow() as uow:
            for account in (LOAN_PRINCIPAL, INTEREST_RECEIVABLE, INTEREST_INCOME, CUSTOMER_SETTLEMENT):
                by_loan = ledger.balances_by_subledger(uow.session, account.code)
                assert by_loan == {
                    sub: account_balance(history, account.code, subledger=sub) for sub in loans
                }
                assert list(by_loan) == loans
                earlier = ledger.balances_by_subledger(uow.session, account, as_of=as_of)
                assert earlier == {
                    sub: account_balance(history, account.code, subledger=sub, as_of=as_of) for sub in loans
                }
                assert ledger.balance(uow.session, account.code) == account_balance(history, account.code)
                assert ledger.balance(uow.session, account.code, "loan:L0003", as_of) == account_balance(
                    history, account.code, subledger="loan:L0003", as_of=as_of
                )
            assert ledger.balance(uow.session, LOAN_PRINCIPAL.code) > 0
            assert ledger.balance(uow.session, INTEREST_INCOME.code) > 0  # credit-normal, shown positive

    def test_trial_balance_is_zero_after_many_postings_and_matches_the_entries(
        self, container: Container
    ) -> None:
        history = random_history(seed=11, loans=25, days=30)
        with container.uow() as uow:
            report = ledger.post_many(uow.session, history[: len(history) // 2], now=container.clock.now())
            for entry in history[len(history) // 2 :]:
                ledger.post(uow.session, entry, now=container.clock.now())
            uow.commit()
        assert report.posted == len(history) // 2
        with container.uow() as uow:
            trial = ledger.trial_balance(uow.session)
            assert trial.is_balanced and trial.difference() == 0
            assert trial == TrialBalance.from_entries(history)
            as_of = DAY + timedelta(days=5)
            assert ledger.trial_balance(uow.session, as_of) == TrialBalance.from_entries(history, as_of=as_of)
            assert ledger.check_trial_balance(uow.session, as_of=as_of).is_balanced

    def test_unknown_accounts_are_named(self, container: Container) -> None:
        with container.uow() as uow:
            with pytest.raises(ledger.UnknownAccount, match="no ledger account '9999'"):
                ledger.balance(uow.session, "9999")
            with pytest.raises(ledger.UnknownAccount):
                ledger.balances_by_subledger(uow.session, "9999")

    def test_list_entries_of_a_subledger(self, container: Container) -> None:
        history = [disbursed("L1"), accrued("L1"), accrued("L2"), accrued("L1", day=DAY + timedelta(days=1))]
        post(container, *history)
        with container.uow() as uow:
            assert ledger.list_entries(uow.session, subledger="loan:L1") == [
                history[0],
                history[1],
                history[3],
            ]
            assert ledger.list_entries(uow.session, subledger="loan:L1", as_of=DAY) == history[:2]


class TestPostMany:
    def test_skips_keys_already_posted_and_refuses_changed_ones(self, container: Container) -> None:
        post(container, accrued("L1"))
        batch = [accrued("L1"), accrued("L2"), accrued("L2"), accrued("L3")]
        with container.uow() as uow:
            report = ledger.post_many(uow.session, iter(batch), now=container.clock.now(), chunk_size=2)
            uow.commit()
        assert report == PostingReport(posted=2, skipped=2)
        assert count(container, LedgerEntry) == 3
        with container.uow() as uow:
            with pytest.raises(ledger.SourceKeyConflict, match="accrual:L3:2025-07-01"):
                ledger.post_many(
                    uow.session, [accrued("L4"), accrued("L3", amount="9.99")], now=container.clock.now()
                )
            with pytest.raises(ledger.SourceKeyConflict, match="appears twice in the batch"):
                ledger.post_many(
                    uow.session, [accrued("L5"), accrued("L5", amount="1.00")], now=container.clock.now()
                )

    def test_reversals_within_a_batch(self, container: Container) -> None:
        original = accrued("L1")
        undo = ledger.reverse(original, source_key="reverse:L1", value_date=DAY)
        with container.uow() as uow:
            assert ledger.post_many(uow.session, [original, undo], now=container.clock.now()).posted == 2
            uow.commit()
        with container.uow() as uow:
            assert ledger.get_entry(uow.session, "reverse:L1") == undo
            assert ledger.balance(uow.session, INTEREST_RECEIVABLE.code) == 0
            again = ledger.reverse(original, source_key="reverse:L1:again", value_date=DAY)
            with pytest.raises(ledger.AlreadyReversed):
                ledger.post_many(uow.session, [again], now=container.clock.now())
        late = accrued("L2")
        early_undo = ledger.reverse(late, source_key="reverse:L2", value_date=DAY)
        with container.uow() as uow, pytest.raises(ledger.InvalidEntry, match="comes before the entry"):
            ledger.post_many(uow.session, [early_undo, late], now=container.clock.now())

    @pytest.mark.slow
    def test_hundred_thousand_entries(self, container: Container) -> None:
        n = 100_000

        def batch() -> Iterator[Entry]:
            for i in range(n):
                yield accrued(f"L{i:06d}", f"{1 + i % 500}.{i % 100:02d}")

        expected = sum((D(f"{1 + i % 500}.{i % 100:02d}") for i in range(n)), D(0))
        with container.uow() as uow:
            assert ledger.post_many(uow.session, batch(), now=container.clock.now()) == PostingReport(n, 0)
            uow.commit()
        assert count(container, LedgerEntry) == n
        assert count(container, LedgerEntryLine) == 2 * n
        with container.uow() as uow:
            assert ledger.post_many(uow.session, batch(), now=container.clock.now()) == PostingReport(0, n)
            trial = ledger.check_trial_balance(uow.session, as_of=DAY)
            assert trial.balance(INTEREST_RECEIVABLE.code) == trial.balance(INTEREST_INCOME.code) == expected
            assert ledger.balance(uow.session, INTEREST_INCOME.code, "loan:L012345") == D("346.45")
            by_loan = ledger.balances_by_subledger(uow.session, INTEREST_RECEIVABLE.code)
            assert len(by_loan) == n and sum(by_loan.values()) == expected


def insert_raw_entry(conn: sa.Connection, entry_id: int, key: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO ledger_entry (id, source_key, value_date, posted_at, description) "
            "VALUES (:id, :key, '2025-07-01', '2025-07-01 10:00:00', 'raw')"
        ),
        {"id": entry_id, "key": key},
    )


def insert_raw_line(conn: sa.Connection, entry_id: int, account: str, debit: int, credit: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO ledger_entry_line (entry_id, account_code, subledger, currency, debit, credit, value_date) "
            "VALUES (:entry, :account, NULL, 'CNY', :debit, :credit, '2025-07-01')"
        ),
        {"entry": entry_id, "account": account, "debit": debit, "credit": credit},
    )


class TestGuards:
    @pytest.fixture(autouse=True)
    def chart(self, container: Container) -> None:
        with container.uow() as uow:
            ledger.ensure_chart(uow.session)
            uow.commit()

    def test_postgres_refuses_an_unbalanced_entry_at_commit(self, container: Container) -> None:
        if not is_postgres(container):
            pytest.skip("the balance trigger is PostgreSQL's; SQLite relies on the trial-balance check")
        with container.engine.connect() as conn:
            insert_raw_entry(conn, 900_001, "raw:unbalanced")
            insert_raw_line(conn, 900_001, "113201", 219, 0)
            insert_raw_line(conn, 900_001, "601101", 0, 218)  # each statement is accepted: the check waits
            with pytest.raises(
                sa.exc.IntegrityError, match=r"ledger entry 900001 \(raw:unbalanced\) does not balance in CNY"
            ):
                conn.commit()
        assert count(container, LedgerEntry) == 0

    def test_postgres_accepts_a_balanced_entry_written_line_by_line(self, container: Container) -> None:
        if not is_postgres(container):
            pytest.skip("the balance trigger is PostgreSQL's")
        with container.engine.connect() as conn:
            insert_raw_entry(conn, 900_002, "raw:balanced")
            insert_raw_line(conn, 900_002, "113201", 219, 0)
            insert_raw_line(conn, 900_002, "601101", 0, 219)
            conn.commit()
        with container.uow() as uow:
            assert ledger.balance(uow.session, INTEREST_INCOME.code) == D("2.19")

    def test_postgres_refuses_updates_and_partial_deletes(self, container: Container) -> None:
        if not is_postgres(container):
            pytest.skip("the immutability trigger is PostgreSQL's")
        [entry_id] = post(container, accrued())
        with container.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError, match="never updated"):
            conn.execute(
                sa.text("UPDATE ledger_entry_line SET debit = 1 WHERE entry_id = :id AND debit > 0"),
                {"id": entry_id},
            )
        with container.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError, match="never updated"):
            conn.execute(
                sa.text("UPDATE ledger_entry SET description = 'x' WHERE id = :id"), {"id": entry_id}
            )
        with container.engine.connect() as conn:
            conn.execute(
                sa.text("DELETE FROM ledger_entry_line WHERE entry_id = :id AND debit > 0"), {"id": entry_id}
            )
            with pytest.raises(sa.exc.IntegrityError, match="does not balance"):
                conn.commit()

    def test_a_line_needs_an_existing_entry_and_account(self, container: Container) -> None:
        with container.engine.connect() as conn:
            insert_raw_entry(conn, 900_020, "raw:refs")
            with pytest.raises(sa.exc.IntegrityError, match="account|does not exist"):
                insert_raw_line(conn, 900_020, "999999", 5, 0)
            conn.rollback()
        with (
            container.engine.connect() as conn,
            pytest.raises(sa.exc.IntegrityError, match="entry|does not exist"),
        ):
            insert_raw_line(conn, 900_021, "113201", 5, 0)
        assert count(container, LedgerEntryLine) == 0

    def test_an_entry_or_account_with_lines_cannot_be_deleted(self, container: Container) -> None:
        [entry_id] = post(container, accrued())
        with (
            container.engine.connect() as conn,
            pytest.raises(sa.exc.IntegrityError, match="cannot be deleted"),
        ):
            conn.execute(sa.text("DELETE FROM ledger_entry WHERE id = :id"), {"id": entry_id})
        with (
            container.engine.connect() as conn,
            pytest.raises(sa.exc.IntegrityError, match="cannot be deleted"),
        ):
            conn.execute(
                sa.text("DELETE FROM ledger_account WHERE code = :code"), {"code": INTEREST_INCOME.code}
            )
        assert count(container, LedgerEntryLine) == 2

    def test_sqlite_trial_balance_check_catches_what_bypassed_the_store(self, container: Container) -> None:
        if is_postgres(container):
            pytest.skip("PostgreSQL refuses the entry at commit (see above)")
        with container.engine.connect() as conn:
            insert_raw_entry(conn, 900_001, "raw:unbalanced")
            insert_raw_line(conn, 900_001, "113201", 219, 0)
            insert_raw_line(conn, 900_001, "601101", 0, 218)
            conn.commit()
        with container.uow() as uow:
            assert not ledger.trial_balance(uow.session).is_balanced
            with pytest.raises(
                ledger.OutOfBalance,
                match=r"as of 2025-07-01 is not zero: debits minus credits \{'CNY': '0.01'\}",
            ):
                ledger.check_trial_balance(uow.session, as_of=DAY)

    @pytest.mark.parametrize(("debit", "credit"), [(100, 100), (0, 0), (-100, 0)])
    def test_a_line_has_exactly_one_positive_side(
        self, container: Container, debit: int, credit: int
    ) -> None:
        with container.engine.connect() as conn:
            insert_raw_entry(conn, 900_003, "raw:sides")
            with pytest.raises(sa.exc.IntegrityError, match="one_side"):
                insert_raw_line(conn, 900_003, "113201", debit, credit)

    def test_a_line_names_a_chart_account(self, container: Container) -> None:
        with container.engine.connect() as conn:
            insert_raw_entry(conn, 900_004, "raw:account")
            with pytest.raises(sa.exc.IntegrityError):
                insert_raw_line(conn, 900_004, "9999", 100, 0)
                conn.commit()


class TestSpread:
    """A spread (a line per subledger against one total line) posts like the equivalent entry."""

    def spread(
        self, key: str = "accrual:2025-07-01:1-4", amounts: tuple[int, ...] = (219, 1, 30_000)
    ) -> ledger.Spread:
        subledgers = tuple(f"loan:{n}" for n in range(1, len(amounts) + 1))
        return ledger.Spread(
            key, DAY, "Daily interest accrual", INTEREST_RECEIVABLE, INTEREST_INCOME, subledgers, amounts
        )

    def test_posts_the_same_lines_as_its_entry(self, container: Container) -> None:
        spread = self.spread()
        with container.uow() as uow:
            report = ledger.post_spread(uow.session, spread, now=container.clock.now())
            uow.commit()
        assert report == PostingReport(posted=1, skipped=0)
        with container.uow() as uow:
            stored = ledger.get_entry(uow.session, spread.source_key)
            assert stored is not None and stored.signature() == spread.entry().signature()
            assert ledger.balance(uow.session, INTEREST_RECEIVABLE.code, subledger="loan:3") == D("300.00")
            assert ledger.balance(uow.session, INTEREST_INCOME.code) == D("302.20")
            assert ledger.trial_balance(uow.session).is_balanced

    def test_reposting_is_skipped_and_a_changed_spread_is_refused(self, container: Container) -> None:
        with container.uow() as uow:
            ledger.post_spread(uow.session, self.spread(), now=container.clock.now())
            uow.commit()
        with container.uow() as uow:
            assert ledger.post_spread(uow.session, self.spread(), now=container.clock.now()).skipped == 1
            # The same posting as an ordinary entry is the same posting.
            ledger.post(uow.session, self.spread().entry(), now=container.clock.now())
            with pytest.raises(ledger.SourceKeyConflict):
                ledger.post_spread(
                    uow.session, self.spread(amounts=(219, 2, 30_000)), now=container.clock.now()
                )
        assert count(container, LedgerEntry) == 1
        assert count(container, LedgerEntryLine) == 4

    def test_credit_side_spread(self, container: Container) -> None:
        spread = ledger.Spread(
            "settle:1",
            DAY,
            "Settled",
            INTEREST_RECEIVABLE,
            CUSTOMER_SETTLEMENT,
            ("loan:1", "loan:2"),
            (5, 7),
            side=ledger.Side.CREDIT,
        )
        with container.uow() as uow:
            ledger.post_spread(uow.session, spread, now=container.clock.now())
            assert ledger.balance(uow.session, INTEREST_RECEIVABLE.code, subledger="loan:2") == D("-0.07")
            assert ledger.get_entry(uow.session, "settle:1").signature() == spread.entry().signature()  # type: ignore[union-attr]

    @pytest.mark.parametrize(
        ("subledgers", "amounts", "message"),
        [
            ((), (), "at least one"),
            (("loan:1",), (1, 2), "one amount per subledger"),
            (("loan:1", "loan:2"), (5, 0), "positive whole minor units"),
            (("loan:1",), (D("1.5"),), "positive whole minor units"),
            (("loan:1", "loan:1"), (1, 2), "appears twice"),
            (("loan\t1",), (1,), "tabs"),
            ((" loan:1",), (1,), "surrounding"),
            (("x" * 200,), (1,), "characters"),
        ],
    )
    def test_bad_spreads_are_refused_with_the_reason(
        self, subledgers: tuple[str, ...], amounts: tuple[object, ...], message: str
    ) -> None:
        with pytest.raises(ledger.InvalidEntry, match=message):
            ledger.Spread("k", DAY, "d", INTEREST_RECEIVABLE, INTEREST_INCOME, subledgers, amounts)  # type: ignore[arg-type]

    def test_postgres_checks_every_entry_a_copy_wrote(self, container: Container) -> None:
        if not is_postgres(container):
            pytest.skip("the balance trigger is PostgreSQL's")
        with container.uow() as uow:
            ledger.ensure_chart(uow.session)
            uow.commit()
        with container.engine.connect() as conn:
            for entry_id in (900_010, 900_011, 900_012):
                insert_raw_entry(conn, entry_id, f"raw:{entry_id}")
            raw = conn.connection.driver_connection
            columns = "entry_id, account_code, subledger, currency, debit, credit, value_date"
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY ledger_entry_line ({columns}) FROM STDIN") as copy,
            ):
                for entry_id, debit, credit in ((900_010, 5, 5), (900_011, 7, 7), (900_012, 9, 8)):
                    copy.write_row((entry_id, "113201", None, "CNY", debit, 0, DAY))
                    copy.write_row((entry_id, "601101", None, "CNY", 0, credit, DAY))
            with pytest.raises(
                sa.exc.IntegrityError, match=r"ledger entry 900012 \(raw:900012\) does not balance"
            ):
                conn.commit()
        assert count(container, LedgerEntry) == 0
        with container.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ledger_entry_unchecked")).scalar() == 0
