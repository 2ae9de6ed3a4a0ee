"""modeling: the model registry

Revision ID: 20261201_modeling
Revises: 20261122_servicing
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261201_modeling"
down_revision = "20261122_servicing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modeling_model_version",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=True),
        sa.Column(
            "status",
            sa.Enum("draft", "approved", "retired", name="modelstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("trained_by", sa.String(length=64), nullable=False),
        sa.Column("trained_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=64), nullable=True),
        sa.Column("retired_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("artefact_path", sa.String(length=200), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("auc", sa.Float(), nullable=True),
        sa.Column("ks", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modeling_model_version")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_modeling_model_version_name_version")),
    )
    op.create_index(
        "ix_modeling_model_version_status", "modeling_model_version", ["name", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_modeling_model_version_status", table_name="modeling_model_version")
    op.drop_table("modeling_model_version")
