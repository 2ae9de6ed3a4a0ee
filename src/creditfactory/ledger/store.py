"""The journal at rest: accounts, entries and lines; posting, balances and the trial balance.

Tables: ``ledger_account`` (the chart), ``ledger_entry`` (one row per posted entry, its
``source_key`` unique) and ``ledger_entry_line`` (amounts as ``BIGINT`` fen in ``debit`` /
``credit``, the entry's ``value_date`` copied onto each line so that balances as of a date are
one indexed sum). Rows are only ever inserted: a correction is a reversing entry.

Posting is idempotent on ``source_key``: posting the same entry again returns the id it got the
first time and writes nothing; posting a *different* entry under a key already used raises
:class:`~creditfactory.ledger.model.SourceKeyConflict`. "The same" means the same value date,
the same entry reversed and the same lines in any order; the description does not count.

Accounts named by the lines are added to the chart the first time they are posted to (a
per-product principal account needs no set-up); an account code already in the chart with
another type or side is refused with :class:`~creditfactory.ledger.model.AccountConflict`.

On PostgreSQL the migrations add a guard that refuses, at commit, any entry whose lines do not
balance per currency (a statement-level trigger notes the entries each statement wrote in
``ledger_entry_unchecked``, and a deferred constraint trigger checks each noted entry once), and
a trigger that refuses updates to entries and lines; on SQLite the balance is guarded by :class:`~creditfactory.ledger.model.Entry` and
checked by :func:`check_trial_balance` at the end-of-day close.

Balances are also kept folded (:func:`fold`, run by the end of day): the lines up to a mark
summed per account and subledger and per value date and account, so that the reconciliation and
the trial balance read those sums and the lines after the mark rather than the whole journal.

Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    case,
    cast,
    func,
    insert,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from creditfactory.db.base import Base
from creditfactory.db.types import ScaledInt, UTCDateTime, enum_column
from creditfactory.ledger.model import (
    CHART,
    MAX_CODE,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_SOURCE_KEY,
    MAX_SUBLEDGER,
    Account,
    AccountConflict,
    AccountType,
    AlreadyReversed,
    Entry,
    InvalidEntry,
    LedgerError,
    Line,
    Side,
    Signature,
    SourceKeyConflict,
    Spread,
    TrialBalance,
    TrialBalanceRow,
    UnknownAccount,
    UnknownEntry,
)
from creditfactory.money import CNY, Currency, from_scaled

__all__ = [
    "LedgerAccount",
    "LedgerEntry",
    "LedgerEntryLine",
    "OutOfBalance",
    "PostingReport",
    "balance",
    "balances_by_subledger",
    "check_trial_balance",
    "ensure_accounts",
    "ensure_chart",
    "fold",
    "get_account",
    "get_entry",
    "list_accounts",
    "list_entries",
    "post",
    "post_many",
    "trial_balance",
]

#: Amounts are stored in hundredths (fen for CNY).
SCALE = 2
#: Default number of entries written per round trip by :func:`post_many`.
CHUNK = 10_000
#: Values per ``IN (...)`` list (SQLite allows 32,766 bound values per statement).
_IN_LIST = 5_000


class LedgerAccount(Base):
    __tablename__ = "ledger_account"

    code: Mapped[str] = mapped_column(String(MAX_CODE), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    type: Mapped[AccountType] = mapped_column(enum_column(AccountType, 16))
    contra: Mapped[bool] = mapped_column(Boolean)


class LedgerEntry(Base):
    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source_key: Mapped[str] = mapped_column(String(MAX_SOURCE_KEY), unique=True)
    value_date: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION))
    #: The entry this one reverses; an entry can be reversed once.
    reverses_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_entry.id"), unique=True
    )


class LedgerEntryLine(Base):
    __tablename__ = "ledger_entry_line"
    __table_args__ = (
        CheckConstraint("(debit > 0 AND credit = 0) OR (debit = 0 AND credit > 0)", name="one_side"),
        # (entry, line) order: an entry's lines are found without a scan.
        Index("ix_ledger_entry_line_entry_id", "entry_id", "id"),
        # A subledger's lines (a loan's balances), by account. The only other index: every line
        # written costs a write in each index, and sums over an account or up to a date read
        # most of the journal anyway.
        Index("ix_ledger_entry_line_subledger", "subledger", "account_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The entry and the account must exist: checked by the guard triggers (once per statement
    # on PostgreSQL), not by foreign keys that check and lock row by row.
    entry_id: Mapped[int] = mapped_column(BigInteger)
    account_code: Mapped[str] = mapped_column(String(MAX_CODE))
    subledger: Mapped[str | None] = mapped_column(String(MAX_SUBLEDGER))
    currency: Mapped[str] = mapped_column(String(3))
    debit: Mapped[Decimal] = mapped_column(ScaledInt(SCALE))
    credit: Mapped[Decimal] = mapped_column(ScaledInt(SCALE))
    #: The entry's value date, kept on each line so that sums as of a date need no join.
    value_date: Mapped[date] = mapped_column(Date)


#: Entries written in the current transaction whose balance is still to be checked at commit
#: (PostgreSQL: one row per statement that wrote lines, added by a statement-level trigger and
#: removed by the deferred check; an unlogged table, since no row outlives its transaction).
#: Unused on SQLite.
UNCHECKED = Table(
    "ledger_entry_unchecked",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entry_ids", ARRAY(BigInteger).with_variant(JSON(), "sqlite")),
)


#: The journal's lines folded into kept sums (:func:`fold`), so that the close reads the sums and
#: the lines posted since instead of the whole journal. One row (``id`` 1): every line with an id
#: up to ``through_line_id`` is in the sums; no row means nothing is folded yet.
class LedgerFold(Base):
    __tablename__ = "ledger_fold"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    through_line_id: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(BigInteger)
    folded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerBalanceFolded(Base):
    """Debits and credits of the folded lines per account, subledger (``''`` for none) and
    currency: a loan's balances without reading its history."""

    __tablename__ = "ledger_balance_folded"

    account_code: Mapped[str] = mapped_column(String(MAX_CODE), primary_key=True)
    subledger: Mapped[str] = mapped_column(String(MAX_SUBLEDGER), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    debit: Mapped[int] = mapped_column(BigInteger)
    credit: Mapped[int] = mapped_column(BigInteger)


class LedgerDayFolded(Base):
    """Debits and credits of the folded lines per value date, account and currency: the trial
    balance as of any date without reading the lines."""

    __tablename__ = "ledger_day_folded"

    value_date: Mapped[date] = mapped_column(Date, primary_key=True)
    account_code: Mapped[str] = mapped_column(String(MAX_CODE), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    debit: Mapped[int] = mapped_column(BigInteger)
    credit: Mapped[int] = mapped_column(BigInteger)


_ENTRY = LedgerEntry.__table__
_ENTRY_COLUMNS = ("id", "source_key", "value_date", "posted_at", "description", "reverses_entry_id")
_LINE_COLUMNS = ("entry_id", "account_code", "subledger", "currency", "debit", "credit", "value_date")
#: Raw fen, bypassing the Decimal conversion, for sums and comparisons.
_DEBIT_FEN = type_coerce(LedgerEntryLine.debit, BigInteger)
_CREDIT_FEN = type_coerce(LedgerEntryLine.credit, BigInteger)


class OutOfBalance(LedgerError):
    """The trial balance is not zero: something wrote the journal around :func:`post`."""

    code = "ledger_out_of_balance"
    http_status = 500
    title = "Ledger out of balance"


@dataclass(frozen=True, slots=True)
class FoldReport:
    """What :func:`fold` did: lines added to the kept sums, the last line id they now hold, and
    the lines after it left for a later fold (``when_due``)."""

    lines: int
    through_line_id: int
    left: int = 0


@dataclass(frozen=True, slots=True)
class PostingReport:
    """What :func:`post_many` did: entries written, and entries already there (by source key)."""

    posted: int
    skipped: int


# --------------------------------------------------------------------------------------------
# Accounts


def _to_account(row: LedgerAccount) -> Account:
    return Account(row.code, row.name, row.type, row.contra)


def get_account(session: Session, code: str) -> Account | None:
    row = session.get(LedgerAccount, code)
    return None if row is None else _to_account(row)


def list_accounts(session: Session) -> list[Account]:
    """The chart, by code."""
    return sorted((_to_account(r) for r in session.scalars(select(LedgerAccount))), key=lambda a: a.code)


def ensure_accounts(session: Session, accounts: Iterable[Account]) -> int:
    """Add the accounts not yet in the chart; returns how many were added.

    An account whose code is already there with another type or side raises
    :class:`AccountConflict`; a different name is left as stored.
    """
    wanted: dict[str, Account] = {}
    for account in accounts:
        if type(account) is not Account:
            raise InvalidEntry(f"expected an Account, got {type(account).__name__}")
        seen = wanted.setdefault(account.code, account)
        if not seen.same_definition(account):
            raise _account_conflict(account, seen)
    if not wanted:
        return 0
    stored: dict[str, Account] = {}
    for codes in _batched(sorted(wanted), _IN_LIST):
        for row in session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(codes))):
            stored[row.code] = _to_account(row)
    for code, account in stored.items():
        if not account.same_definition(wanted[code]):
            raise _account_conflict(wanted[code], account)
    missing = [a for code, a in wanted.items() if code not in stored]
    if missing:
        session.execute(
            insert(LedgerAccount),
            [{"code": a.code, "name": a.name, "type": a.type, "contra": a.contra} for a in missing],
        )
    return len(missing)


