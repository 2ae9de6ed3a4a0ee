"""servicing: a credit line remembers the accepted contract it was opened for

Revision ID: 20261201_servicing_lines
Revises: 20261201_decisioning_records
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_servicing_lines"
down_revision = "20261201_decisioning_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servicing_credit_line") as batch:
        batch.add_column(sa.Column("application_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("term_months", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("repayment_method", sa.String(length=24), nullable=True))
    op.create_index(
        "ux_servicing_credit_line_application", "servicing_credit_line", ["application_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_servicing_credit_line_application", table_name="servicing_credit_line")
    with op.batch_alter_table("servicing_credit_line") as batch:
        batch.drop_column("repayment_method")
        batch.drop_column("term_months")
        batch.drop_column("application_id")
