"""The journal folded into kept sums (``ledger.fold``), on SQLite and PostgreSQL: the trial
balance and a subledger's balances read from the sums and the lines posted since are those of
the entries themselves, whenever the folds came; a fold waits for the lines still on their way."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from creditfactory import ledger
from creditfactory.bootstrap import Container
from creditfactory.ledger import (
    CUSTOMER_SETTLEMENT,
    INTEREST_INCOME,
    INTEREST_RECEIVABLE,
    LOAN_PRINCIPAL,
    FoldReport,
    TrialBalance,
    account_balance,
)
from creditfactory.ledger.store import LedgerBalanceFolded, LedgerDayFolded, LedgerEntryLine, LedgerFold

from .test_store import DAY, accrued, count, disbursed, is_postgres, post, random_history

ACCOUNTS = (LOAN_PRINCIPAL, INTEREST_RECEIVABLE, CUSTOMER_SETTLEMENT)


def fold(container: Container) -> FoldReport:
    with container.uow() as uow:
        report = ledger.fold(uow.session, now=container.clock.now())
        uow.commit()
    return report


def assert_reads_agree(container: Container, posted: list[ledger.Entry]) -> None:
    """The trial balance as of every day and the loans' balances equal the entries' own."""
    loans = sorted({ln.subledger for e in posted for ln in e.lines if ln.subledger})
    days = sorted({e.value_date for e in posted})
    with container.uow() as uow:
        s = uow.session
        assert ledger.trial_balance(s) == TrialBalance.from_entries(posted)
        for day in (days[0], days[len(days) // 2], days[-1] - timedelta(days=1), days[-1]):
            assert ledger.trial_balance(s, day) == TrialBalance.from_entries(posted, as_of=day)
        rows = s.execute(ledger.subledger_balances(s, ACCOUNTS, prefix="loan:")).all()
        assert {str(r[0]): tuple(r[1:]) for r in rows} == {
            sub: tuple(int(account_balance(posted, a.code, subledger=sub) * 100) for a in ACCOUNTS)
            for sub in loans
        }


class TestFold:
    def test_reads_agree_with_the_entries_before_between_and_after_folds(self, container: Container) -> None:
        history = random_history(seed=3, loans=8, days=12)
        rng = random.Random(5)
        posted: list[ledger.Entry] = []
        assert fold(container) == FoldReport(0, 0)  # nothing posted: nothing to fold
        at = unfolded = folds = 0
        while at < len(history):
            batch = history[at : at + rng.randint(1, 12)]
            at += len(batch)
            post(container, *batch)
            posted.extend(batch)
            unfolded += sum(len(e.lines) for e in batch)
            assert_reads_agree(container, posted)  # lines after the last fold
            if rng.random() < 0.5:
                assert fold(container).lines == unfolded
                unfolded, folds = 0, folds + 1
                assert_reads_agree(container, posted)  # everything folded
        assert folds > 3
        final = fold(container)
        assert fold(container) == FoldReport(0, final.through_line_id)  # again: nothing changes
        lines = count(container, LedgerEntryLine)
        with container.uow() as uow:
            mark = uow.session.execute(select(LedgerFold.lines, LedgerFold.through_line_id)).one()
            last = uow.session.scalar(select(LedgerEntryLine.id).order_by(LedgerEntryLine.id.desc()).limit(1))
        assert tuple(mark) == (lines, last)
        assert_reads_agree(container, posted)

    def test_a_fold_counts_the_lines_and_keeps_sums_per_loan_and_per_day(self, container: Container) -> None:
        post(container, disbursed("L1"), accrued("L1"), accrued("L1", day=DAY + timedelta(days=1)))
        report = fold(container)
        assert report.lines == 6  # two lines an entry
        with container.uow() as uow:
            s = uow.session
            per_loan = {
                (r.account_code, r.subledger): (r.debit, r.credit)
                for r in s.scalars(select(LedgerBalanceFolded))
            }
            assert per_loan[(INTEREST_RECEIVABLE.code, "loan:L1")] == (438, 0)  # 2.19 twice, in fen
            assert per_loan[(INTEREST_INCOME.code, "loan:L1")] == (0, 438)
            per_day = {(r.value_date, r.account_code): r.debit for r in s.scalars(select(LedgerDayFolded))}
            assert (
                per_day[(DAY, INTEREST_RECEIVABLE.code)]
                == per_day[(DAY + timedelta(1), INTEREST_RECEIVABLE.code)]
            )
            assert per_day[(DAY, LOAN_PRINCIPAL.code)] == 1_000_000

    def test_the_reads_take_the_sums_not_the_folded_lines(self, container: Container) -> None:
        """Once folded, the lines are not read again: lines removed behind the ledger's back
        (SQLite lets a line be deleted) leave the trial balance and the balances as they were."""
        if is_postgres(container):
            pytest.skip("PostgreSQL checks the balance of what a deletion leaves (see test_store)")
        history = random_history(seed=9, loans=3, days=5)
        post(container, *history)
        fold(container)
        with container.uow() as uow:
            uow.session.execute(delete(LedgerEntryLine))
            uow.commit()
        assert count(container, LedgerEntryLine) == 0
        assert_reads_agree(container, history)


@pytest.mark.postgres
class TestFoldWaits:
    """On PostgreSQL a fold and the transactions writing lines keep apart on an advisory lock."""

    def test_a_fold_waits_for_lines_not_yet_committed_and_takes_them(self, container: Container) -> None:
        if not is_postgres(container):
            pytest.skip("SQLite writes one transaction at a time")
        post(container, disbursed("L1"))
        fold(container)
        writer = container.uow()
        writer.__enter__()
        ledger.post(writer.session, accrued("L1"), now=container.clock.now())  # not committed
        done: list[FoldReport] = []
        folding = threading.Thread(target=lambda: done.append(fold(container)))
        folding.start()
        time.sleep(0.5)
        assert folding.is_alive() and not done  # waiting for the writer
        writer.commit()
        writer.__exit__(None, None, None)
        folding.join(10)
        assert done == [FoldReport(2, done[0].through_line_id)]
        assert_reads_agree(container, [disbursed("L1"), accrued("L1")])

    def test_lines_wait_for_a_fold_in_progress(self, container: Container) -> None:
        if not is_postgres(container):
            pytest.skip("SQLite writes one transaction at a time")
        post(container, disbursed("L1"))
        folder = container.uow()
        folder.__enter__()
        first = ledger.fold(folder.session, now=container.clock.now())  # not committed
        posted = threading.Event()

        def write() -> None:
            post(container, accrued("L1"))
            posted.set()

        writing = threading.Thread(target=write)
        writing.start()
        time.sleep(0.5)
        assert not posted.is_set()  # waiting for the fold
        folder.commit()
        folder.__exit__(None, None, None)
        writing.join(10)
        assert posted.is_set() and first.lines == 2
        assert fold(container).lines == 2  # the accrual, after the first fold's mark
        assert_reads_agree(container, [disbursed("L1"), accrued("L1")])


class TestWhenDue:
    def test_lines_wait_until_they_are_as_many_as_the_kept_sums(self, container: Container) -> None:
        post(container, *(disbursed(f"L{n}") for n in range(4)))  # 8 lines
        with container.uow() as uow:
            first = ledger.fold(uow.session, now=container.clock.now(), when_due=True)
            uow.commit()
        assert first.lines == 8  # nothing kept yet: due at once
        kept = count(container, LedgerBalanceFolded)
        assert kept == 8  # principal and settlement, four loans
        posted = [disbursed(f"L{n}") for n in range(4)]
        for day in range(1, 5):
            more = [accrued(f"L{n}", day=DAY + timedelta(days=day)) for n in range(2)]  # 4 lines
            post(container, *more)
            posted += more
            with container.uow() as uow:
                report = ledger.fold(uow.session, now=container.clock.now(), when_due=True)
                uow.commit()
            assert_reads_agree(container, posted)
            if day == 1:
                assert (report.lines, report.left) == (0, 4)  # 4 lines after the mark, 8 sums kept
            if day == 2:
                assert (report.lines, report.left) == (8, 0)  # 8 lines: due
                kept = count(container, LedgerBalanceFolded)
        assert kept == 12  # and the accruals' receivable and income per loan
