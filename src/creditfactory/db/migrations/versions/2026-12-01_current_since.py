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
gets the day before it was drawn. Two set-based updates, whatever the size of the book.

The downgrade gives each loan the months current it has on the last closed business date (the
date the old counter would have reached) and makes that its last classification date.
"""

from __future__ import annotations

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


def upgrade() -> None:
    op.add_column("servicing_loan", sa.Column("current_since", sa.Date(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        classified = (
            "(date_trunc('month', (last_classified_date + 1)::timestamp) - make_interval(months => months_current)"
            " - interval '1 day')::date"
        )
        drawn = "start_date - 1"
    else:
        classified = "date(last_classified_date, '+1 day', 'start of month', '-' || months_current || ' months', '-1 day')"
        drawn = "date(start_date, '-1 day')"
    op.execute(
        f"UPDATE servicing_loan SET current_since = {classified} WHERE last_classified_date IS NOT NULL"
    )
    op.execute(f"UPDATE servicing_loan SET current_since = {drawn} WHERE last_classified_date IS NULL")
    op.execute("ALTER TABLE servicing_loan DROP COLUMN months_current")


def downgrade() -> None:
    op.execute("ALTER TABLE servicing_loan ADD COLUMN months_current INTEGER NOT NULL DEFAULT 0")
    bind = op.get_bind()
    closed = bind.execute(
        sa.text("SELECT last_closed_date FROM jobs_business_date WHERE name = 'default'")
    ).scalar()
    if isinstance(closed, str):
        closed = date.fromisoformat(closed)
    if closed is not None:
        since_dates = bind.execute(
            sa.select(_LOAN.c.current_since).where(_LOAN.c.current_since.is_not(None)).distinct()
        ).scalars()
        for since in list(since_dates):
            bind.execute(
                sa.update(_LOAN)
                .where(_LOAN.c.current_since == since)
                .values(
                    months_current=max(_month_end_index(closed) - _month_end_index(since), 0),
                    last_classified_date=closed,
                )
            )
    op.execute("ALTER TABLE servicing_loan DROP COLUMN current_since")
