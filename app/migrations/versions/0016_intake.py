"""intake: each visit type's questionnaire and red-flag rules, and each visit's sealed answers

Revision ID: 0016_intake
Revises: 0014_polish
Create Date: 2026-11-30 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_intake"
down_revision: str | None = "0014_polish"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intake_form",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_type_id", sa.Uuid(), nullable=False),
        sa.Column("questionnaire", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["appointment_type_id"], ["appointment_type.id"]),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["updated_by"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_type_id"),
    )
    with op.batch_alter_table("intake_form") as batch:
        batch.create_index("ix_intake_form_clinic_id", ["clinic_id"])
    op.create_table(
        "intake_response",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("questionnaire", sa.Text(), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointment.id"]),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    with op.batch_alter_table("intake_response") as batch:
        batch.create_index("ix_intake_response_clinic_id", ["clinic_id"])
        batch.create_index("ix_intake_response_patient_id", ["patient_id"])


def downgrade() -> None:
    op.drop_table("intake_response")
    op.drop_table("intake_form")