def ensure_chart(session: Session) -> int:
    """Seed the standard lending chart (:data:`~creditfactory.ledger.model.CHART`); idempotent."""
    return ensure_accounts(session, CHART)


def _account_conflict(wanted: Account, stored: Account) -> AccountConflict:
    def text(a: Account) -> str:
        return f"{a.type}{' (contra)' if a.contra else ''}"

    return AccountConflict(
        f"account {wanted.code} is in the chart as {text(stored)}, not {text(wanted)}",
        account=wanted.code,
        stored_type=str(stored.type),
        wanted_type=str(wanted.type),
    )


def _require_account(session: Session, code: str | Account) -> Account:
    key = code.code if isinstance(code, Account) else code
    account = get_account(session, key)
    if account is None:
        raise UnknownAccount(f"no ledger account {key!r}", account=key)
    return account


# --------------------------------------------------------------------------------------------
# Posting


def _check_now(now: datetime) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime (UTC), got {now!r}")


def _check_entry(entry: object) -> Entry:
    if type(entry) is not Entry:
        raise InvalidEntry(f"expected a ledger Entry, got {type(entry).__name__}")
    return entry


def post(session: Session, entry: Entry, *, now: datetime) -> int:
    """Write ``entry`` in the caller's transaction and return its id.

    Idempotent on ``entry.source_key``: if that key was posted before with the same value date
    and lines, the earlier id is returned and nothing is written; if it was posted with
    different ones, :class:`SourceKeyConflict` is raised. A reversal must name an entry that is
    posted (:class:`UnknownEntry`) and not yet reversed (:class:`AlreadyReversed`).
    """
    _check_entry(entry)
    _check_now(now)
    existing = _ids_by_key(session, [entry.source_key]).get(entry.source_key)
    if existing is not None:
        _same_or_conflict(session, entry, existing)
        return existing
    ensure_accounts(session, (line.account for line in entry.lines))
    target = _reversal_targets(session, [entry], {}).get(entry.source_key)
    try:
        with session.begin_nested():
            entry_id = session.execute(
                insert(LedgerEntry)
                .values(
                    source_key=entry.source_key,
                    value_date=entry.value_date,
                    posted_at=now,
                    description=entry.description,
                    reverses_entry_id=target,
                )
                .returning(LedgerEntry.id)
            ).scalar_one()
            session.execute(
                insert(LedgerEntryLine),
                [
                    {
                        "entry_id": entry_id,
                        "account_code": line.account.code,
                        "subledger": line.subledger,
                        "currency": line.currency.code,
                        "debit": line.debit,
                        "credit": line.credit,
                        "value_date": entry.value_date,
                    }
                    for line in entry.lines
                ],
            )
    except IntegrityError:
        # A concurrent transaction posted the same key (or reversed the same entry) first.
        existing = _ids_by_key(session, [entry.source_key]).get(entry.source_key)
        if existing is None:
            _reversal_targets(session, [entry], {})
            raise
        _same_or_conflict(session, entry, existing)
        return existing
    return int(entry_id)


