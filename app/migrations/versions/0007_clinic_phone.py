"""the clinic's phone number; wrong dates of birth counted per join-link version

Revision ID: 0007_clinic_phone
Revises: 0006_visit_guests
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_clinic_phone"
down_revision: str | None = "0006_visit_guests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clinic") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
    with op.batch_alter_table("check_in") as batch:
        batch.add_column(sa.Column("failures_version", sa.Integer(), nullable=True))
    # Failures and locks so far belong to the link the patient holds now.
    op.execute(
        "UPDATE check_in SET failures_version = "
        "(SELECT version FROM appointment WHERE appointment.id = check_in.appointment_id) "
        "WHERE identity_failures > 0 OR link_locked_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("check_in") as batch:
        batch.drop_column("failures_version")
    with op.batch_alter_table("clinic") as batch:
        batch.drop_column("phone")
