"""foundation

Revision ID: 20261122_foundation
Revises:
Create Date: 2026-11-22 13:18:29.344557
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261122_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "command_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=128), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum("running", "completed", name="commandstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_log")),
        sa.UniqueConstraint(
            "principal_id",
            "operation",
            "idempotency_key",
            name=op.f("uq_command_log_principal_id_operation_idempotency_key"),
        ),
    )
    op.create_table(
        "contract_branch",
        sa.Column("branch_id", sa.String(length=16), nullable=False),
        sa.Column("branch_name", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("opened_date", sa.Date(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("loaded_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("branch_id", name=op.f("pk_contract_branch")),
    )
    op.create_table(
        "contract_ingest_file",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum("loaded", "unchanged", "failed", name="filestatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_ingest_file")),
    )
    with op.batch_alter_table("contract_ingest_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_ingest_file_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_contract_ingest_file_table_sha", ["table_name", "sha256"], unique=False)

    op.create_table(
        "contract_ingest_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_dir", sa.String(length=500), nullable=False),
        sa.Column(
            "status",
            sa.Enum("running", "completed", "failed", name="runstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("started_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("reject_dir", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_ingest_run")),
    )
    op.create_table(
        "contract_negative_entry",
        sa.Column("entry_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("value_token", sa.String(length=64), nullable=False),
        sa.Column("value_enc", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("listed_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("loaded_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_contract_negative_entry")),
    )
    with op.batch_alter_table("contract_negative_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_negative_entry_value_token"), ["value_token"], unique=False
        )

    op.create_table(
        "events_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "delivered", "dead", name="outboxstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("available_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_events_outbox_dedup_key")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_outbox_event_id")),
    )
    with op.batch_alter_table("events_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_outbox_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_outbox_status"), ["status"], unique=False)

    op.create_table(
        "security_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.String(length=400), nullable=False),
        sa.Column("unmasked", sa.Boolean(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_audit")),
    )
    with op.batch_alter_table("security_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_security_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_security_audit_principal_id"), ["principal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_security_audit_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "contract_staff",
        sa.Column("staff_id", sa.String(length=16), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("phone_token", sa.String(length=64), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("loaded_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["contract_branch.branch_id"],
            name=op.f("fk_contract_staff_branch_id_contract_branch"),
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_contract_staff")),
    )
    with op.batch_alter_table("contract_staff", schema=None) as batch_op:
        batch_op.create_index("ix_contract_staff_branch_id", ["branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contract_staff_phone_token"), ["phone_token"], unique=False)

    op.create_table(
        "contract_customer",
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column("id_number_token", sa.String(length=64), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=False),
        sa.Column("name_enc", sa.Text(), nullable=False),
        sa.Column("gender", sa.String(length=64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("phone_token", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("branch_id", sa.String(length=64), nullable=False),
        sa.Column("manager_id", sa.String(length=64), nullable=True),
        sa.Column("address_enc", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("kyc_status", sa.String(length=64), nullable=False),
        sa.Column("marital_status", sa.String(length=64), nullable=True),
        sa.Column("education", sa.String(length=64), nullable=True),
        sa.Column("opened_date", sa.Date(), nullable=False),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("loaded_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["contract_branch.branch_id"],
            name=op.f("fk_contract_customer_branch_id_contract_branch"),
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["contract_staff.staff_id"],
            name=op.f("fk_contract_customer_manager_id_contract_staff"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_contract_customer")),
        sa.UniqueConstraint("id_number_token", name=op.f("uq_contract_customer_id_number_token")),
    )
    with op.batch_alter_table("contract_customer", schema=None) as batch_op:
        batch_op.create_index("ix_contract_customer_branch_id", ["branch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_contract_customer_id_number_token"), ["id_number_token"], unique=False
        )
        batch_op.create_index("ix_contract_customer_manager_id", ["manager_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contract_customer_phone_token"), ["phone_token"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("contract_customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_customer_phone_token"))
        batch_op.drop_index("ix_contract_customer_manager_id")
        batch_op.drop_index(batch_op.f("ix_contract_customer_id_number_token"))
        batch_op.drop_index("ix_contract_customer_branch_id")

    op.drop_table("contract_customer")
    with op.batch_alter_table("contract_staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_staff_phone_token"))
        batch_op.drop_index("ix_contract_staff_branch_id")

    op.drop_table("contract_staff")
    with op.batch_alter_table("security_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_security_audit_subject_id"))
        batch_op.drop_index(batch_op.f("ix_security_audit_principal_id"))
        batch_op.drop_index(batch_op.f("ix_security_audit_at"))

    op.drop_table("security_audit")
    with op.batch_alter_table("events_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_events_outbox_name"))

    op.drop_table("events_outbox")
    with op.batch_alter_table("contract_negative_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_negative_entry_value_token"))

    op.drop_table("contract_negative_entry")
    op.drop_table("contract_ingest_run")
    with op.batch_alter_table("contract_ingest_file", schema=None) as batch_op:
        batch_op.drop_index("ix_contract_ingest_file_table_sha")
        batch_op.drop_index(batch_op.f("ix_contract_ingest_file_run_id"))

    op.drop_table("contract_ingest_file")
    op.drop_table("contract_branch")
    op.drop_table("command_log")
