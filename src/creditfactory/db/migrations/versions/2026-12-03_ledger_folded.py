"""the journal's lines folded into kept sums, so that the close reads the book, not the history

Revision ID: 20261203_ledger_folded
Revises: 20261203_unused_indexes
Create Date: 2026-12-03 19:40:00

The end of day's reconciliation and trial balance summed every journal line ever posted, every
day: their cost grew with the journal's history. ``ledger.fold`` now adds the lines posted since
its last run to kept sums (``ledger_balance_folded`` per account, subledger and currency;
``ledger_day_folded`` per value date, account and currency) and marks the last line it took
(``ledger_fold``); the reads take the sums and the lines after the mark, found by primary key.

On PostgreSQL a statement that adds journal lines first takes an advisory lock shared (held to
the end of its transaction), which the fold takes alone: the fold waits for every transaction
that has written lines, and a new line's id is drawn after the fold that could miss it. Nothing is
folded by the migration: the first fold takes the whole journal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261203_ledger_folded"
down_revision = "20261203_unused_indexes"
branch_labels = None
depends_on = None

#: ``creditfactory.ledger.store.FOLD_LOCK``
FOLD_LOCK = 6_647_893_112_370_001

POSTGRES_UP = (
    f"""
    CREATE FUNCTION ledger_lines_wait_for_fold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock_shared({FOLD_LOCK});
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ledger_entry_line_wait_for_fold BEFORE INSERT ON ledger_entry_line
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_lines_wait_for_fold()
    """,
)

POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS ledger_entry_line_wait_for_fold ON ledger_entry_line",
    "DROP FUNCTION IF EXISTS ledger_lines_wait_for_fold()",
)


def upgrade() -> None:
    op.create_table(
        "ledger_fold",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("through_line_id", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("folded_at", creditfactory.db.types.UTCDateTime(), nullable=False),
    )
    op.create_table(
        "ledger_balance_folded",
        sa.Column("account_code", sa.String(32), primary_key=True),
        sa.Column("subledger", sa.String(100), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "ledger_day_folded",
        sa.Column("value_date", sa.Date(), primary_key=True),
        sa.Column("account_code", sa.String(32), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    op.drop_table("ledger_day_folded")
    op.drop_table("ledger_balance_folded")
    op.drop_table("ledger_fold")
