"""a repayment keeps the prepayment choice its request asked for

Revision ID: 20261204_repayment_choice
Revises: 20261203_ledger_folded
Create Date: 2026-12-04 14:50:00

A repayment is found again by its idempotency key, whoever sends it: the API answers a second
request under the same key with the first repayment when it asked for the same one. The choice
of what an early repayment changes (``keep_instalment``, ``keep_term``, or none given: the
product's) is part of what was asked, and is now kept with the transaction
(``servicing_transaction.prepayment``, NULL when the request gave none and for the repayments
made before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261204_repayment_choice"
down_revision = "20261203_ledger_folded"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servicing_transaction") as batch:
        batch.add_column(sa.Column("prepayment", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servicing_transaction") as batch:
        batch.drop_column("prepayment")
