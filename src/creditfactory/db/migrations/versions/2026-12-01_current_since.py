"""months current counted from a date: a month end no longer writes every current loan

Revision ID: 20261201_current_since
Revises: 20261201_eod_storage
Create Date: 2026-12-01 23:00:00

``servicing_loan.months_current`` (a counter every month end added one to for every current
loan) becomes ``current_since``: the date after which the month ends are counted (the day
before the loan was drawn, or the last month end at which it was past due). The count moves
with the calendar; a month end writes only the loans past due on it.

Existing loans keep their count: a loan classified on day D with N months current gets the
month end N months before the last month end on or before D; a loan never classified (N is 0)
gets the day before it was drawn. One update per distinct (N, D) and per distinct drawing date.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "20261201_current_since"
down_revision = "20261201_eod_storage"
branch_labels = None
depends_on = None

_LOAN = sa.table(
    "servicing_loan",
    sa.column("start_date", sa.Date),
    sa.column("last_classified_date", sa.Date),
    sa.column("months_current", sa.Integer),
    sa.column("current_since", sa.Date),
)


def _month_end_index(day: date) -> int:
    index = day.year * 12 + day.month - 1
    return index if (day + timedelta(days=1)).month != day.month else index - 1


def _month_end(index: int) -> date:
    year, month = divmod(index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def upgrade() -> None:
    op.add_column("servicing_loan", sa.Column("current_since", sa.Date(), nullable=True))
    bind = op.get_bind()
    classified = bind.execute(
        sa.select(_LOAN.c.months_current, _LOAN.c.last_classified_date)
        .where(_LOAN.c.last_classified_date.is_not(None))
        .distinct()
    ).all()
    for months, on in classified:
        bind.execute(
            sa.update(_LOAN)
            .where(_LOAN.c.months_current == months, _LOAN.c.last_classified_date == on)
            .values(current_since=_month_end(_month_end_index(on) - int(months)))
        )
    drawn = bind.execute(
        sa.select(_LOAN.c.start_date).where(_LOAN.c.last_classified_date.is_(None)).distinct()
    ).scalars()
    for start in list(drawn):
        bind.execute(
            sa.update(_LOAN)
            .where(_LOAN.c.last_classified_date.is_(None), _LOAN.c.start_date == start)
            .values(current_since=start - timedelta(days=1))
        )
    op.execute("ALTER TABLE servicing_loan DROP COLUMN months_current")


def downgrade() -> None:
    op.execute("ALTER TABLE servicing_loan ADD COLUMN months_current INTEGER NOT NULL DEFAULT 0")
    bind = op.get_bind()
    pairs = bind.execute(
        sa.select(_LOAN.c.current_since, _LOAN.c.last_classified_date)
        .where(_LOAN.c.last_classified_date.is_not(None), _LOAN.c.current_since.is_not(None))
        .distinct()
    ).all()
    for since, on in pairs:
        bind.execute(
            sa.update(_LOAN)
            .where(_LOAN.c.current_since == since, _LOAN.c.last_classified_date == on)
            .values(months_current=max(_month_end_index(on) - _month_end_index(since), 0))
        )
    op.execute("ALTER TABLE servicing_loan DROP COLUMN current_since")
