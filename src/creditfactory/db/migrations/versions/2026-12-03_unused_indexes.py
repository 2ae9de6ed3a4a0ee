"""indexes no query reads: a contact's phone, an event's name

Revision ID: 20261203_unused_indexes
Revises: 20261202_reference_stamp
Create Date: 2026-12-03 09:00:00

The relationship graph reads a contact's phone from the graph's nodes, never from
``origination_application_contact``; the outbox is read by status and by its deduplication key,
never by name. Each of these indexes cost every application an entry per contact and one per
event. (The application's own indexes on the applicant's ID number, phone, device and IP stay:
a reviewer's view counts the applications that share them.)
"""

from __future__ import annotations

from alembic import op

revision = "20261203_unused_indexes"
down_revision = "20261202_reference_stamp"
branch_labels = None
depends_on = None

#: (index, table, columns)
DROPPED = (
    ("ix_origination_application_contact_phone", "origination_application_contact", ["phone_token"]),
    ("ix_events_outbox_name", "events_outbox", ["name"]),
)


def upgrade() -> None:
    for name, table, _columns in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns, unique=False)
