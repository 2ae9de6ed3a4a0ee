"""decisioning facts: seen applications and the relationship graph

Revision ID: 20261201_decisioning_facts
Revises: 20261201_origination
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261201_decisioning_facts"
down_revision = "20261201_origination"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisioning_seen",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("application_ref", sa.String(length=64), nullable=False),
        sa.Column("applied_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=True),
        sa.Column("id_number_token", sa.String(length=64), nullable=False),
        sa.Column("phone_token", sa.String(length=64), nullable=False),
        sa.Column("device_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("address_token", sa.String(length=64), nullable=True),
        sa.Column("contact_tokens", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("is_emulator", sa.Boolean(), nullable=False),
        sa.Column("is_rooted", sa.Boolean(), nullable=False),
        sa.Column("declared_income", creditfactory.db.types.ScaledInt(2), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum("approve", "decline", "refer", name="outcome", native_enum=False, length=16),
            nullable=True,
        ),
        sa.Column("outcome_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisioning_seen")),
        sa.UniqueConstraint("application_ref", name=op.f("uq_decisioning_seen_application_ref")),
    )
    op.create_index(
        "ix_decisioning_seen_id_at", "decisioning_seen", ["id_number_token", "applied_at"], unique=False
    )
    op.create_index(
        "ix_decisioning_seen_phone_at", "decisioning_seen", ["phone_token", "applied_at"], unique=False
    )
    op.create_index(
        "ix_decisioning_seen_device_at",
        "decisioning_seen",
        ["device_fingerprint", "applied_at", "id_number_token"],
        unique=False,
    )
    op.create_index(
        "ix_decisioning_seen_ip_at", "decisioning_seen", ["ip_address", "applied_at"], unique=False
    )

    op.create_table(
        "decisioning_graph_node",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=True),
        sa.Column("negative", sa.Boolean(), nullable=False),
        sa.Column("declined", sa.Boolean(), nullable=False),
        sa.Column("defaulted", sa.Boolean(), nullable=False),
        sa.Column("degree", sa.Integer(), nullable=False),
        sa.Column("first_seen_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisioning_graph_node")),
    )
    op.create_index(
        "ix_decisioning_graph_node_key_kind", "decisioning_graph_node", ["key", "kind"], unique=True
    )
    op.create_index(
        "ix_decisioning_graph_node_customer_id", "decisioning_graph_node", ["customer_id"], unique=False
    )
    op.create_table(
        "decisioning_graph_edge",
        sa.Column("src_id", sa.BigInteger(), nullable=False),
        sa.Column("dst_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("src_id", "dst_id", "kind", name=op.f("pk_decisioning_graph_edge")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "decisioning_graph_build",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("started_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lake", sa.String(length=500), nullable=False),
        sa.Column("nodes", sa.BigInteger(), nullable=False),
        sa.Column("edges", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisioning_graph_build")),
    )


def downgrade() -> None:
    op.drop_table("decisioning_graph_build")
    op.drop_table("decisioning_graph_edge")
    op.drop_index("ix_decisioning_graph_node_customer_id", table_name="decisioning_graph_node")
    op.drop_index("ix_decisioning_graph_node_key_kind", table_name="decisioning_graph_node")
    op.drop_table("decisioning_graph_node")
    op.drop_index("ix_decisioning_seen_ip_at", table_name="decisioning_seen")
    op.drop_index("ix_decisioning_seen_device_at", table_name="decisioning_seen")
    op.drop_index("ix_decisioning_seen_phone_at", table_name="decisioning_seen")
    op.drop_index("ix_decisioning_seen_id_at", table_name="decisioning_seen")
    op.drop_table("decisioning_seen")
