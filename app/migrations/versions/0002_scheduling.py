"""scheduling: schedules, availability, appointment types, appointments, outbox

Revision ID: 0002_scheduling
Revises: 0001
Create Date: 2026-11-23 12:10:04.374928
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_scheduling"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# No double booking, enforced by the database itself. PostgreSQL: an exclusion constraint over
# each provider's busy range, for statuses that hold time. SQLite: triggers that abort an insert or
# update whose busy range overlaps; SQLite runs one writer at a time, so the check and the write
# cannot interleave with another writer's, even across processes.
_ACTIVE = "('booked', 'arrived', 'checked-in', 'fulfilled')"
_PG_NO_OVERLAP = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    "ALTER TABLE appointment ADD CONSTRAINT appointment_no_overlap EXCLUDE USING gist "
    "(provider_id WITH =, tstzrange(start_at, busy_until, '[)') WITH &&) "
    f"WHERE (status IN {_ACTIVE})",
]
_SQLITE_OVERLAP = (
    f"NEW.status IN {_ACTIVE} AND EXISTS (SELECT 1 FROM appointment AS other "  # noqa: S608
    "WHERE other.provider_id = NEW.provider_id AND other.id != NEW.id "
    f"AND other.status IN {_ACTIVE} "
    "AND other.start_at < NEW.busy_until AND other.busy_until > NEW.start_at)"
)
_SQLITE_NO_OVERLAP = [
    "CREATE TRIGGER appointment_no_overlap_insert BEFORE INSERT ON appointment "
    f"WHEN {_SQLITE_OVERLAP} "
    "BEGIN SELECT RAISE(ABORT, 'appointment_no_overlap'); END",
    "CREATE TRIGGER appointment_no_overlap_update "
    "BEFORE UPDATE OF provider_id, start_at, busy_until, status ON appointment "
    f"WHEN {_SQLITE_OVERLAP} "
    "BEGIN SELECT RAISE(ABORT, 'appointment_no_overlap'); END",
]


def upgrade() -> None:
    op.create_table(
        "appointment_type",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("appointment_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointment_type_clinic_id"), ["clinic_id"], unique=False
        )

    op.create_table(
        "appointment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_type_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("busy_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "booked",
                "arrived",
                "checked-in",
                "fulfilled",
                "cancelled",
                "noshow",
                name="appointmentstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_type_id"],
            ["appointment_type.id"],
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["staff_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointment_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_appointment_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_appointment_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_appointment_start_at"), ["start_at"], unique=False)

    op.create_table(
        "provider_schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["staff_user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id"),
    )
    with op.batch_alter_table("provider_schedule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_schedule_clinic_id"), ["clinic_id"], unique=False
        )

    op.create_table(
        "availability_exception",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("off", "extra", name="exceptionkind", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["provider_schedule.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("availability_exception", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_availability_exception_schedule_id"), ["schedule_id"], unique=False
        )

    op.create_table(
        "availability_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["provider_schedule.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("availability_rule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_availability_rule_schedule_id"), ["schedule_id"], unique=False
        )

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("to_addr", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("ics", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                "cancelled",
                name="outboxstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_message_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_message_send_after"), ["send_after"], unique=False
        )

    is_pg = op.get_bind().dialect.name == "postgresql"
    for statement in _PG_NO_OVERLAP if is_pg else _SQLITE_NO_OVERLAP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE appointment DROP CONSTRAINT appointment_no_overlap")
    else:
        op.execute("DROP TRIGGER appointment_no_overlap_insert")
        op.execute("DROP TRIGGER appointment_no_overlap_update")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_send_after"))
        batch_op.drop_index(batch_op.f("ix_outbox_message_appointment_id"))

    op.drop_table("outbox_message")
    with op.batch_alter_table("availability_rule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_availability_rule_schedule_id"))

    op.drop_table("availability_rule")
    with op.batch_alter_table("availability_exception", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_availability_exception_schedule_id"))

    op.drop_table("availability_exception")
    with op.batch_alter_table("provider_schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_schedule_clinic_id"))

    op.drop_table("provider_schedule")
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_start_at"))
        batch_op.drop_index(batch_op.f("ix_appointment_provider_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_patient_id"))
        batch_op.drop_index(batch_op.f("ix_appointment_clinic_id"))

    op.drop_table("appointment")
    with op.batch_alter_table("appointment_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_type_clinic_id"))

    op.drop_table("appointment_type")
