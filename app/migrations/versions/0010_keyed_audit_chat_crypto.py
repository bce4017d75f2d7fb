"""the audit chain is keyed (each event names its audit key); chat text is stored encrypted

Revision ID: 0010_keyed_audit_chat_crypto
Revises: 0009_queue_day
Create Date: 2026-11-30 02:30:00.000000

Existing audit events keep their plain SHA-256 and no key id: they verify as the trail's
unkeyed first events. Existing chat lines and waiting-room messages stay as they are (the app
reads a plain value as it is) until `python -m app rotate-note-key` seals them: the keys are not
the database's to know, so this migration cannot encrypt them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_keyed_audit_chat_crypto"
down_revision: str | None = "0009_queue_day"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Sealed text is longer than the text it holds (key id, nonce, tag, base64).
_CHAT = (("visit_message", 1000), ("waiting_message", 500))


def upgrade() -> None:
    # A plain ADD COLUMN: a batch (copy-and-move) would lose the append-only triggers.
    op.add_column("audit_event", sa.Column("key_id", sa.String(length=32), nullable=True))
    for table, length in _CHAT:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "text", existing_type=sa.String(length=length), type_=sa.Text(), nullable=False
            )


def downgrade() -> None:
    for table, length in _CHAT:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "text", existing_type=sa.Text(), type_=sa.String(length=length), nullable=False
            )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's DROP COLUMN keeps the table (and its triggers).
        op.execute("ALTER TABLE audit_event DROP COLUMN key_id")
    else:
        op.drop_column("audit_event", "key_id")
