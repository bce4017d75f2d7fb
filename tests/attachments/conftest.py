"""The record's ward (a clinic, its staff, a patient in care, another clinic) for these tests."""

from tests.records.conftest import ward

__all__ = ["ward"]
