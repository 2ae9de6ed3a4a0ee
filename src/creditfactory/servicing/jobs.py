"""End-of-day steps of loan servicing, registered with :mod:`creditfactory.jobs`.

Every step is set-based: it reads a chunk of loans (an id range) with one query, computes with
NumPy on integer fen, posts one journal entry for the chunk through the ledger, and writes the
loans back with one statement (:func:`_update_loans`), all in one transaction. A watermark on each loan
(``last_accrued_date``, ``last_penalty_date``) makes a chunk that already committed a no-op, so a
step that dies half-way resumes where it stopped and a closed date changes nothing.

Interest accrual follows the schedule exactly: on day D of a period with scheduled interest I
over ``days`` (under the loan's day count), the interest accrued so far is
``floor(I × reached(D+1) / days)``; a day posts the difference to the day before, so the period
posts exactly I, whatever the day count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Integer, and_, case, func, select, text, type_coerce, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from creditfactory import ledger, whitelist
from creditfactory.jobs import EodStep, StepContext, StepResult, registry
from creditfactory.money import from_minor
from creditfactory.servicing.model import (
    ClassificationPolicy,
    Tier,
    classify_array,
    days_past_due_array,
    months_current_array,
)
from creditfactory.servicing.model.accrual import daily_interest_fen_scaled, split_posted_fen
from creditfactory.servicing.store import CreditLine, Instalment, Loan

LIVE = ("active", "overdue")
_TIERS = list(Tier)
_TIER_CODE = {t.value: i for i, t in enumerate(_TIERS)}
_EPOCH = np.datetime64("1970-01-01", "D")


def _raw(column):  # type: ignore[no-untyped-def]
    """A money column as its stored integer (fen), skipping the Decimal conversion."""
    return type_coerce(column, BigInteger)


def _ranges(ctx: StepContext, *conditions) -> Iterator[tuple[int, int]]:  # type: ignore[no-untyped-def]
    with ctx.uow() as uow:
        lo, hi = uow.session.execute(select(func.min(Loan.id), func.max(Loan.id)).where(*conditions)).one()
    if lo is None:
        return
    start = int(lo)
    while start <= int(hi):
        yield start, start + ctx.chunk_size
        start += ctx.chunk_size


def _chunk_of_instalments(lo: int, hi: int) -> tuple[Any, ...]:
    """The chunk's id range stated on the instalments too: the planner then reads the chunk's
    instalments through their ``(loan_id, number)`` index instead of scanning every instalment
    of the book once per chunk (0.6 s against 0.1 s per 50,000-loan chunk of a 1M book)."""
    return Instalment.loan_id >= lo, Instalment.loan_id < hi


def _ordinal_30e(days: np.ndarray) -> np.ndarray:
    """Days to each date on a calendar of 30-day months, as 30E/360 counts them (a 31st is the
    30th): the difference of two ordinals is ``DayCount.THIRTY_E_360.days`` between the dates."""
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = (d.astype("datetime64[M]").astype(np.int64) % 12) + 1
    dom = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return 360 * y + 30 * (m - 1) + np.minimum(dom, 30) - 1


def _reached(
    day: np.ndarray, start: np.ndarray, end: np.ndarray, days: np.ndarray, thirty: np.ndarray
) -> np.ndarray:
    """Period days counted up to (not including) ``day`` under each loan's day count."""
    actual = (day - start).astype(np.int64)
    counted = np.where(thirty, _ordinal_30e(day) - _ordinal_30e(start), actual)
    counted = np.clip(counted, 0, days)
    return np.where(day >= end, days, counted)


_NAMED = re.compile(r"(?<![:\w]):(\w+)")
"""A named value in an assignment (``:name``), not a cast (``::date``)."""
_ARRAY_ESCAPE = re.compile(r'["\\]')
Column = np.ndarray | list[Any]
"""One value per loan: a NumPy array, or a list (of strings or dates)."""