def post_many(
    session: Session, entries: Iterable[Entry], *, now: datetime, chunk_size: int = CHUNK
) -> PostingReport:
    """Write many entries set-wise, in chunks of ``chunk_size``; for batches such as the daily accrual.

    Same rules as :func:`post`: a source key already posted (before, or earlier in this batch)
    with the same entry is skipped; with a different entry it raises :class:`SourceKeyConflict`
    before its chunk is written (earlier chunks are in the transaction: roll it back).
    ``entries`` may be a generator; a reversal must come after the entry it reverses. Rows go
    through the driver's ``executemany`` on SQLite and ``COPY`` on PostgreSQL (the two databases
    supported here), in the caller's transaction.
    """
    _check_now(now)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    session.flush()
    with _collector_paused():
        return _post_many(session, iter(entries), now=now, chunk_size=chunk_size)


def post_spread(session: Session, spread: Spread, *, now: datetime) -> PostingReport:
    """Write one :class:`Spread` (a line per subledger against one total line) in the caller's
    transaction, straight from its two columns: the fast path of the end of day's accruals.

    The same rules as :func:`post`: a source key posted before with the same posting (as a
    spread or as the equivalent :class:`Entry`) is skipped; with a different one it raises
    :class:`SourceKeyConflict`. Rows go through ``executemany`` on SQLite and ``COPY`` on
    PostgreSQL.
    """
    _check_now(now)
    if type(spread) is not Spread:
        raise InvalidEntry(f"post_spread takes a Spread, got {type(spread).__name__}")
    session.flush()
    existing = _ids_by_key(session, [spread.source_key]).get(spread.source_key)
    if existing is not None:
        _same_or_conflict(session, spread.entry(), existing)
        return PostingReport(posted=0, skipped=1)
    ensure_accounts(session, (spread.account, spread.counter))
    writer = _Writer(session.connection(), now)
    writer.write_spread(spread, writer.next_ids(1)[0])
    return PostingReport(posted=1, skipped=0)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during a bulk write: the rows built are acyclic
    (freed by reference counting) and the collector's full passes over every live object cost
    about a third of the time of a large batch."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _post_many(
    session: Session, iterator: Iterator[Entry], *, now: datetime, chunk_size: int
) -> PostingReport:
    writer = _Writer(session.connection(), now)
    known: dict[str, Account] = {}
    posted = skipped = 0
    while chunk := list(islice(iterator, chunk_size)):
        fresh = _new_in_chunk(chunk)
        existing = _ids_by_key(session, [e.source_key for e in fresh])
        if existing:
            stored = _stored_signatures(session, list(existing.values()))
            for entry in fresh:
                entry_id = existing.get(entry.source_key)
                if entry_id is not None:
                    _compare(entry, stored[entry_id])
            fresh = [e for e in fresh if e.source_key not in existing]
        skipped += len(chunk) - len(fresh)
        if not fresh:
            continue
        pending: dict[str, Account] = {}
        for entry in fresh:
            for line in entry.lines:
                account = line.account
                seen = known.get(account.code)
                if seen is account:
                    continue
                if seen is None:
                    seen = pending.setdefault(account.code, account)
                if seen is not account and not seen.same_definition(account):
                    raise _account_conflict(account, seen)
        if pending:
            ensure_accounts(session, pending.values())
            known.update(pending)
        ids = writer.next_ids(len(fresh))
        targets: dict[str, int] = {}
        if any(e.reverses is not None for e in fresh):
            local = {
                e.source_key: (i, entry_id) for i, (e, entry_id) in enumerate(zip(fresh, ids, strict=True))
            }
            targets = _reversal_targets(session, fresh, local)
        writer.write(fresh, ids, targets)
        posted += len(fresh)
    return PostingReport(posted=posted, skipped=skipped)


