"""indexes no query reads: the applicant's attributes on applications, a contact's phone, an event's name

Revision ID: 20261203_unused_indexes
Revises: 20261202_reference_stamp
Create Date: 2026-12-03 09:00:00

Velocity and the relationship graph read an applicant's ID number, phone, device and IP address
from ``decisioning_seen`` and the graph's nodes, never from ``origination_application`` or its
contacts; the outbox is read by status and by its deduplication key, never by name. Each of
these indexes cost every decision an entry at the application's insert, another at its decided
update (the status changes, so the update is never a heap-only one), one per contact and one per
event.
"""

from __future__ import annotations

from alembic import op

revision = "20261203_unused_indexes"
down_revision = "20261202_reference_stamp"
branch_labels = None
depends_on = None

#: (index, table, columns)
DROPPED = (
    ("ix_origination_application_id_number", "origination_application", ["id_number_token", "submitted_at"]),
    ("ix_origination_application_phone", "origination_application", ["phone_token", "submitted_at"]),
    ("ix_origination_application_device", "origination_application", ["device_fingerprint", "submitted_at"]),
    ("ix_origination_application_ip", "origination_application", ["ip", "submitted_at"]),
    ("ix_origination_application_contact_phone", "origination_application_contact", ["phone_token"]),
    ("ix_events_outbox_name", "events_outbox", ["name"]),
)


def upgrade() -> None:
    for name, table, _columns in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns, unique=False)