def _update_loans(session: Any, assignments: str, ids: np.ndarray, values: dict[str, Any]) -> None:
    """``UPDATE servicing_loan SET <assignments> WHERE id = <id>`` for every loan of ``ids``, the
    batch's hot path.

    ``assignments`` names its values as ``:name``; each value in ``values`` is a column (a NumPy
    array or a list, one value per loan) or a scalar (the same for every loan, a business date
    say). SQLite: one prepared statement through the driver's ``executemany``. PostgreSQL: one
    statement for the whole chunk, joining the table to the columns passed as array literals
    (``UPDATE … FROM unnest(%s::bigint[], …) AS v(…) WHERE t.id = v.id``), scalars passed once.
    """
    if not len(ids):
        return
    conn = session.connection()
    names = _NAMED.findall(assignments)
    if missing := sorted(set(names) - set(values)):
        raise ValueError(f"no value for {', '.join(missing)} in {assignments!r}")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(*_unnest_update(assignments, ids, values))
        return
    columns = [_column_values(values[n], len(ids)) for n in names]
    rows = list(zip(*columns, ids.tolist(), strict=True))
    sql = f"UPDATE servicing_loan SET {_NAMED.sub('?', assignments)} WHERE id = ?"
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, rows)


def _column_values(value: Any, n: int) -> list[Any]:
    """A column's values for the driver's ``executemany`` (SQLite keeps dates as ISO text, as
    SQLAlchemy's Date type writes them)."""
    if isinstance(value, np.ndarray):
        out = value.tolist()
    elif isinstance(value, list):
        out = value
    else:
        out = [value] * n
    if out and isinstance(out[0], date):
        out = [v.isoformat() if isinstance(v, date) else v for v in out]
    return out


def _pg_array(value: Column) -> tuple[str, str]:
    """A column as PostgreSQL array literal text and its element type: one string built in one
    pass, instead of one adapted parameter per element."""
    if isinstance(value, np.ndarray):
        if value.dtype == bool:
            return "{" + ",".join("t" if v else "f" for v in value.tolist()) + "}", "boolean"
        if value.dtype.kind in "iu":
            return "{" + ",".join(map(str, value.tolist())) + "}", "bigint"
        raise TypeError(f"no array type for {value.dtype}")
    sample = next((v for v in value if v is not None), None)
    if isinstance(sample, date):
        return "{" + ",".join("NULL" if v is None else v.isoformat() for v in value) + "}", "date"
    if isinstance(sample, str):
        quoted = ("NULL" if v is None else '"' + _ARRAY_ESCAPE.sub(r"\\\g<0>", v) + '"' for v in value)
        return "{" + ",".join(quoted) + "}", "text"
    if isinstance(sample, bool | int | np.integer | np.bool_):
        return _pg_array(np.array(value))
    raise TypeError(f"no array type for a list of {type(sample).__name__}: pass a NumPy array")


