"""decisioning records: published decision strategies and decision records

Revision ID: 20261201_decisioning_records
Revises: 20261201_decisioning_facts
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261201_decisioning_records"
down_revision = "20261201_decisioning_facts"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "decisioning_strategy",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("published_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column("retired_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisioning_strategy")),
    )
    op.create_index(
        "ix_decisioning_strategy_active_role", "decisioning_strategy", ["active", "role"], unique=False
    )
    op.create_table(
        "decisioning_decision",
        sa.Column("id", _ID, nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column("strategy_id", _ID, nullable=False),
        sa.Column("strategy_name", sa.String(length=100), nullable=False),
        sa.Column("strategy_version", sa.Integer(), nullable=True),
        sa.Column("strategy_sha256", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("grade", sa.String(length=16), nullable=True),
        sa.Column("limit", creditfactory.db.types.ScaledInt(2), nullable=True),
        sa.Column("annual_rate", creditfactory.db.types.ScaledInt(8), nullable=True),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("pd", sa.Float(), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("decided_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("portrait_as_of", sa.Date(), nullable=True),
        sa.Column("whitelisted", sa.Boolean(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("hits", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("variables", sa.Text(), nullable=False),
        sa.Column("timings", sa.Text(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["decisioning_strategy.id"],
            name=op.f("fk_decisioning_decision_strategy_id_decisioning_strategy"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisioning_decision")),
        sa.UniqueConstraint(
            "application_id", "role", name=op.f("uq_decisioning_decision_application_id_role")
        ),
    )
    op.create_index(
        "ix_decisioning_decision_business_date", "decisioning_decision", ["business_date"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_decisioning_decision_business_date", table_name="decisioning_decision")
    op.drop_table("decisioning_decision")
    op.drop_index("ix_decisioning_strategy_active_role", table_name="decisioning_strategy")
    op.drop_table("decisioning_strategy")
