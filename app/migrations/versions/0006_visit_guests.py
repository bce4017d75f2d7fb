"""visit guests (interpreters, family) and who took part in each visit

Revision ID: 0006_visit_guests
Revises: 0005_visit
Create Date: 2026-11-23 19:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_visit_guests"
down_revision: str | None = "0005_visit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_guest",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("consent_version", sa.Integer(), nullable=True),
        sa.Column("consent_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device_check", sa.String(length=500), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["staff_user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_guest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_guest_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visit_guest_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "visit_participant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_participant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_visit_participant_visit_id"), ["visit_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("visit_participant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_participant_visit_id"))

    op.drop_table("visit_participant")
    with op.batch_alter_table("visit_guest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_guest_visit_id"))
        batch_op.drop_index(batch_op.f("ix_visit_guest_clinic_id"))

    op.drop_table("visit_guest")
