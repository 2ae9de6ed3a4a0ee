"""ledger

Revision ID: 20261122_ledger
Revises: 20261122_foundation
Create Date: 2026-11-22 13:50:25.862003

The journal: ``ledger_account``, ``ledger_entry`` and ``ledger_entry_line``. On PostgreSQL two
guards live in the database as well (after django-hordak): a deferred constraint trigger that
refuses, at commit, an entry whose lines do not balance per currency, and a trigger that refuses
any UPDATE of entries and lines (corrections are reversing entries).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261122_ledger"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None

POSTGRES_GUARDS = (
    """
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        line ledger_entry_line;
        difference bigint;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            line := OLD;
        ELSE
            line := NEW;
            -- At commit every line of the entry is present: its last line checks it, once, so an
            -- entry of n lines costs O(n) and not O(n^2) (one accrual entry carries a whole chunk).
            IF line.id <> (SELECT max(l.id) FROM ledger_entry_line AS l WHERE l.entry_id = line.entry_id) THEN
                RETURN NULL;
            END IF;
        END IF;
        -- Each line checks its own entry in its own currency; together they cover every currency.
        SELECT l.currency, sum(l.debit) - sum(l.credit) INTO line.currency, difference
          FROM ledger_entry_line AS l
         WHERE l.entry_id = line.entry_id
         GROUP BY l.currency
        HAVING sum(l.debit) <> sum(l.credit)
         LIMIT 1;
        IF difference IS NOT NULL AND difference <> 0 THEN
            RAISE EXCEPTION 'ledger entry % (%) does not balance in %: debits minus credits = % hundredths',
                line.entry_id,
                coalesce((SELECT e.source_key FROM ledger_entry AS e WHERE e.id = line.entry_id), 'deleted'),
                line.currency,
                difference
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entry_line_balanced';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_entry_line_balanced
        AFTER INSERT OR UPDATE OR DELETE ON ledger_entry_line
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()
    """,
    """
    CREATE FUNCTION ledger_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% rows are never updated; post a reversing entry instead', TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER ledger_entry_immutable BEFORE UPDATE ON ledger_entry
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_update()
    """,
    """
    CREATE TRIGGER ledger_entry_line_immutable BEFORE UPDATE ON ledger_entry_line
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_update()
    """,
)

POSTGRES_GUARDS_DROP = (
    "DROP TRIGGER IF EXISTS ledger_entry_line_immutable ON ledger_entry_line",
    "DROP TRIGGER IF EXISTS ledger_entry_immutable ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_refuse_update()",
    "DROP TRIGGER IF EXISTS ledger_entry_line_balanced ON ledger_entry_line",
    "DROP FUNCTION IF EXISTS ledger_entry_balanced()",
)


def upgrade() -> None:
    op.create_table(
        "ledger_account",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "asset",
                "liability",
                "equity",
                "income",
                "expense",
                name="accounttype",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("contra", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ledger_account")),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("posted_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("reverses_entry_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reverses_entry_id"],
            ["ledger_entry.id"],
            name=op.f("fk_ledger_entry_reverses_entry_id_ledger_entry"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry")),
        sa.UniqueConstraint("reverses_entry_id", name=op.f("uq_ledger_entry_reverses_entry_id")),
        sa.UniqueConstraint("source_key", name=op.f("uq_ledger_entry_source_key")),
    )
    op.create_table(
        "ledger_entry_line",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("account_code", sa.String(length=32), nullable=False),
        sa.Column("subledger", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("debit", creditfactory.db.types.ScaledInt(2), nullable=False),
        sa.Column("credit", creditfactory.db.types.ScaledInt(2), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.CheckConstraint(
            "(debit > 0 AND credit = 0) OR (debit = 0 AND credit > 0)",
            name=op.f("ck_ledger_entry_line_one_side"),
        ),
        sa.ForeignKeyConstraint(
            ["account_code"],
            ["ledger_account.code"],
            name=op.f("fk_ledger_entry_line_account_code_ledger_account"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entry.id"], name=op.f("fk_ledger_entry_line_entry_id_ledger_entry")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry_line")),
    )
    with op.batch_alter_table("ledger_entry_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entry_line_account_code"), ["account_code"], unique=False)
        batch_op.create_index("ix_ledger_entry_line_entry_id", ["entry_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_line_subledger"), ["subledger"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entry_line_value_date"), ["value_date"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_GUARDS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_GUARDS_DROP:
            op.execute(statement)

    with op.batch_alter_table("ledger_entry_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entry_line_value_date"))
        batch_op.drop_index(batch_op.f("ix_ledger_entry_line_subledger"))
        batch_op.drop_index("ix_ledger_entry_line_entry_id")
        batch_op.drop_index(batch_op.f("ix_ledger_entry_line_account_code"))

    op.drop_table("ledger_entry_line")
    op.drop_table("ledger_entry")
    op.drop_table("ledger_account")
