"""One error hierarchy for the service; `app.kit.http_errors` turns each into a JSON answer."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    error_type = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the body: Retry-After when it says when."""
        retry_after = self.to_body()["error"].get("retry_after")
        return {"Retry-After": str(retry_after)} if isinstance(retry_after, int) else {}

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.field:
            error["field"] = self.field
        error.update(self.extra)
        return {"error": error}


class BadRequest(AppError):
    status_code, error_type = 400, "bad_request"


class PayloadTooLarge(AppError):
    status_code, error_type = 413, "payload_too_large"


class InvalidRequest(AppError):
    status_code, error_type = 422, "validation_error"


class Unauthorized(AppError):
    status_code, error_type = 401, "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code, error_type = 403, "forbidden"


class NotFound(AppError):
    status_code, error_type = 404, "not_found"


class Conflict(AppError):
    status_code, error_type = 409, "conflict"


class PaymentRefused(AppError):
    """Payletter refused the request for a business reason (HTTP 406 there)."""

    status_code, error_type = 422, "payletter_refused"


class UpstreamError(AppError):
    """Payletter failed or answered something we can't use."""

    status_code, error_type = 502, "payletter_error"


class UpstreamTimeout(AppError):
    status_code, error_type = 504, "payletter_timeout"


class TooManyRequests(AppError):
    """Too many failed attempts from this source: wait `retry_after` seconds."""

    status_code, error_type = 429, "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
