"""the waiting room both ways: patients answer the clinic and give a reason; providers' delays

Revision ID: 0009_queue_day
Revises: 0008_message_delivery
Create Date: 2026-11-30 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_queue_day"
down_revision: str | None = "0008_message_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("waiting_message") as batch:
        # A patient's answer has no staff author.
        batch.alter_column("author_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(
            sa.Column("sender", sa.String(length=10), nullable=False, server_default="clinic")
        )
        batch.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="message")
        )
    op.create_table(
        "provider_delay",
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("provider_id"),
    )


def downgrade() -> None:
    op.drop_table("provider_delay")
    op.execute("DELETE FROM waiting_message WHERE sender <> 'clinic'")
    with op.batch_alter_table("waiting_message") as batch:
        batch.drop_column("kind")
        batch.drop_column("sender")
        batch.alter_column("author_id", existing_type=sa.Uuid(), nullable=False)
