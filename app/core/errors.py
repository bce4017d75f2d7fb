"""Domain errors with a stable code and HTTP status, mapped to responses in one place."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every error a user can cause; never a 500."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        # Machine-readable context a client needs to recover (e.g. the current version on 409).
        self.detail = dict(detail) if detail else {}


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class CsrfFailed(DomainError):
    status = 403
    code = "csrf_failed"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class AccountLocked(DomainError):
    status = 423
    code = "account_locked"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TryAgain(DomainError):
    """A shared service the request needs (Redis) is out for now; the same request will work
    once it is back, with nothing to restart."""

    status = 503
    code = "try_again"
