"""Imports every table module so SQLModel.metadata is complete (for Alembic and tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import app.accounts.models
    import app.attachments.models
    import app.core.models
    import app.intake.models
    import app.records.models  # noqa: F401
    import scheduling.models  # noqa: F401
    import signaling.models
    import signaling.ondemand.models  # noqa: F401
