"""Domain errors and their single mapping to the API contract's error body.

Every error that can reach a client is a :class:`PaymentError` subclass with a stable
snake_case ``code`` and an HTTP ``status``. ``paycore.api`` maps them to
``{"error": {"code": ..., "message": ...}}`` in one place.
"""

from __future__ import annotations

from typing import Any


class PaymentError(Exception):
    """Base of every error that is answered to a client."""

    status: int = 400
    code: str = "bad_request"
    default_message: str = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidRequest(PaymentError):
    status = 422
    code = "validation_error"
    default_message = "The request is malformed."


class Unauthorized(PaymentError):
    status = 401
    code = "unauthorized"
    default_message = "Authentication is required."


class Forbidden(PaymentError):
    status = 403
    code = "forbidden"
    default_message = "This action is not allowed."


class NotFound(PaymentError):
    status = 404
    code = "not_found"
    default_message = "No such resource."


class Conflict(PaymentError):
    status = 409
    code = "conflict"
    default_message = "The resource is in a state that does not allow this."


class UnsupportedMediaType(PaymentError):
    status = 415
    code = "unsupported_media_type"
    default_message = "The request body is in a format this API does not take."


class Throttled(PaymentError):
    status = 429
    code = "throttled"
    default_message = "Too many requests; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int, code: str | None = None):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, code=code, headers={"Retry-After": str(self.retry_after)})


class ConfigurationError(Exception):
    """The deployment is misconfigured (a missing variable, a missing table).

    Not a client error: it is not mapped to a 4xx and surfaces as a function error,
    which API Gateway answers with its DEFAULT_5XX response and the alarms catch.
    """


class DataAccessError(Exception):
    """A data-store failure that is not a domain outcome (throttling, outage)."""


class ProviderUnavailable(PaymentError):
    """The payment provider could not be reached or failed; nothing was decided. Retry later."""

    status = 503
    code = "provider_unavailable"
    default_message = "The payment provider is not answering; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 5):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
