"""whitelist: versions and their published entries (offers)

Revision ID: 20261201_whitelist
Revises: 20261201_modeling
Create Date: 2026-12-01 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261201_whitelist"
down_revision = "20261201_modeling"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = creditfactory.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "whitelist_version",
        sa.Column("id", _ID, nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "building",
                "published",
                "superseded",
                "retired",
                name="versionstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("strategy_name", sa.String(length=100), nullable=True),
        sa.Column("strategy_version", sa.String(length=32), nullable=True),
        sa.Column("strategy_hash", sa.String(length=64), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("input_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("scored", sa.BigInteger(), nullable=False),
        sa.Column("eligible", sa.BigInteger(), nullable=False),
        sa.Column("excluded", sa.BigInteger(), nullable=False),
        sa.Column("total_limit", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("published_at", _AT, nullable=True),
        sa.Column("closed_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whitelist_version")),
        sa.UniqueConstraint("identity", name=op.f("uq_whitelist_version_identity")),
    )
    op.create_index("ix_whitelist_version_name_status", "whitelist_version", ["name", "status"], unique=False)
    op.create_table(
        "whitelist_entry",
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=True),
        sa.Column("branch_id", sa.String(length=16), nullable=True),
        sa.Column("grade", sa.String(length=8), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("limit_amount", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("annual_rate", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=False),
        sa.Column("reasons", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "offered",
                "applied",
                "accepted",
                "declined",
                "exited",
                "expired",
                "superseded",
                name="entrystatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("status_date", sa.Date(), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["whitelist_version.id"],
            name=op.f("fk_whitelist_entry_version_id_whitelist_version"),
        ),
        sa.PrimaryKeyConstraint("version_id", "customer_id", name=op.f("pk_whitelist_entry")),
    )
    op.create_index(
        "ix_whitelist_entry_customer", "whitelist_entry", ["customer_id", "version_id"], unique=False
    )
    op.create_index(
        "ix_whitelist_entry_version_status", "whitelist_entry", ["version_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_whitelist_entry_version_status", table_name="whitelist_entry")
    op.drop_index("ix_whitelist_entry_customer", table_name="whitelist_entry")
    op.drop_table("whitelist_entry")
    op.drop_index("ix_whitelist_version_name_status", table_name="whitelist_version")
    op.drop_table("whitelist_version")
