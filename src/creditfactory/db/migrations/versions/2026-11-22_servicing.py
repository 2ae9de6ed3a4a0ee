"""servicing

Revision ID: 20261122_servicing
Revises: 20261122_ledger
Create Date: 2026-11-22 14:18:05.908208
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261122_servicing"
down_revision = "20261122_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "jobs_business_date",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("last_closed_date", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jobs_business_date")),
    )
    op.create_table(
        "jobs_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("partition", sa.String(length=50), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("running", "completed", "failed", name="jobstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("failed_items", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("started_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs_run")),
        sa.UniqueConstraint(
            "job", "business_date", "partition", name=op.f("uq_jobs_run_job_business_date_partition")
        ),
    )
    op.create_table(
        "jobs_run_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs_run_item")),
    )
    with op.batch_alter_table("jobs_run_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_run_item_run_id"), ["run_id"], unique=False)

    op.create_table(
        "servicing_credit_line",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column("product_code", sa.String(length=32), nullable=False),
        sa.Column("limit_amount", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("used_amount", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("annual_rate", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_date", sa.Date(), nullable=False),
        sa.Column("expiry_date", sa.Date(), nullable=False),
        sa.Column("closed_date", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicing_credit_line")),
    )
    with op.batch_alter_table("servicing_credit_line", schema=None) as batch_op:
        batch_op.create_index("ix_servicing_credit_line_customer", ["customer_id"], unique=False)

    op.create_table(
        "servicing_product",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_servicing_product")),
    )
    op.create_table(
        "servicing_loan",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column("product_code", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("day_count", sa.String(length=16), nullable=False),
        sa.Column("rounding", sa.String(length=16), nullable=False),
        sa.Column("principal", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("annual_rate", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("penalty_rate", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("maturity_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outstanding_principal", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("interest_receivable", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("penalty_receivable", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("accrual_carry", sa.BigInteger(), nullable=False),
        sa.Column("penalty_carry", sa.BigInteger(), nullable=False),
        sa.Column("last_penalty_date", sa.Date(), nullable=True),
        sa.Column("last_accrued_date", sa.Date(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("oldest_unpaid_due", sa.Date(), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("months_current", sa.Integer(), nullable=False),
        sa.Column("last_classified_date", sa.Date(), nullable=True),
        sa.Column("closed_date", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["servicing_credit_line.id"],
            name=op.f("fk_servicing_loan_line_id_servicing_credit_line"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicing_loan")),
    )
    with op.batch_alter_table("servicing_loan", schema=None) as batch_op:
        batch_op.create_index("ix_servicing_loan_customer", ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_servicing_loan_status_accrued", ["status", "last_accrued_date"], unique=False
        )

    op.create_table(
        "servicing_instalment",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("principal", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("interest", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("paid_principal", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("paid_interest", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paid_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["servicing_loan.id"], name=op.f("fk_servicing_instalment_loan_id_servicing_loan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicing_instalment")),
        sa.UniqueConstraint("loan_id", "number", name=op.f("uq_servicing_instalment_loan_id_number")),
    )
    with op.batch_alter_table("servicing_instalment", schema=None) as batch_op:
        batch_op.create_index("ix_servicing_instalment_due", ["due_date", "status"], unique=False)

    op.create_table(
        "servicing_transaction",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("amount", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("principal", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("interest", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("penalty", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("excess", creditfactory.db.types.ScaledInt(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", creditfactory.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["servicing_loan.id"], name=op.f("fk_servicing_transaction_loan_id_servicing_loan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicing_transaction")),
        sa.UniqueConstraint("source_key", name=op.f("uq_servicing_transaction_source_key")),
    )
    with op.batch_alter_table("servicing_transaction", schema=None) as batch_op:
        batch_op.create_index("ix_servicing_transaction_loan", ["loan_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("servicing_transaction", schema=None) as batch_op:
        batch_op.drop_index("ix_servicing_transaction_loan")

    op.drop_table("servicing_transaction")
    with op.batch_alter_table("servicing_instalment", schema=None) as batch_op:
        batch_op.drop_index("ix_servicing_instalment_due")

    op.drop_table("servicing_instalment")
    with op.batch_alter_table("servicing_loan", schema=None) as batch_op:
        batch_op.drop_index("ix_servicing_loan_status_accrued")
        batch_op.drop_index("ix_servicing_loan_customer")

    op.drop_table("servicing_loan")
    op.drop_table("servicing_product")
    with op.batch_alter_table("servicing_credit_line", schema=None) as batch_op:
        batch_op.drop_index("ix_servicing_credit_line_customer")

    op.drop_table("servicing_credit_line")
    with op.batch_alter_table("jobs_run_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_run_item_run_id"))

    op.drop_table("jobs_run_item")
    op.drop_table("jobs_run")
    op.drop_table("jobs_business_date")
