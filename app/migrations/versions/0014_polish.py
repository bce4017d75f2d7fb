"""staff TOTP secrets sealed at rest: the column widens to hold a sealed value

Secrets stored before read as they are (a value without the sealed prefix) until
`python -m app rotate-note-key` seals them: the keys are not in the database, so a migration
cannot seal. New and re-enrolled secrets are sealed when written.

Revision ID: 0014_polish
Revises: 0012_break_glass
Create Date: 2026-11-30 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_polish"
down_revision: str | None = "0012_break_glass"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_mfa") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=64), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    # A sealed secret does not fit the old column, nor could it be read without the keys:
    # the staff concerned enrol again.
    op.execute("DELETE FROM staff_mfa WHERE secret LIKE 'oc1s:%'")
    with op.batch_alter_table("staff_mfa") as batch:
        batch.alter_column(
            "secret", existing_type=sa.Text(), type_=sa.String(length=64), existing_nullable=False
        )
