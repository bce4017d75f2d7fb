"""records: consult notes and addenda (text encrypted by the app; each row names its key)

appointment_id links a note to the appointment it was written for.

Revision ID: 0003_records
Revises: 0002_scheduling
Create Date: 2026-11-23 12:11:05.464812
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_records"
down_revision: str | None = "0002_scheduling"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consult_note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("draft", "signed", name="notestatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consult_note", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consult_note_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consult_note_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consult_note_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consult_note_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "note_addendum",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["consult_note.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("note_addendum", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_note_addendum_author_id"), ["author_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_note_addendum_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_note_addendum_note_id"), ["note_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("note_addendum", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_note_addendum_note_id"))
        batch_op.drop_index(batch_op.f("ix_note_addendum_created_at"))
        batch_op.drop_index(batch_op.f("ix_note_addendum_author_id"))

    op.drop_table("note_addendum")
    with op.batch_alter_table("consult_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consult_note_patient_id"))
        batch_op.drop_index(batch_op.f("ix_consult_note_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_consult_note_author_id"))
        batch_op.drop_index(batch_op.f("ix_consult_note_appointment_id"))

    op.drop_table("consult_note")