def _new_in_chunk(chunk: list[Entry]) -> list[Entry]:
    """The chunk without repeats of a source key; a repeat that differs is a conflict."""
    first: dict[str, Entry] = {}
    fresh: list[Entry] = []
    for entry in chunk:
        if type(entry) is not Entry:
            _check_entry(entry)
        seen = first.get(entry.source_key)
        if seen is None:
            first[entry.source_key] = entry
            fresh.append(entry)
        elif seen is not entry and seen.signature() != entry.signature():
            raise SourceKeyConflict(
                f"source key {entry.source_key} appears twice in the batch with different entries",
                source_key=entry.source_key,
            )
    return fresh


_BY_KEYS = select(LedgerEntry.source_key, LedgerEntry.id).where(
    LedgerEntry.source_key.in_(bindparam("keys", expanding=True))
)


def _ids_by_key(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """Ids of the posted entries among ``keys`` (one indexed look-up per key, in batches)."""
    found: dict[str, int] = {}
    if not keys:
        return found
    conn = session.connection()
    dialect = conn.dialect.name
    for part in _batched(keys, _IN_LIST):
        if dialect == "sqlite":
            marks = ",".join("?" * len(part))
            sql = f"SELECT source_key, id FROM ledger_entry WHERE source_key IN ({marks})"
            rows: Iterable[Any] = conn.exec_driver_sql(sql, tuple(part))
        elif dialect == "postgresql":
            sql = "SELECT source_key, id FROM ledger_entry WHERE source_key = ANY(%(keys)s)"
            rows = conn.exec_driver_sql(sql, {"keys": list(part)})
        else:
            rows = session.execute(_BY_KEYS, {"keys": list(part)})
        found.update({key: int(entry_id) for key, entry_id in rows})
    return found


def _reversal_targets(
    session: Session, entries: Sequence[Entry], local: dict[str, tuple[int, int]]
) -> dict[str, int]:
    """Source key of each reversal → id of the entry it reverses, checked to be reversible.

    ``local`` maps the keys being written in the same chunk to (position, id).
    """
    reversals = [e for e in entries if e.reverses is not None]
    if not reversals:
        return {}
    wanted = {e.reverses for e in reversals if e.reverses is not None and e.reverses not in local}
    outside = _ids_by_key(session, sorted(wanted))
    targets: dict[str, int] = {}
    for entry in reversals:
        assert entry.reverses is not None
        if entry.reverses in local:
            position, target = local[entry.reverses]
            if position > local[entry.source_key][0]:
                raise InvalidEntry(
                    f"reversal {entry.source_key} comes before the entry {entry.reverses} it reverses",
                    source_key=entry.source_key,
                )
        elif entry.reverses in outside:
            target = outside[entry.reverses]
        else:
            raise UnknownEntry(
                f"entry {entry.source_key} reverses {entry.reverses}, which is not posted",
                source_key=entry.source_key,
                reverses=entry.reverses,
            )
        targets[entry.source_key] = target
    by_target: dict[int, str] = {}
    for key, target in targets.items():
        other = by_target.setdefault(target, key)
        if other != key:
            raise AlreadyReversed(
                f"entries {other} and {key} both reverse the same entry", source_key=key, other=other
            )
    for part in _batched(sorted(by_target), _IN_LIST):
        rows = session.execute(
            select(LedgerEntry.source_key, LedgerEntry.reverses_entry_id).where(
                LedgerEntry.reverses_entry_id.in_(part)
            )
        )
        for by, reversed_id in rows:
            key = by_target[int(reversed_id or 0)]
            original = next(e.reverses for e in reversals if e.source_key == key)
            raise AlreadyReversed(
                f"entry {original} is already reversed by {by}; {key} cannot reverse it again",
                source_key=key,
                reversed_by=by,
            )
    return targets


def _stored_signatures(session: Session, ids: Sequence[int]) -> dict[int, Signature]:
    reversed_entry = aliased(LedgerEntry)
    heads: dict[int, tuple[date, str | None]] = {}
    lines: dict[int, list[tuple[str, str, str, int]]] = {}
    head_query = (
        select(LedgerEntry.id, LedgerEntry.value_date, reversed_entry.source_key)
        .outerjoin(reversed_entry, reversed_entry.id == LedgerEntry.reverses_entry_id)
        .where(LedgerEntry.id.in_(bindparam("ids", expanding=True)))
    )
    line_query = select(
        LedgerEntryLine.entry_id,
        LedgerEntryLine.account_code,
        LedgerEntryLine.subledger,
        LedgerEntryLine.currency,
        _DEBIT_FEN,
        _CREDIT_FEN,
    ).where(LedgerEntryLine.entry_id.in_(bindparam("ids", expanding=True)))
    for part in _batched(ids, _IN_LIST):
        params = {"ids": list(part)}
        heads.update({int(i): (d, k) for i, d, k in session.execute(head_query, params)})
        for entry_id, code, sub, currency, debit, credit in session.execute(line_query, params):
            units = _units(int(debit) - int(credit), currency)
            lines.setdefault(int(entry_id), []).append((code, sub or "", currency, units))
    return {i: (d, k, tuple(sorted(lines.get(i, [])))) for i, (d, k) in heads.items()}


def _units(fen: int, currency_code: str) -> int:
    """Stored hundredths in the currency's own minor units."""
    exponent = _currency(currency_code).exponent
    return fen if exponent == SCALE else fen // 10 ** (SCALE - exponent)


def _same_or_conflict(session: Session, entry: Entry, entry_id: int) -> None:
    _compare(entry, _stored_signatures(session, [entry_id])[entry_id])


def _compare(entry: Entry, stored: Signature) -> None:
    mine = entry.signature()
    if mine == stored:
        return
    if mine[0] != stored[0]:
        what = f"value date {stored[0]} (not {mine[0]})"
    elif mine[1] != stored[1]:
        what = f"reverses={stored[1]!r} (not {mine[1]!r})"
    else:
        what = "different lines"
    raise SourceKeyConflict(
        f"source key {entry.source_key} is already posted with {what}; post a reversal and a new entry "
        "under another key to correct it",
        source_key=entry.source_key,
    )


class _Writer:
    """Bulk inserts on the caller's connection, the fastest way each database offers."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.now = now
        self._dates: dict[date, Any] = {}
        self._date_processor: Callable[[Any], Any] | None = None
        if self.dialect == "sqlite":
            dialect = conn.dialect
            posted_at = _ENTRY.c.posted_at.type.dialect_impl(dialect).bind_processor(dialect)
            self.now = posted_at(now) if posted_at else now
            self._date_processor = _ENTRY.c.value_date.type.dialect_impl(dialect).bind_processor(dialect)

    def _date(self, value: date) -> Any:
        out = self._dates.get(value)
        if out is None:
            if type(value) is not date:
                raise InvalidEntry(f"value_date must be a datetime.date, got {type(value).__name__}")
            out = self._date_processor(value) if self._date_processor else value
            if len(self._dates) > 10_000:
                self._dates.clear()
            self._dates[value] = out
        return out

    def next_ids(self, count: int) -> list[int]:
        if self.dialect == "postgresql":
            rows = self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('ledger_entry', 'id')) FROM generate_series(1, %(n)s)",
                {"n": count},
            )
            return [int(r[0]) for r in rows]
        if self.dialect == "sqlite":
            # The writer holds the database lock (BEGIN IMMEDIATE), so the maximum is stable.
            top = self.conn.exec_driver_sql("SELECT max(id) FROM ledger_entry").scalar()
            start = int(top or 0) + 1
            return list(range(start, start + count))
        raise ValueError(f"post_many supports SQLite and PostgreSQL, not {self.dialect}")

    def write(self, entries: list[Entry], ids: list[int], targets: dict[str, int]) -> None:
        now = self.now
        dates = self._dates
        entry_rows: list[tuple[Any, ...]] = []
        line_rows: list[tuple[Any, ...]] = []
        add_entry = entry_rows.append
        add_line = line_rows.append
        for entry, entry_id in zip(entries, ids, strict=True):
            value_date = dates.get(entry.value_date)
            if value_date is None:
                value_date = self._date(entry.value_date)
            key = entry.source_key
            add_entry(
                (entry_id, key, value_date, now, entry.description, targets.get(key) if targets else None)
            )
            for line in entry.lines:
                units = line.minor
                currency = line.currency
                if currency is not CNY and currency.exponent != SCALE:
                    units = _hundredths(units, currency)
                add_line(
                    (
                        entry_id,
                        line.account.code,
                        line.subledger,
                        currency.code,
                        units if units > 0 else 0,
                        -units if units < 0 else 0,
                        value_date,
                    )
                )
        self._insert(LedgerEntry.__tablename__, _ENTRY_COLUMNS, entry_rows)
        self._insert(LedgerEntryLine.__tablename__, _LINE_COLUMNS, line_rows)

    def write_spread(self, spread: Spread, entry_id: int) -> None:
        value_date = self._date(spread.value_date)
        self._insert(
            LedgerEntry.__tablename__,
            _ENTRY_COLUMNS,
            [(entry_id, spread.source_key, value_date, self.now, spread.description, None)],
        )
        currency = spread.currency
        amounts: Sequence[int] = spread.amounts
        if currency.exponent != SCALE:
            amounts = [_hundredths(a, currency) for a in amounts]
        total = sum(amounts)
        many, one = spread.account.code, spread.counter.code
        debit_side = spread.side is Side.DEBIT
        if self.dialect == "sqlite":
            rows = [
                (
                    entry_id,
                    many,
                    sub,
                    currency.code,
                    a if debit_side else 0,
                    0 if debit_side else a,
                    value_date,
                )
                for sub, a in zip(spread.subledgers, amounts, strict=True)
            ]
            rows.append(
                (
                    entry_id,
                    one,
                    None,
                    currency.code,
                    0 if debit_side else total,
                    total if debit_side else 0,
                    value_date,
                )
            )
            self._insert(LedgerEntryLine.__tablename__, _LINE_COLUMNS, rows)
            return
        # PostgreSQL: the lines as COPY text, formatted in one pass (Spread refuses subledgers
        # with tabs, line breaks or backslashes, and account codes hold none).
        head = f"{entry_id}\t{many}\t"
        tail = f"\t{value_date.isoformat()}\n"
        if debit_side:
            middle, closing = f"\t{currency.code}\t", f"\t0{tail}"
            text = "".join(
                [
                    f"{head}{sub}{middle}{a}{closing}"
                    for sub, a in zip(spread.subledgers, amounts, strict=True)
                ]
            )
            text += f"{entry_id}\t{one}\t\\N\t{currency.code}\t0\t{total}{tail}"
        else:
            middle = f"\t{currency.code}\t0\t"
            text = "".join(
                [f"{head}{sub}{middle}{a}{tail}" for sub, a in zip(spread.subledgers, amounts, strict=True)]
            )
            text += f"{entry_id}\t{one}\t\\N\t{currency.code}\t{total}\t0{tail}"
        raw = self.conn.connection.driver_connection
        assert raw is not None
        names = ", ".join(_LINE_COLUMNS)
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {LedgerEntryLine.__tablename__} ({names}) FROM STDIN") as copy,
        ):
            copy.write(text)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        names = ", ".join(columns)
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            self.conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            return
        raw = self.conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _hundredths(units: int, currency: Currency) -> int:
    if currency.exponent > SCALE:
        raise InvalidEntry(
            f"the ledger stores amounts in hundredths; {currency.code} has {currency.exponent} places"
        )
    return units * int(10 ** (SCALE - currency.exponent))


# --------------------------------------------------------------------------------------------
# Folding


#: The PostgreSQL advisory lock that keeps a fold apart from the transactions writing journal
#: lines: a trigger takes it shared before every statement that adds lines (held to the end of
#: the writing transaction), and :func:`fold` takes it alone. The migration
#: ``20261203_ledger_folded`` names the same number.
FOLD_LOCK = 6_647_893_112_370_001


def _after_fold(session: Session) -> Any:
    """The condition on the lines posted after the last fold: a range of primary keys. Its upper
    end (the largest BIGINT) changes nothing but the plan: without statistics on the journal
    PostgreSQL reckons ``id > n`` a third of the table and reads all of it, while a closed range
    reckons few rows and takes the index."""
    return LedgerEntryLine.id.between(_folded_through(session) + 1, _LAST_ID)


#: The largest line id a BIGINT holds.
_LAST_ID = 2**63 - 1


def _folded_through(session: Session) -> int:
    """The last line id the folded sums hold (0 before the first fold): the lines after it are
    read by their primary key. On PostgreSQL the fold's lock is taken shared first, to the end
    of the transaction, so that the sums and the lines after the mark are read without a fold
    committing in between (under ``READ COMMITTED`` each statement sees the latest commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock_shared(FOLD_LOCK)))
    return int(session.scalar(select(func.coalesce(func.max(LedgerFold.through_line_id), 0))) or 0)


