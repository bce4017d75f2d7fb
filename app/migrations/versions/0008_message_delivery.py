"""short join links (/j/<code>) per appointment version; how each email was delivered

Revision ID: 0008_message_delivery
Revises: 0007_clinic_phone
Create Date: 2026-11-30 02:10:00.000000
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008_message_delivery"
down_revision: str | None = "0007_clinic_phone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    join_link = op.create_table(
        "join_link",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointment.id"]),
        sa.PrimaryKeyConstraint("code"),
        sa.UniqueConstraint("appointment_id", "version"),
    )
    with op.batch_alter_table("join_link") as batch:
        batch.create_index(batch.f("ix_join_link_appointment_id"), ["appointment_id"], unique=False)
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("delivered_via", sa.String(length=20), nullable=True))
    op.execute("UPDATE outbox_message SET delivered_via = 'smtp' WHERE status = 'sent'")
    # Appointments booked before: their current link gets a short form too (random per row).
    connection = op.get_bind()
    appointments = sa.table(
        "appointment", sa.column("id", sa.Uuid()), sa.column("version", sa.Integer())
    )
    rows = connection.execute(sa.select(appointments.c.id, appointments.c.version)).all()
    now = datetime.now(UTC)
    values = [
        {
            "code": secrets.token_urlsafe(18),
            "appointment_id": row.id,
            "version": row.version,
            "created_at": now,
        }
        for row in rows
    ]
    if values:
        op.bulk_insert(join_link, values)


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("delivered_via")
    with op.batch_alter_table("join_link") as batch:
        batch.drop_index(batch.f("ix_join_link_appointment_id"))
    op.drop_table("join_link")
