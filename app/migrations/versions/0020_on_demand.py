"""on-demand visits: each clinic's walk-in queue and its providers, the walk-ins, on-demand
appointments (kept out of the no-overlap rule), and patient records flagged for review or merged

Revision ID: 0020_on_demand
Revises: 0019_sms
Create Date: 2026-11-30 05:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_on_demand"
down_revision: str | None = "0019_sms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The no-overlap rule of 0002_scheduling, re-created to leave on-demand appointments out: a
# walk-in blocks no calendar time (the provider takes one when they are free).
_ACTIVE = "('booked', 'arrived', 'checked-in', 'fulfilled')"


def _pg_constraint(*, on_demand_exempt: bool) -> str:
    exempt = " AND NOT on_demand" if on_demand_exempt else ""
    return (
        "ALTER TABLE appointment ADD CONSTRAINT appointment_no_overlap EXCLUDE USING gist "
        "(provider_id WITH =, tstzrange(start_at, busy_until, '[)') WITH &&) "
        f"WHERE (status IN {_ACTIVE}{exempt})"
    )


def _sqlite_triggers(*, on_demand_exempt: bool) -> list[str]:
    new_exempt = "NEW.on_demand = 0 AND " if on_demand_exempt else ""
    other_exempt = "AND other.on_demand = 0 " if on_demand_exempt else ""
    overlap = (
        f"{new_exempt}NEW.status IN {_ACTIVE} AND EXISTS (SELECT 1 FROM appointment AS other "  # noqa: S608
        "WHERE other.provider_id = NEW.provider_id AND other.id != NEW.id "
        f"AND other.status IN {_ACTIVE} {other_exempt}"
        "AND other.start_at < NEW.busy_until AND other.busy_until > NEW.start_at)"
    )
    columns = "provider_id, start_at, busy_until, status" + (
        ", on_demand" if on_demand_exempt else ""
    )
    return [
        "CREATE TRIGGER appointment_no_overlap_insert BEFORE INSERT ON appointment "
        f"WHEN {overlap} "
        "BEGIN SELECT RAISE(ABORT, 'appointment_no_overlap'); END",
        f"CREATE TRIGGER appointment_no_overlap_update BEFORE UPDATE OF {columns} ON appointment "
        f"WHEN {overlap} "
        "BEGIN SELECT RAISE(ABORT, 'appointment_no_overlap'); END",
    ]


def _drop_overlap_rule(is_pg: bool) -> None:
    if is_pg:
        op.execute("ALTER TABLE appointment DROP CONSTRAINT appointment_no_overlap")
    else:
        op.execute("DROP TRIGGER appointment_no_overlap_insert")
        op.execute("DROP TRIGGER appointment_no_overlap_update")


def _create_overlap_rule(is_pg: bool, *, on_demand_exempt: bool) -> None:
    if is_pg:
        op.execute(_pg_constraint(on_demand_exempt=on_demand_exempt))
    else:
        for statement in _sqlite_triggers(on_demand_exempt=on_demand_exempt):
            op.execute(statement)


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    _drop_overlap_rule(is_pg)
    with op.batch_alter_table("appointment") as batch:
        batch.add_column(
            sa.Column("on_demand", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    _create_overlap_rule(is_pg, on_demand_exempt=True)
    with op.batch_alter_table("patient") as batch:
        batch.add_column(
            sa.Column("needs_review", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("merged_into", sa.Uuid(), nullable=True))
    op.create_table(
        "on_demand_queue",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("hours", sa.Text(), nullable=False),
        sa.Column("appointment_type_id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["appointment_type_id"], ["appointment_type.id"]),
        sa.PrimaryKeyConstraint("clinic_id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "on_demand_provider",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("clinic_id", "provider_id"),
    )
    op.create_table(
        "on_demand_request",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("contact", sa.String(length=254), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.Column("taken_by", sa.Uuid(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointment.id"]),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"]),
        sa.ForeignKeyConstraint(["taken_by"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    with op.batch_alter_table("on_demand_request") as batch:
        batch.create_index("ix_on_demand_request_clinic_id", ["clinic_id"])
        batch.create_index("ix_on_demand_request_contact", ["contact"])


def downgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    op.drop_table("on_demand_request")
    op.drop_table("on_demand_provider")
    op.drop_table("on_demand_queue")
    with op.batch_alter_table("patient") as batch:
        batch.drop_column("merged_into")
        batch.drop_column("needs_review")
    _drop_overlap_rule(is_pg)
    with op.batch_alter_table("appointment") as batch:
        batch.drop_column("on_demand")
    _create_overlap_rule(is_pg, on_demand_exempt=False)
