"""the reference data's stamp: raised by every write of the strategies, models and products

Revision ID: 20261202_reference_stamp
Revises: 20261201_current_since
Create Date: 2026-12-02 15:30:00

``db_reference_version`` holds one row: a random epoch and a counter. Triggers on
``decisioning_strategy``, ``modeling_model_version`` and ``servicing_product`` raise the counter
at every insert, update and delete (PostgreSQL: once per statement, truncations included;
SQLite: once per row), and write the row afresh, with a new epoch, when it is not there. The
servers keep what they read of those tables under the stamp they saw
(:mod:`creditfactory.db.reference`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261202_reference_stamp"
down_revision = "20261201_current_since"
branch_labels = None
depends_on = None

TABLES = ("decisioning_strategy", "modeling_model_version", "servicing_product")

POSTGRES_UP = (
    """
    CREATE FUNCTION db_reference_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO db_reference_version (id, epoch, version)
        VALUES (1, md5(random()::text || clock_timestamp()::text), 1)
        ON CONFLICT (id) DO UPDATE SET version = db_reference_version.version + 1;
        RETURN NULL;
    END
    $$
    """,
    *(
        f"CREATE TRIGGER {t}_reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {t} "
        "FOR EACH STATEMENT EXECUTE FUNCTION db_reference_changed()"
        for t in TABLES
    ),
)
POSTGRES_DOWN = (
    *(f"DROP TRIGGER IF EXISTS {t}_reference_changed ON {t}" for t in TABLES),
    "DROP FUNCTION IF EXISTS db_reference_changed()",
)
SQLITE_UP = tuple(
    f"""
    CREATE TRIGGER {t}_reference_{op_name.lower()} AFTER {op_name} ON {t} BEGIN
        INSERT INTO db_reference_version (id, epoch, version)
        VALUES (1, lower(hex(randomblob(16))), 1)
        ON CONFLICT (id) DO UPDATE SET version = version + 1;
    END
    """
    for t in TABLES
    for op_name in ("INSERT", "UPDATE", "DELETE")
)
SQLITE_DOWN = tuple(
    f"DROP TRIGGER IF EXISTS {t}_reference_{op_name.lower()}"
    for t in TABLES
    for op_name in ("INSERT", "UPDATE", "DELETE")
)


def upgrade() -> None:
    op.create_table(
        "db_reference_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    epoch = "md5(random()::text || clock_timestamp()::text)" if postgres else "lower(hex(randomblob(16)))"
    op.execute(f"INSERT INTO db_reference_version (id, epoch, version) VALUES (1, {epoch}, 1)")
    for statement in POSTGRES_UP if postgres else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in POSTGRES_DOWN if op.get_bind().dialect.name == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("db_reference_version")
