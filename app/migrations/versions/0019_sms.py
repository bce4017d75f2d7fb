"""sms: outbox messages get a channel (email or text) and the provider's id; patients' consent
to text messages

Revision ID: 0019_sms
Revises: 0018_attachments
Create Date: 2026-11-30 05:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_sms"
down_revision: str | None = "0018_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(
            sa.Column(
                "channel",
                sa.Enum("email", "sms", name="channel", native_enum=False, length=10),
                nullable=False,
                server_default="email",
            )
        )
        batch.add_column(sa.Column("provider_ref", sa.String(length=64), nullable=True))
    op.create_table(
        "text_consent",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("given_by", sa.Uuid(), nullable=True),
        sa.Column(
            "way",
            sa.Enum(
                "staff_at_booking",
                "staff",
                "patient_at_checkin",
                name="consentway",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["given_by"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["withdrawn_by"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    with op.batch_alter_table("text_consent") as batch:
        batch.create_index("ix_text_consent_clinic_id", ["clinic_id"])


def downgrade() -> None:
    op.drop_table("text_consent")
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("provider_ref")
        batch.drop_column("channel")
