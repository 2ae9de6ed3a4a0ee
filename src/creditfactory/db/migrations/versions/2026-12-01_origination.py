"""origination: applications, their contacts and transitions, consents

Revision ID: 20261201_origination
Revises: 20261201_whitelist
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import creditfactory.db.types

revision = "20261201_origination"
down_revision = "20261201_whitelist"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = creditfactory.db.types.UTCDateTime(timezone=True)
_FEN = creditfactory.db.types.ScaledInt(2)
_RATE = creditfactory.db.types.ScaledInt(8)


def upgrade() -> None:
    op.create_table(
        "origination_application",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column("in_progress_customer_id", sa.String(length=20), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "submitted",
                "approved",
                "declined",
                "referred",
                "contract_signed",
                "line_opened",
                "withdrawn",
                "cancelled",
                "expired",
                name="applicationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum("app", "wechat", "h5", "branch", "partner", name="channel", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("product_terms", sa.Text(), nullable=False),
        sa.Column("amount", _FEN, nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "daily_consumption",
                "home_renovation",
                "durable_goods",
                "education",
                "medical",
                "travel",
                "farming",
                "business_operation",
                name="purpose",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("repayment_method", sa.String(length=24), nullable=False),
        sa.Column("declared_annual_income", _FEN, nullable=True),
        sa.Column("offer_version_id", sa.BigInteger(), nullable=True),
        sa.Column("offer_limit", _FEN, nullable=True),
        sa.Column("offer_rate", _RATE, nullable=True),
        sa.Column("offer_expiry_date", sa.Date(), nullable=True),
        sa.Column("applicant_name_enc", sa.Text(), nullable=False),
        sa.Column("id_number_token", sa.String(length=32), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=False),
        sa.Column("phone_token", sa.String(length=32), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("known_customer", sa.Boolean(), nullable=False),
        sa.Column("id_matches_record", sa.Boolean(), nullable=True),
        sa.Column("phone_matches_record", sa.Boolean(), nullable=True),
        sa.Column("name_matches_record", sa.Boolean(), nullable=True),
        sa.Column("device_fingerprint", sa.String(length=128), nullable=False),
        sa.Column("device_os", sa.String(length=32), nullable=False),
        sa.Column("device_model", sa.String(length=64), nullable=False),
        sa.Column("device_is_emulator", sa.Boolean(), nullable=False),
        sa.Column("device_is_rooted", sa.Boolean(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("submitted_at", _AT, nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=True),
        sa.Column("decision_outcome", sa.String(length=16), nullable=True),
        sa.Column("approved_limit", _FEN, nullable=True),
        sa.Column("approved_rate", _RATE, nullable=True),
        sa.Column("decision_reasons", sa.Text(), nullable=True),
        sa.Column("customer_reasons", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", _AT, nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=True),
        sa.Column("approval_expiry_date", sa.Date(), nullable=True),
        sa.Column("contract_template", sa.String(length=32), nullable=True),
        sa.Column("contract_sha256", sa.String(length=64), nullable=True),
        sa.Column("contract_accepted_at", _AT, nullable=True),
        sa.Column(
            "contract_channel",
            sa.Enum("app", "wechat", "h5", "branch", "partner", name="channel", native_enum=False, length=16),
            nullable=True,
        ),
        sa.Column("contract_ip", sa.String(length=45), nullable=True),
        sa.Column("contract_device", sa.Text(), nullable=True),
        sa.Column("line_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", _AT, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_origination_application")),
        sa.UniqueConstraint(
            "in_progress_customer_id", name=op.f("uq_origination_application_in_progress_customer_id")
        ),
    )
    op.create_index(
        "ix_origination_application_approval_expiry",
        "origination_application",
        ["status", "approval_expiry_date"],
        unique=False,
    )
    op.create_index(
        "ix_origination_application_customer", "origination_application", ["customer_id", "id"], unique=False
    )
    op.create_index(
        "ix_origination_application_device",
        "origination_application",
        ["device_fingerprint", "submitted_at"],
        unique=False,
    )
    op.create_index(
        "ix_origination_application_id_number",
        "origination_application",
        ["id_number_token", "submitted_at"],
        unique=False,
    )
    op.create_index(
        "ix_origination_application_ip", "origination_application", ["ip", "submitted_at"], unique=False
    )
    op.create_index(
        "ix_origination_application_phone",
        "origination_application",
        ["phone_token", "submitted_at"],
        unique=False,
    )
    op.create_index(
        "ix_origination_application_status", "origination_application", ["status", "id"], unique=False
    )
    op.create_table(
        "origination_consent",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_id", sa.String(length=20), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "bureau_inquiry",
                "personal_information",
                "marketing",
                name="consentkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "action",
            sa.Enum("given", "withdrawn", name="consentaction", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("text_version", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("app", "wechat", "h5", "branch", "partner", name="channel", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_origination_consent")),
    )
    op.create_index(
        "ix_origination_consent_customer_kind",
        "origination_consent",
        ["customer_id", "kind", "id"],
        unique=False,
    )
    op.create_index(
        "ix_origination_consent_kind_action", "origination_consent", ["kind", "action", "at"], unique=False
    )
    op.create_table(
        "origination_application_contact",
        sa.Column("id", _ID, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name_enc", sa.Text(), nullable=False),
        sa.Column("phone_token", sa.String(length=32), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column(
            "relation",
            sa.Enum(
                "spouse",
                "parent",
                "child",
                "sibling",
                "relative",
                "friend",
                "colleague",
                "other",
                name="relation",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["origination_application.id"],
            name=op.f("fk_origination_application_contact_application_id_origination_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_origination_application_contact")),
    )
    op.create_index(
        "ix_origination_application_contact_application",
        "origination_application_contact",
        ["application_id", "position"],
        unique=False,
    )
    op.create_index(
        "ix_origination_application_contact_phone",
        "origination_application_contact",
        ["phone_token"],
        unique=False,
    )
    op.create_table(
        "origination_application_event",
        sa.Column("id", _ID, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum(
                "submitted",
                "approved",
                "declined",
                "referred",
                "contract_signed",
                "line_opened",
                "withdrawn",
                "cancelled",
                "expired",
                name="applicationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_status",
            sa.Enum(
                "submitted",
                "approved",
                "declined",
                "referred",
                "contract_signed",
                "line_opened",
                "withdrawn",
                "cancelled",
                "expired",
                name="applicationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["origination_application.id"],
            name=op.f("fk_origination_application_event_application_id_origination_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_origination_application_event")),
    )
    op.create_index(
        "ix_origination_application_event_application",
        "origination_application_event",
        ["application_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_origination_application_event_application", table_name="origination_application_event")
    op.drop_table("origination_application_event")
    op.drop_index("ix_origination_application_contact_phone", table_name="origination_application_contact")
    op.drop_index(
        "ix_origination_application_contact_application", table_name="origination_application_contact"
    )
    op.drop_table("origination_application_contact")
    op.drop_index("ix_origination_consent_kind_action", table_name="origination_consent")
    op.drop_index("ix_origination_consent_customer_kind", table_name="origination_consent")
    op.drop_table("origination_consent")
    op.drop_index("ix_origination_application_status", table_name="origination_application")
    op.drop_index("ix_origination_application_phone", table_name="origination_application")
    op.drop_index("ix_origination_application_ip", table_name="origination_application")
    op.drop_index("ix_origination_application_id_number", table_name="origination_application")
    op.drop_index("ix_origination_application_device", table_name="origination_application")
    op.drop_index("ix_origination_application_customer", table_name="origination_application")
    op.drop_index("ix_origination_application_approval_expiry", table_name="origination_application")
    op.drop_table("origination_application")
