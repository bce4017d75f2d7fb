"""staff MFA (TOTP, recovery codes, the clinic's "require MFA"), session epochs, emails
unique per clinic

Revision ID: 0011_staff_mfa
Revises: 0010_keyed_audit_chat_crypto
Create Date: 2026-11-30 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_staff_mfa"
down_revision: str | None = "0010_keyed_audit_chat_crypto"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 left the email's unique constraint unnamed; SQLite's batch copy finds it by this name.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_global_email_unique() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("staff_user", naming_convention=_NAMES) as batch:
            batch.drop_constraint("uq_staff_user_email", type_="unique")
    else:
        op.drop_constraint("staff_user_email_key", "staff_user", type_="unique")


def upgrade() -> None:
    with op.batch_alter_table("clinic") as batch:
        batch.add_column(
            sa.Column("require_mfa", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    _drop_global_email_unique()
    with op.batch_alter_table("staff_user") as batch:
        batch.add_column(
            sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_unique_constraint("uq_staff_user_clinic_email", ["clinic_id", "email"])
        batch.create_index("ix_staff_user_email", ["email"], unique=False)
    # Every admin needs MFA from now on: their sessions from before end, and the next sign-in
    # enrols them.
    op.execute("UPDATE staff_user SET session_epoch = 1 WHERE role = 'admin'")
    op.create_table(
        "staff_mfa",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mfa_recovery_code_user_id", "mfa_recovery_code", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_mfa_recovery_code_user_id", table_name="mfa_recovery_code")
    op.drop_table("mfa_recovery_code")
    op.drop_table("staff_mfa")
    with op.batch_alter_table("staff_user") as batch:
        batch.drop_index("ix_staff_user_email")
        batch.drop_constraint("uq_staff_user_clinic_email", type_="unique")
        batch.drop_column("session_epoch")
        # Named as upgrade() looks for it on each database.
        sqlite = op.get_bind().dialect.name == "sqlite"
        batch.create_unique_constraint(
            "uq_staff_user_email" if sqlite else "staff_user_email_key", ["email"]
        )
    with op.batch_alter_table("clinic") as batch:
        batch.drop_column("require_mfa")