def fold(session: Session, *, now: datetime, when_due: bool = False) -> FoldReport:
    """Add the journal lines posted since the last fold to the kept sums, per account, subledger
    and currency (:class:`LedgerBalanceFolded`) and per value date, account and currency
    (:class:`LedgerDayFolded`), and move the fold's mark to the last line. Balances, the
    reconciliation and the trial balance then read the sums and the lines after the mark, so the
    close's reads grow with the book, not with the journal's history. Folding again with no new
    line changes nothing.

    With ``when_due`` the lines are folded only once they are at least as many as the kept
    per-subledger sums: until then reading them costs no more than reading the sums, and a fold
    of a day's lines (one update of a sum per loan) costs more than reading them. The reads then
    stay within twice the book's size, and a book's daily lines are folded every few days.

    The mark is the largest line id. It is exact because no line below it can still be on its
    way: on PostgreSQL the fold waits, on its advisory lock, for every transaction that has
    written lines to end, and a statement adding lines waits for the fold before it draws its
    ids; SQLite writes one transaction at a time. Lines are never updated (a trigger refuses it
    on PostgreSQL) nor deleted by the application: a correction is a reversing entry.

    Nothing here commits: the caller's unit of work does, soon, since lines wait meanwhile.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(select(func.pg_advisory_xact_lock(FOLD_LOCK)))
    insert_ = postgresql.insert if postgres else sqlite.insert
    done = session.execute(
        select(LedgerFold.through_line_id, LedgerFold.lines).where(LedgerFold.id == 1)
    ).first()
    after, before = (int(done[0]), int(done[1])) if done else (0, 0)
    line = LedgerEntryLine.__table__.c
    upto = max(int(session.scalar(select(func.max(line.id))) or 0), after)
    if upto == after:
        return FoldReport(0, after)
    window = (line.id > after) & (line.id <= upto)
    lines = int(session.scalar(select(func.count()).where(window)) or 0)
    if when_due and lines < int(session.scalar(select(func.count()).select_from(LedgerBalanceFolded)) or 0):
        return FoldReport(0, after, lines)
    debit, credit = (
        cast(func.sum(type_coerce(c, BigInteger)), BigInteger) for c in (line.debit, line.credit)
    )
    for target, keys in (
        (
            LedgerBalanceFolded.__table__,
            (line.account_code, func.coalesce(line.subledger, ""), line.currency),
        ),
        (LedgerDayFolded.__table__, (line.value_date, line.account_code, line.currency)),
    ):
        key_names = [c.name for c in target.primary_key.columns]
        write = insert_(target).from_select(
            [*key_names, "debit", "credit"], select(*keys, debit, credit).where(window).group_by(*keys)
        )
        session.execute(
            write.on_conflict_do_update(
                index_elements=key_names,
                set_={
                    "debit": target.c.debit + write.excluded.debit,
                    "credit": target.c.credit + write.excluded.credit,
                },
            )
        )
    mark = insert_(LedgerFold.__table__).values(
        id=1, through_line_id=upto, lines=before + lines, folded_at=now
    )
    session.execute(
        mark.on_conflict_do_update(
            index_elements=["id"],
            set_={"through_line_id": upto, "lines": before + lines, "folded_at": now},
        )
    )
    return FoldReport(lines, upto)


# --------------------------------------------------------------------------------------------
# Reading


_CURRENCIES = {CNY.code: CNY}


def _currency(code: str) -> Currency:
    known = _CURRENCIES.get(code)
    return known if known is not None else Currency(code, SCALE)


def _require_date(value: date | None, what: str) -> date | None:
    if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
        raise TypeError(f"{what} must be a datetime.date or None, got {type(value).__name__}")
    return value


def balance(
    session: Session,
    account_code: str | Account,
    subledger: str | None = None,
    as_of: date | None = None,
    *,
    currency: Currency = CNY,
) -> Decimal:
    """The balance of an account (of one subledger of it, if given), positive on the account's
    normal side, from the lines with value dates up to and including ``as_of``."""
    account = _require_account(session, account_code)
    _require_date(as_of, "as_of")
    query = select(func.sum(_DEBIT_FEN), func.sum(_CREDIT_FEN)).where(
        LedgerEntryLine.account_code == account.code, LedgerEntryLine.currency == currency.code
    )
    if subledger is not None:
        query = query.where(LedgerEntryLine.subledger == subledger)
    if as_of is not None:
        query = query.where(LedgerEntryLine.value_date <= as_of)
    debit, credit = session.execute(query).one()
    return account.signed(from_scaled(int(debit or 0), SCALE), from_scaled(int(credit or 0), SCALE))


def balances_by_subledger(
    session: Session, account_code: str | Account, as_of: date | None = None, *, currency: Currency = CNY
) -> dict[str, Decimal]:
    """Balance of each subledger of an account (``{"loan:L1": Decimal("9000.00"), ...}``), summed
    by the database, positive on the normal side. Lines without a subledger are left out."""
    account = _require_account(session, account_code)
    _require_date(as_of, "as_of")
    query = (
        select(LedgerEntryLine.subledger, func.sum(_DEBIT_FEN), func.sum(_CREDIT_FEN))
        .where(
            LedgerEntryLine.account_code == account.code,
            LedgerEntryLine.currency == currency.code,
            LedgerEntryLine.subledger.is_not(None),
        )
        .group_by(LedgerEntryLine.subledger)
    )
    if as_of is not None:
        query = query.where(LedgerEntryLine.value_date <= as_of)
    # Sorted here rather than in SQL, so the order is the same whatever the database's collation.
    return {
        str(sub): account.signed(from_scaled(int(debit), SCALE), from_scaled(int(credit), SCALE))
        for sub, debit, credit in sorted(session.execute(query), key=lambda row: str(row[0]))
    }


def subledger_balances(
    session: Session,
    accounts: Sequence[str | Account],
    *,
    prefix: str,
    currency: Currency = CNY,
) -> Select[Any]:
    """A SELECT of ``(subledger, balance_0, balance_1, …)`` in integer fen, one balance per
    account of ``accounts`` (positive on the account's normal side, zero where it has no
    postings), for the subledgers starting with ``prefix`` (``"loan:"``): one pass over the
    lines for every account, for callers that join it to their own tables and compare in the
    database (:mod:`creditfactory.servicing.reconcile`). It reads the folded sums and the lines
    posted since (:func:`fold`), not the whole journal."""
    resolved = [_require_account(session, a) for a in accounts]
    if not resolved:
        raise ValueError("subledger_balances needs at least one account")
    codes = [a.code for a in resolved]
    kept_rows, line = LedgerBalanceFolded, LedgerEntryLine
    kept = select(kept_rows.subledger, kept_rows.account_code, kept_rows.debit - kept_rows.credit).where(
        kept_rows.account_code.in_(codes),
        kept_rows.currency == currency.code,
        kept_rows.subledger.like(f"{prefix}%"),
    )
    recent = select(line.subledger, line.account_code, _DEBIT_FEN - _CREDIT_FEN).where(
        _after_fold(session),
        line.account_code.in_(codes),
        line.currency == currency.code,
        line.subledger.like(f"{prefix}%"),
    )
    both = union_all(kept, recent).subquery()
    subledger, code, net = both.c
    columns = []
    for k, account in enumerate(resolved):
        sign = 1 if account.normal_side is Side.DEBIT else -1
        mine = case((code == account.code, net), else_=0)
        # sum() of BIGINT is NUMERIC on PostgreSQL: back to BIGINT for cheap comparisons.
        columns.append(cast(sign * func.sum(mine), BigInteger).label(f"balance_{k}"))
    return select(subledger.label("subledger"), *columns).group_by(subledger)


def trial_balance(session: Session, as_of: date | None = None) -> TrialBalance:
    """Debit and credit totals of every account with postings, per currency, up to ``as_of``:
    the folded sums per day and the lines posted since the last :func:`fold`."""
    _require_date(as_of, "as_of")
    day = LedgerDayFolded
    kept = select(day.account_code, day.currency, day.debit, day.credit)
    recent = select(LedgerEntryLine.account_code, LedgerEntryLine.currency, _DEBIT_FEN, _CREDIT_FEN).where(
        _after_fold(session)
    )
    if as_of is not None:
        kept = kept.where(day.value_date <= as_of)
        recent = recent.where(LedgerEntryLine.value_date <= as_of)
    both = union_all(kept, recent).subquery()
    totals = session.execute(
        select(
            both.c.account_code, both.c.currency, func.sum(both.c.debit), func.sum(both.c.credit)
        ).group_by(both.c.account_code, both.c.currency)
    ).all()
    accounts = {a.code: a for a in list_accounts(session)}
    rows = tuple(
        TrialBalanceRow(accounts[code], cur, from_scaled(int(d), SCALE), from_scaled(int(c), SCALE))
        for code, cur, d, c in sorted(totals, key=lambda r: (r[0], r[1]))
    )
    return TrialBalance(as_of, rows)


def check_trial_balance(session: Session, *, as_of: date) -> TrialBalance:
    """The trial balance as of ``as_of``; raises :class:`OutOfBalance` unless it is exactly zero.

    The end-of-day close calls this before it closes the business date.
    """
    result = trial_balance(session, as_of)
    if not result.is_balanced:
        differences = {cur: str(d - c) for cur, (d, c) in result.totals().items() if d != c}
        raise OutOfBalance(
            f"trial balance as of {as_of} is not zero: debits minus credits {differences}",
            as_of=as_of.isoformat(),
            differences=differences,
        )
    return result


def get_entry(session: Session, source_key: str) -> Entry | None:
    """The posted entry with this source key, or ``None``."""
    found = _ids_by_key(session, [source_key]).get(source_key)
    return None if found is None else _load_entries(session, [found])[0]


def list_entries(session: Session, *, subledger: str, as_of: date | None = None) -> list[Entry]:
    """Entries with a line in ``subledger``, by value date then posting order."""
    _require_date(as_of, "as_of")
    query = select(LedgerEntryLine.entry_id).where(LedgerEntryLine.subledger == subledger).distinct()
    if as_of is not None:
        query = query.where(LedgerEntryLine.value_date <= as_of)
    return _load_entries(session, [int(i) for i in session.scalars(query)])


def _load_entries(session: Session, ids: Sequence[int]) -> list[Entry]:
    accounts = {a.code: a for a in list_accounts(session)}
    reversed_entry = aliased(LedgerEntry)
    heads: list[tuple[int, str, date, str, str | None]] = []
    lines: dict[int, list[Line]] = {}
    for part in _batched(sorted(ids), _IN_LIST):
        heads.extend(
            (int(i), k, d, text, rev)
            for i, k, d, text, rev in session.execute(
                select(
                    LedgerEntry.id,
                    LedgerEntry.source_key,
                    LedgerEntry.value_date,
                    LedgerEntry.description,
                    reversed_entry.source_key,
                )
                .outerjoin(reversed_entry, reversed_entry.id == LedgerEntry.reverses_entry_id)
                .where(LedgerEntry.id.in_(part))
            )
        )
        rows = session.execute(
            select(
                LedgerEntryLine.entry_id,
                LedgerEntryLine.account_code,
                LedgerEntryLine.subledger,
                LedgerEntryLine.currency,
                LedgerEntryLine.debit,
                LedgerEntryLine.credit,
            )
            .where(LedgerEntryLine.entry_id.in_(part))
            .order_by(LedgerEntryLine.id)
        )
        for entry_id, code, sub, cur, debit, credit in rows:
            lines.setdefault(int(entry_id), []).append(
                Line(accounts[code], debit, credit, sub, _currency(cur))
            )
    heads.sort(key=lambda h: (h[2], h[0]))
    return [Entry(key, d, text, tuple(lines.get(i, ())), rev) for i, key, d, text, rev in heads]


def _batched(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
