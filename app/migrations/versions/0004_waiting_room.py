"""waiting room

Revision ID: 0004_waiting_room
Revises: 0003_records
Create Date: 2026-11-23 12:21:10.315787
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_waiting_room"
down_revision: str | None = "0003_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "consent_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "version"),
    )
    with op.batch_alter_table("consent_document", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_document_clinic_id"), ["clinic_id"], unique=False
        )

    op.create_table(
        "consent_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["consent_document.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_record_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_record_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "visit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["staff_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_id"),
    )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visit_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visit_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "waiting_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waiting_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_waiting_message_appointment_id"), ["appointment_id"], unique=False
        )

    op.create_table(
        "check_in",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("identity_failures", sa.Integer(), nullable=False),
        sa.Column("identity_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("link_locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("device_check", sa.String(length=500), nullable=True),
        sa.Column("device_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("visit_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent_record.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["staff_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
        ),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_in_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_in_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_in_provider_id"), ["provider_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("check_in", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_in_provider_id"))
        batch_op.drop_index(batch_op.f("ix_check_in_patient_id"))
        batch_op.drop_index(batch_op.f("ix_check_in_clinic_id"))

    op.drop_table("check_in")
    with op.batch_alter_table("waiting_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_waiting_message_appointment_id"))

    op.drop_table("waiting_message")
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_provider_id"))
        batch_op.drop_index(batch_op.f("ix_visit_patient_id"))
        batch_op.drop_index(batch_op.f("ix_visit_clinic_id"))

    op.drop_table("visit")
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_record_patient_id"))
        batch_op.drop_index(batch_op.f("ix_consent_record_appointment_id"))

    op.drop_table("consent_record")
    with op.batch_alter_table("consent_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_document_clinic_id"))

    op.drop_table("consent_document")
