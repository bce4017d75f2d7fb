"""visit chat

Revision ID: 0005_visit
Revises: 0004_waiting_room
Create Date: 2026-11-23 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_visit"
down_revision: str | None = "0004_waiting_room"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("author_role", sa.String(length=20), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["visit_id"], ["visit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_message_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visit_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_message_visit_id"))
    op.drop_table("visit_message")