def _unnest_update(assignments: str, ids: np.ndarray, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The PostgreSQL statement of :func:`_update_loans` and its parameters."""
    params: dict[str, Any] = {"ids": _pg_array(ids)[0]}
    arrays = ["%(ids)s::bigint[]"]
    columns = ["id"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        v = values[name]
        if isinstance(v, np.ndarray | list):
            if len(v) != len(ids):
                raise ValueError(f"{name}: {len(v)} values for {len(ids)} loans")
            if f"c_{name}" not in columns:
                literal, kind = _pg_array(v)
                params[f"c_{name}"] = literal
                arrays.append(f"%(c_{name})s::{kind}[]")
                columns.append(f"c_{name}")
            return f"v.c_{name}"
        params[f"s_{name}"] = v.item() if isinstance(v, np.generic) else v
        return f"%(s_{name})s"

    body = _NAMED.sub(value, assignments.replace("%", "%%"))
    statement = (
        f"UPDATE servicing_loan AS t SET {body} FROM unnest({', '.join(arrays)}) AS v({', '.join(columns)}) "
        "WHERE t.id = v.id"
    )
    return statement, params


def _dates(values: list[date]) -> np.ndarray:
    return np.array(values, dtype="datetime64[D]")


class _DayNumber(FunctionElement[int]):
    """A date column as days since 1970-01-01 (NumPy's ``datetime64[D]`` integer), computed by the
    database: a chunk's dates then arrive as plain integers instead of ``datetime.date`` objects."""

    type = Integer()
    inherit_cache = True


@compiles(_DayNumber, "postgresql")
def _day_number_pg(element: _DayNumber, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


@compiles(_DayNumber)
def _day_number_default(element: _DayNumber, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


def _subledgers(ids: np.ndarray) -> tuple[str, ...]:
    """Each loan's subledger in the journal (``loan:<id>``)."""
    return tuple(f"loan:{i}" for i in ids.tolist())


_ACCRUAL = (ledger.INTEREST_RECEIVABLE, ledger.INTEREST_INCOME)
_PENALTY = (ledger.PENALTY_RECEIVABLE, ledger.PENALTY_INCOME)


def _accounts_first(ctx: StepContext, accounts: tuple[ledger.Account, ...]) -> None:
    """The step's journal accounts, added before its chunks run at once: no two chunks then race
    to add one (the first chunk may have nothing to post)."""
    with ctx.uow() as uow:
        ledger.ensure_accounts(uow.session, accounts)
        uow.commit()


def _post_chunk(
    ctx: StepContext,
    session: Any,
    key: str,
    memo: str,
    accounts: tuple[ledger.Account, ledger.Account],
    ids: np.ndarray,
    amounts: np.ndarray,
) -> int:
    """Post a chunk's positive amounts (fen, one per loan of ``ids``) as one ``ledger.Spread``
    on the business date: each loan's subledger debited, the counter account credited with the
    total. Returns the total posted (0, and nothing posted, when no amount is positive)."""
    nz = amounts > 0
    if not nz.any():
        return 0
    ledger.post_spread(
        session,
        ledger.Spread(
            key,
            ctx.business_date,
            memo,
            *accounts,
            _subledgers(ids[nz]),
            tuple(amounts[nz].tolist()),
        ),
        now=ctx.clock.now(),
    )
    return int(amounts[nz].sum())


def _days(rows: list[Any], k: int) -> np.ndarray:
    return np.fromiter((r[k] for r in rows), dtype=np.int64, count=len(rows)).astype("datetime64[D]")


# ------------------------------------------------------------------ interest accrual


def _fresh_statistics(ctx: StepContext) -> None:
    """On PostgreSQL, refresh the planner's statistics of the servicing tables first: after a bulk
    load they are stale, and a plan made for a handful of rows is ruinous for a million."""
    with ctx.uow() as uow:
        if uow.session.get_bind().dialect.name == "postgresql":
            uow.session.execute(text("ANALYZE servicing_loan, servicing_instalment"))
            uow.commit()


def accrue_interest(ctx: StepContext) -> StepResult:
    day = ctx.business_date
    _fresh_statistics(ctx)
    _accounts_first(ctx, _ACCRUAL)
    d = np.datetime64(day, "D")

    def chunk(bounds: tuple[int, int]) -> tuple[int, int]:
        lo, hi = bounds
        posted_total = 0
        with ctx.uow() as uow:
            s = uow.session
            rows = s.execute(
                select(
                    Loan.id,
                    _DayNumber(Loan.last_accrued_date),
                    Loan.day_count == "30/360",
                    _raw(Instalment.interest),
                    _DayNumber(Instalment.start_date),
                    _DayNumber(Instalment.due_date),
                    Instalment.days,
                )
                .join(
                    Instalment,
                    and_(
                        Instalment.loan_id == Loan.id, Instalment.start_date <= day, Instalment.due_date > day
                    ),
                )
                .where(
                    Loan.id >= lo,
                    Loan.id < hi,
                    *_chunk_of_instalments(lo, hi),
                    Loan.status.in_(LIVE),
                    Loan.last_accrued_date < day,
                )
            ).all()
            if rows:
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                last = _days(rows, 1)
                thirty = np.fromiter((r[2] for r in rows), dtype=bool, count=len(rows))
                interest = np.fromiter((r[3] for r in rows), dtype=np.int64, count=len(rows))
                start = _days(rows, 4)
                end = _days(rows, 5)
                days = np.fromiter((r[6] for r in rows), dtype=np.int64, count=len(rows))
                days = np.maximum(days, 1)
                before = np.maximum(last + 1, start)
                cum_now = interest * _reached(np.full(len(rows), d + 1), start, end, days, thirty) // days
                cum_before = interest * _reached(before, start, end, days, thirty) // days
                amount = cum_now - cum_before
                posted_total += _post_chunk(
                    ctx,
                    s,
                    f"accrual:{day.isoformat()}:{lo}-{hi}",
                    "Daily interest accrual",
                    _ACCRUAL,
                    ids,
                    amount,
                )
                # One update per loan and day: the accrued amount and the watermark together (a
                # second update of the same rows would write every loan twice).
                _update_loans(
                    s,
                    "interest_receivable = interest_receivable + :amount, last_accrued_date = :day",
                    ids,
                    {"amount": amount, "day": day},
                )
            # Live loans with no instalment running today (past their last due date) move on too.
            s.execute(
                update(Loan.__table__)
                .where(Loan.id >= lo, Loan.id < hi, Loan.status.in_(LIVE), Loan.last_accrued_date < day)
                .values(last_accrued_date=day)
            )
            uow.commit()
        return len(rows), posted_total

    done = ctx.each_chunk(_ranges(ctx, Loan.status.in_(LIVE), Loan.last_accrued_date < day), chunk)
    items = sum(n for n, _ in done)
    posted_total = sum(t for _, t in done)
    return StepResult(items=items, details={"interest": str(from_minor(posted_total))})


# ------------------------------------------------------------------ due, overdue, DPD, penalty


def _mark_instalments(ctx: StepContext) -> tuple[int, int]:
    """Instalments fall due on their due date and overdue after the loan's grace days: two
    set-based updates over the book (through the ``(due_date, status)`` index), idempotent."""
    day = ctx.business_date
    with ctx.uow() as uow:
        s = uow.session
        inst = Instalment.__table__
        became_due = s.execute(
            update(inst).where(inst.c.status == "pending", inst.c.due_date <= day).values(status="due")
        ).rowcount
        overdue = 0
        for (grace,) in s.execute(select(Loan.grace_days).distinct()).all():
            cutoff = day - timedelta(days=int(grace))
            overdue += s.execute(
                update(inst)
                .where(
                    inst.c.status == "due",
                    inst.c.due_date < cutoff,
                    inst.c.loan_id.in_(select(Loan.id).where(Loan.grace_days == grace)),
                )
                .values(status="overdue")
            ).rowcount
        uow.commit()
    return became_due, overdue


def mark_overdue(ctx: StepContext) -> StepResult:
    """Due and overdue instalments, each loan's days past due and status, and penalty interest
    (罚息) on its overdue principal: one pass over the loans with anything unpaid, one update per
    loan.

    The instalments' statuses move first, set-based. Then, chunk by chunk (an id range, one
    transaction each), one grouped read gives every loan with a due or overdue instalment its
    oldest unpaid due date and overdue principal; days past due and status follow (overdue while
    anything is past its grace days, active again once nothing is), and a loan that is overdue
    on the day accrues the day's penalty interest, posted to the fen with the loan's rounding
    mode (one ``ledger.Spread`` for the chunk). The loan's watermark ``last_penalty_date`` makes a chunk that committed charge
    nothing when the step runs again; days past due and status are recomputed to the same values.
    """
    day = ctx.business_date
    became_due, overdue_instalments = _mark_instalments(ctx)
    _accounts_first(ctx, _PENALTY)
    open_penalty = (Loan.last_penalty_date.is_(None)) | (Loan.last_penalty_date < day)
    overdue_principal = func.sum(
        case((Instalment.status == "overdue", Instalment.principal - Instalment.paid_principal), else_=0)
    )

    def chunk(bounds: tuple[int, int]) -> tuple[int, int, int, int]:
        lo, hi = bounds
        with ctx.uow() as uow:
            s = uow.session
            rows = s.execute(
                select(
                    Loan.id,
                    Loan.status,
                    Loan.grace_days,
                    _DayNumber(func.min(Instalment.due_date)),
                    _raw(overdue_principal),
                    func.max(case((Instalment.status == "overdue", 1), else_=0)),
                    open_penalty,
                    _raw(Loan.penalty_rate),
                    Loan.day_count,
                    Loan.penalty_carry,
                    Loan.rounding,
                )
                .join(Instalment, Instalment.loan_id == Loan.id)
                .where(
                    Loan.id >= lo,
                    Loan.id < hi,
                    *_chunk_of_instalments(lo, hi),
                    Loan.status.in_(LIVE),
                    Instalment.status.in_(("due", "overdue")),
                )
                .group_by(
                    Loan.id,
                    Loan.status,
                    Loan.grace_days,
                    Loan.last_penalty_date,
                    Loan.penalty_rate,
                    Loan.day_count,
                    Loan.penalty_carry,
                    Loan.rounding,
                )
            ).all()
            if not rows:
                return 0, 0, 0, 0
            n = len(rows)
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
            was = [r[1] for r in rows]
            grace = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
            oldest = _days(rows, 3)
            dpd = days_past_due_array(oldest, day, grace)
            # Overdue while anything is past its grace days; back to active (cured) once nothing is.
            status = ["overdue" if p > 0 else "active" for p in dpd.tolist()]
            fell = sum(1 for now, st in zip(status, was, strict=True) if now == "overdue" and st == "active")
            cured = sum(1 for now, st in zip(status, was, strict=True) if now == "active" and st == "overdue")
            # Penalty interest: loans overdue today with an overdue instalment, not yet charged today.
            principal = np.fromiter((int(r[4] or 0) for r in rows), dtype=np.int64, count=n)
            charged = (
                (dpd > 0)
                & np.fromiter((bool(r[5]) for r in rows), dtype=bool, count=n)
                & np.fromiter((bool(r[6]) for r in rows), dtype=bool, count=n)
            )
            rate = np.fromiter((int(r[7]) for r in rows), dtype=np.int64, count=n)
            year = np.fromiter((365 if r[8] == "actual/365" else 360 for r in rows), dtype=np.int64, count=n)
            carry = np.fromiter((int(r[9] or 0) for r in rows), dtype=np.int64, count=n)
            daily = np.zeros(n, dtype=np.int64)
            for y in (360, 365):
                sel = charged & (year == y)
                if sel.any():
                    daily[sel] = daily_interest_fen_scaled(principal[sel], rate[sel], y)
            # Posted to the fen by each loan's own rounding policy (the product's, copied at drawdown).
            rounding = np.array([r[10] for r in rows], dtype=object)
            posted = np.zeros(n, dtype=np.int64)
            new_carry = carry.copy()
            for mode in set(rounding[charged].tolist()):
                sel = charged & (rounding == mode)
                posted[sel], new_carry[sel] = split_posted_fen(daily[sel], carry[sel], mode=mode)
            posted = np.where(charged, posted, 0)
            new_carry = np.where(charged, new_carry, carry)
            posted_total = _post_chunk(
                ctx, s, f"penalty:{day.isoformat()}:{lo}-{hi}", "Penalty interest", _PENALTY, ids, posted
            )
            # One update per loan: days past due, status and the day's penalty together.
            _update_loans(
                s,
                "dpd = :dpd, oldest_unpaid_due = :oldest, status = :status, "
                "penalty_receivable = penalty_receivable + :posted, penalty_carry = :carry, "
                "last_penalty_date = CASE WHEN :charged THEN :day ELSE last_penalty_date END",
                ids,
                {
                    "dpd": dpd,
                    "oldest": oldest.tolist(),  # datetime.date objects
                    "status": status,
                    "posted": posted,
                    "carry": new_carry,
                    "charged": charged,
                    "day": day,
                },
            )
            uow.commit()
        return n, fell, cured, posted_total

    done = ctx.each_chunk(_ranges(ctx, Loan.status.in_(LIVE)), chunk)
    return StepResult(
        items=sum(d[0] for d in done),
        details={
            "became_due": became_due,
            "overdue_instalments": overdue_instalments,
            "fell_overdue": sum(d[1] for d in done),
            "cured": sum(d[2] for d in done),
            "penalty": str(from_minor(sum(d[3] for d in done))),
        },
    )


# ------------------------------------------------------------------ the whitelist


EXIT_REASON = "overdue on a loan at the end of day"


def exit_overdue_customers(ctx: StepContext) -> StepResult:
    """Customers with any loan overdue on the business date leave every published whitelist.

    One set-based UPDATE of the whitelist's entries over a SELECT of the overdue customers (run
    after ``mark_overdue`` has set the day's statuses); an entry already exited is not touched again,
    so a repeat changes nothing.
    """
    with ctx.uow() as uow:
        overdue = select(Loan.customer_id).where(Loan.status == "overdue").distinct()
        n = whitelist.exit_customers(
            uow.session, customer_ids=overdue, on=ctx.business_date, reason=EXIT_REASON
        )
        uow.commit()
    return StepResult(items=n, details={"exited": n})


# ------------------------------------------------------------------ classification


def classify(ctx: StepContext) -> StepResult:
    """Five-tier classification of every live loan, chunk by chunk.

    Months current are counted from each loan's ``current_since`` (no write moves them); a loan
    is written only when its tier changes or when it is past due at a month end (its count starts
    again from that month end). The loans written carry the day as ``last_classified_date``, so a
    chunk that committed is not classified twice (an upgrade moves one tier per review).
    """
    day = ctx.business_date
    month_end = (day + timedelta(days=1)).day == 1
    policy = ctx.services.get("classification_policy") or ClassificationPolicy()
    unclassified = (Loan.last_classified_date.is_(None)) | (Loan.last_classified_date < day)

    def chunk(bounds: tuple[int, int]) -> tuple[int, int]:
        lo, hi = bounds
        with ctx.uow() as uow:
            s = uow.session
            rows = s.execute(
                select(
                    Loan.id, Loan.dpd, Loan.tier, _DayNumber(Loan.current_since), _DayNumber(Loan.start_date)
                ).where(Loan.id >= lo, Loan.id < hi, Loan.status.in_(LIVE), unclassified)
            ).all()
            if not rows:
                return 0, 0
            n = len(rows)
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
            dpd = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
            prev = np.fromiter((_TIER_CODE.get(r[2], 0) for r in rows), dtype=np.int8, count=n)
            restart = (dpd > 0) & month_end
            # a loan without the date counts from the day before it was drawn, as a new one does
            since = np.fromiter(
                (r[3] if r[3] is not None else r[4] - 1 for r in rows), dtype=np.int64, count=n
            ).astype("datetime64[D]")
            months = np.where(restart, 0, months_current_array(since, day))
            new = classify_array(dpd=dpd, previous=prev, months_current=months, policy=policy)
            moved = (new != prev) | restart
            if moved.any():
                _update_loans(
                    s,
                    "tier = :tier, current_since = CASE WHEN :restart THEN :day ELSE current_since END, "
                    "last_classified_date = :day",
                    ids[moved],
                    {
                        "tier": [_TIERS[t].value for t in new[moved].tolist()],
                        "restart": restart[moved],
                        "day": day,
                    },
                )
            uow.commit()
        return n, int((new != prev).sum())

    done = ctx.each_chunk(_ranges(ctx, Loan.status.in_(LIVE)), chunk)
    items = sum(n for n, _ in done)
    changed = sum(c for _, c in done)
    return StepResult(items=items, details={"tier_changes": changed})


# ------------------------------------------------------------------ lines and the books


def expire_lines(ctx: StepContext) -> StepResult:
    with ctx.uow() as uow:
        table = CreditLine.__table__
        n = uow.session.execute(
            update(table)
            .where(table.c.status.in_(("active", "frozen")), table.c.expiry_date <= ctx.business_date)
            .values(status="expired", version=table.c.version + 1)
        ).rowcount
        uow.commit()
    return StepResult(items=n)


def fold_journal(ctx: StepContext) -> StepResult:
    """The journal's lines posted since the last fold added to the kept sums once they are as
    many as the sums (``ledger.fold(when_due=True)``), so that the reconciliation and the trial
    balance after it read the book, not the history."""
    with ctx.uow() as uow:
        report = ledger.fold(uow.session, now=ctx.clock.now(), when_due=True)
        uow.commit()
    return StepResult(
        items=report.lines, details={"through_line_id": report.through_line_id, "left": report.left}
    )


def check_books(ctx: StepContext) -> StepResult:
    """The day's journal balances, and the loans' balances agree with it (trial balance zero)."""
    with ctx.uow() as uow:
        tb = ledger.check_trial_balance(uow.session, as_of=ctx.business_date)
    debits = sum((r.debit for r in tb.rows), Decimal("0"))
    return StepResult(items=len(tb.rows), details={"trial_balance": "zero", "debits": str(debits)})


STEPS = (
    EodStep("servicing.accrue_interest", 10, accrue_interest, "Daily interest accrual"),
    EodStep(
        "servicing.mark_overdue",
        20,
        mark_overdue,
        "Due and overdue instalments, days past due, penalty interest",
    ),
    EodStep(
        "servicing.exit_overdue_customers",
        25,
        exit_overdue_customers,
        "Overdue customers leave the whitelist",
    ),
    EodStep("servicing.classify", 40, classify, "Five-tier classification"),
    EodStep("servicing.expire_lines", 50, expire_lines, "Credit lines past expiry"),
    EodStep("ledger.fold", 70, fold_journal, "Journal lines added to the kept sums"),
    EodStep("ledger.trial_balance", 90, check_books, "Trial balance is zero"),
)


def register() -> None:
    for step in STEPS:
        registry.register(step)
