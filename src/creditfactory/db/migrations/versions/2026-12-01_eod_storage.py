"""end of day storage: loans updated in place, the journal's balance checked per statement

Revision ID: 20261201_eod_storage
Revises: 20261201_servicing_lines
Create Date: 2026-12-01 19:30:00

Four changes for the end of day, where every business day updates every live loan several
times and writes a journal line per loan:

* A journal line is written with two secondary indexes instead of four: ``(entry_id, id)`` and
  ``(subledger, account_code)`` (a loan's balances); the single-column indexes on the account,
  the subledger and the value date go (sums over an account or up to a date read most of the
  journal anyway).

* A journal line's references (its entry, its account) are checked once per statement instead
  of once per row: the foreign keys go, and the guard triggers refuse a line whose entry or
  account does not exist and the deletion of an entry or an account that lines refer to
  (PostgreSQL: in the statement-level trigger below; SQLite: row triggers, as cheap as its
  foreign keys). Two chunks writing lines at once no longer share a lock on the account row
  for every line.
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
    DECLARE
        missing text;
    BEGIN
        -- The references a foreign key would check row by row, checked once for the statement.
        SELECT n.entry_id::text INTO missing
          FROM (SELECT DISTINCT entry_id FROM new_lines) AS n
         WHERE NOT EXISTS (SELECT 1 FROM ledger_entry AS e WHERE e.id = n.entry_id)
         LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'ledger line refers to entry %, which does not exist', missing
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entry_line_entry';
        END IF;
        SELECT n.account_code INTO missing
          FROM (SELECT DISTINCT account_code FROM new_lines) AS n
         WHERE NOT EXISTS (SELECT 1 FROM ledger_account AS a WHERE a.code = n.account_code)
         LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'ledger line refers to account %, which is not in the chart', missing
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entry_line_account';
        END IF;
        INSERT INTO ledger_entry_unchecked (entry_ids) SELECT array_agg(DISTINCT entry_id) FROM new_lines;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION ledger_refuse_referenced_entry_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM old_rows AS o JOIN ledger_entry_line AS l ON l.entry_id = o.id) THEN
            RAISE EXCEPTION 'a ledger entry with lines cannot be deleted; post a reversing entry instead'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entry_line_entry';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION ledger_refuse_referenced_account_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM old_rows AS o JOIN ledger_entry_line AS l ON l.account_code = o.code) THEN
            RAISE EXCEPTION 'a ledger account with postings cannot be deleted'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_entry_line_account';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ledger_entry_referenced AFTER DELETE ON ledger_entry
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_referenced_entry_delete()
    """,
    """
    CREATE TRIGGER ledger_account_referenced AFTER DELETE ON ledger_account
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_referenced_account_delete()
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

SQLITE_UP = (
    """
    CREATE TRIGGER ledger_entry_line_references BEFORE INSERT ON ledger_entry_line
    WHEN NOT EXISTS (SELECT 1 FROM ledger_entry WHERE id = NEW.entry_id)
      OR NOT EXISTS (SELECT 1 FROM ledger_account WHERE code = NEW.account_code)
    BEGIN
        SELECT RAISE(ABORT, 'ledger line refers to an entry or an account that does not exist');
    END
    """,
    """
    CREATE TRIGGER ledger_entry_referenced BEFORE DELETE ON ledger_entry
    WHEN EXISTS (SELECT 1 FROM ledger_entry_line WHERE entry_id = OLD.id)
    BEGIN
        SELECT RAISE(ABORT, 'a ledger entry with lines cannot be deleted; post a reversing entry instead');
    END
    """,
    """
    CREATE TRIGGER ledger_account_referenced BEFORE DELETE ON ledger_account
    WHEN EXISTS (SELECT 1 FROM ledger_entry_line WHERE account_code = OLD.code)
    BEGIN
        SELECT RAISE(ABORT, 'a ledger account with postings cannot be deleted');
    END
    """,
)

SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS ledger_account_referenced",
    "DROP TRIGGER IF EXISTS ledger_entry_referenced",
    "DROP TRIGGER IF EXISTS ledger_entry_line_references",
)

POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS ledger_account_referenced ON ledger_account",
    "DROP TRIGGER IF EXISTS ledger_entry_referenced ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_refuse_referenced_account_delete()",
    "DROP FUNCTION IF EXISTS ledger_refuse_referenced_entry_delete()",
    "ALTER TABLE servicing_loan RESET (fillfactor)",
    "DROP TRIGGER IF EXISTS ledger_entry_line_balanced ON ledger_entry_unchecked",
    "DROP FUNCTION IF EXISTS ledger_entry_balanced()",
    "DROP TRIGGER IF EXISTS ledger_entry_line_deleted ON ledger_entry_line",
    "DROP TRIGGER IF EXISTS ledger_entry_line_inserted ON ledger_entry_line",
    "DROP FUNCTION IF EXISTS ledger_note_deleted_lines()",
    "DROP FUNCTION IF EXISTS ledger_note_inserted_lines()",
)


_LINE_FKS = (
    ("fk_ledger_entry_line_account_code_ledger_account", "ledger_account", ["account_code"], ["code"]),
    ("fk_ledger_entry_line_entry_id_ledger_entry", "ledger_entry", ["entry_id"], ["id"]),
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("ledger_entry_line") as batch:
        for name, *_ in _LINE_FKS:
            batch.drop_constraint(name, type_="foreignkey")
    if not postgres:
        for statement in SQLITE_UP:
            op.execute(statement)
    op.drop_index("ix_ledger_entry_line_value_date", table_name="ledger_entry_line")
    op.drop_index("ix_ledger_entry_line_account_code", table_name="ledger_entry_line")
    op.drop_index("ix_ledger_entry_line_subledger", table_name="ledger_entry_line")
    op.create_index("ix_ledger_entry_line_subledger", "ledger_entry_line", ["subledger", "account_code"])
    op.drop_index("ix_servicing_loan_status_accrued", table_name="servicing_loan")
    op.create_index("ix_servicing_loan_status", "servicing_loan", ["status"])
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
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    with op.batch_alter_table("ledger_entry_line") as batch:
        for name, table, local, remote in _LINE_FKS:
            batch.create_foreign_key(name, table, local, remote)
    op.drop_index("ix_servicing_loan_status", table_name="servicing_loan")
    op.create_index("ix_servicing_loan_status_accrued", "servicing_loan", ["status", "last_accrued_date"])
    op.drop_index("ix_ledger_entry_line_subledger", table_name="ledger_entry_line")
    op.create_index("ix_ledger_entry_line_subledger", "ledger_entry_line", ["subledger"])
    op.create_index("ix_ledger_entry_line_account_code", "ledger_entry_line", ["account_code"])
    op.create_index("ix_ledger_entry_line_value_date", "ledger_entry_line", ["value_date"])
