"""break-glass access: a staff member's time-limited, reasoned access to a patient's record

Revision ID: 0012_break_glass
Revises: 0011_staff_mfa
Create Date: 2026-11-30 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_break_glass"
down_revision: str | None = "0011_staff_mfa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "break_glass_access",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("break_glass_access") as batch:
        batch.create_index("ix_break_glass_access_clinic_id", ["clinic_id"])
        batch.create_index("ix_break_glass_access_patient_id", ["patient_id"])
        batch.create_index("ix_break_glass_access_user_id", ["user_id"])
        batch.create_index("ix_break_glass_access_created_at", ["created_at"])


def downgrade() -> None:
    op.drop_table("break_glass_access")
