"""end of day storage: loans updated in place, the journal's balance checked per statement

Revision ID: 20261201_eod_storage
Revises: 20261201_servicing_lines
Create Date: 2026-12-01 19:30:00

Three changes for the end of day, where every business day updates every live loan several
times and writes a journal line per loan:

* A journal line is written with two secondary indexes instead of four: ``(entry_id, id)`` and
  ``(subledger, account_code)`` (a loan's balances); the single-column indexes on the account,
  the subledger and the value date go (sums over an account or up to a date read most of the
  journal anyway).

* ``servicing_loan`` keeps free room in its pages (``fillfactor = 50``) and its status index no
  longer carries ``last_accrued_date``: a day's updates of a loan then stay on its page and touch
  no index (heap-only tuples) instead of writing a new entry in every index. The fill factor
  applies to pages written from now on; ``VACUUM FULL servicing_loan`` applies it to an existing
  book.
* The balance of journal entries is still refused at commit when it does not hold, but the
  check no longer runs once per line. A statement-level trigger with a transition table notes
  the entries each ``INSERT``, ``COPY`` or ``DELETE`` touched (one row per statement holding the
  entries' ids, in ``ledger_entry_unchecked``), and a deferred constraint trigger on that table
  checks the noted entries with one grouped query at commit and removes the note. A daily
  accrual of a million lines costs one check per chunk instead of a million trigger calls.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_eod_storage"
down_revision = "20261201_servicing_lines"
branch_labels = None
depends_on = None

POSTGRES_UP = (
    "DROP TRIGGER IF EXISTS ledger_entry_line_balanced ON ledger_entry_line",
    "DROP FUNCTION IF EXISTS ledger_entry_balanced()",
    """
    CREATE FUNCTION ledger_note_inserted_lines() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ledger_entry_unchecked (entry_ids) SELECT array_agg(DISTINCT entry_id) FROM new_lines;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION ledger_note_deleted_lines() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ledger_entry_unchecked (entry_ids) SELECT array_agg(DISTINCT entry_id) FROM old_lines;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ledger_entry_line_inserted AFTER INSERT ON ledger_entry_line
        REFERENCING NEW TABLE AS new_lines
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_note_inserted_lines()
    """,
    """
    CREATE TRIGGER ledger_entry_line_deleted AFTER DELETE ON ledger_entry_line
        REFERENCING OLD TABLE AS old_lines
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_note_deleted_lines()
    """,
    """
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        unbalanced_entry bigint;
        unbalanced_currency text;
        difference bigint;
    BEGIN
        IF NEW.entry_ids IS NOT NULL THEN
            SELECT l.entry_id, l.currency, sum(l.debit) - sum(l.credit)
              INTO unbalanced_entry, unbalanced_currency, difference
              FROM ledger_entry_line AS l
             WHERE l.entry_id = ANY (NEW.entry_ids)
             GROUP BY l.entry_id, l.currency
            HAVING sum(l.debit) <> sum(l.credit)
             ORDER BY l.entry_id, l.currency
             LIMIT 1;
            IF difference IS NOT NULL THEN
                RAISE EXCEPTION 'ledger entry % (%) does not balance in %: debits minus credits = % hundredths',
                    unbalanced_entry,
                    coalesce((SELECT e.source_key FROM ledger_entry AS e WHERE e.id = unbalanced_entry), 'deleted'),
                    unbalanced_currency,
                    difference
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entry_line_balanced';
            END IF;
        END IF;
        DELETE FROM ledger_entry_unchecked WHERE id = NEW.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_entry_line_balanced
        AFTER INSERT ON ledger_entry_unchecked
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()
    """,
    "ALTER TABLE servicing_loan SET (fillfactor = 50)",
)

POSTGRES_DOWN = (
    "ALTER TABLE servicing_loan RESET (fillfactor)",
    "DROP TRIGGER IF EXISTS ledger_entry_line_balanced ON ledger_entry_unchecked",
    "DROP FUNCTION IF EXISTS ledger_entry_balanced()",
    "DROP TRIGGER IF EXISTS ledger_entry_line_deleted ON ledger_entry_line",
    "DROP TRIGGER IF EXISTS ledger_entry_line_inserted ON ledger_entry_line",
    "DROP FUNCTION IF EXISTS ledger_note_deleted_lines()",
    "DROP FUNCTION IF EXISTS ledger_note_inserted_lines()",
)


def upgrade() -> None:
    op.drop_index("ix_ledger_entry_line_value_date", table_name="ledger_entry_line")
    op.drop_index("ix_ledger_entry_line_account_code", table_name="ledger_entry_line")
    op.drop_index("ix_ledger_entry_line_subledger", table_name="ledger_entry_line")
    op.create_index("ix_ledger_entry_line_subledger", "ledger_entry_line", ["subledger", "account_code"])
    op.drop_index("ix_servicing_loan_status_accrued", table_name="servicing_loan")
    op.create_index("ix_servicing_loan_status", "servicing_loan", ["status"])
    postgres = op.get_bind().dialect.name == "postgresql"
    # Rows live only until the commit of the transaction that wrote them: no need to log them.
    op.create_table(
        "ledger_entry_unchecked",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("entry_ids", sa.ARRAY(sa.BigInteger()).with_variant(sa.JSON(), "sqlite"), nullable=True),
        prefixes=["UNLOGGED"] if postgres else [],
    )
    if postgres:
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
        from importlib import import_module

        ledger = import_module("creditfactory.db.migrations.versions.2026-11-22_ledger")
        for statement in ledger.POSTGRES_GUARDS[:2]:
            op.execute(statement)
    op.drop_table("ledger_entry_unchecked")
    op.drop_index("ix_servicing_loan_status", table_name="servicing_loan")
    op.create_index("ix_servicing_loan_status_accrued", "servicing_loan", ["status", "last_accrued_date"])
    op.drop_index("ix_ledger_entry_line_subledger", table_name="ledger_entry_line")
    op.create_index("ix_ledger_entry_line_subledger", "ledger_entry_line", ["subledger"])
    op.create_index("ix_ledger_entry_line_account_code", "ledger_entry_line", ["account_code"])
    op.create_index("ix_ledger_entry_line_value_date", "ledger_entry_line", ["value_date"])
