"""Socket.IO namespaces and room names: what every part of signaling emits to and listens on."""

from __future__ import annotations

import uuid

CLINIC_NAMESPACE = "/clinic"
WAITING_NAMESPACE = "/waiting"
VISIT_NAMESPACE = "/visit"


def provider_room(provider_id: uuid.UUID) -> str:
    """A provider's sockets on the clinic queue."""
    return f"provider:{provider_id}"


def clinic_room(clinic_id: uuid.UUID) -> str:
    """The sockets of a clinic's schedulers and admins watching every queue."""
    return f"clinic:{clinic_id}"


def clinic_queue_room(clinic_id: uuid.UUID, *, record_readers: bool) -> str:
    """Where a clinic's queues go: admins (who read records) get chart facts, schedulers not."""
    return f"clinic-queue:{'readers' if record_readers else 'schedulers'}:{clinic_id}"


def appointment_room(appointment_id: uuid.UUID) -> str:
    """A waiting patient's sockets."""
    return f"appointment:{appointment_id}"


def guest_room(guest_id: uuid.UUID) -> str:
    """A visit guest's sockets in the waiting room (they have no appointment of their own)."""
    return f"guest:{guest_id}"


def visit_room(visit_id: uuid.UUID | str) -> str:
    """Everyone in a visit."""
    return f"visit:{visit_id}"


def visit_provider_room(visit_id: uuid.UUID | str) -> str:
    """The provider's sockets in a visit: they alone see and act on the guests."""
    return f"visit-provider:{visit_id}"
