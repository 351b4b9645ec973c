"""One error hierarchy for the service; `app.kit.http_errors` turns each into a JSON answer."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A refusal or failure the client is told about. A subclass names its HTTP status and
    the `type` its answer carries: `class NotFound(AppError, status_code=404, …)`."""

    status_code = 400
    error_type = "bad_request"

    def __init_subclass__(cls, *, status_code: int | None = None,
                          error_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code
        if error_type is not None:
            cls.error_type = error_type

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


# The plain ones: a status and a type, nothing more.
class BadRequest(AppError, status_code=400, error_type="bad_request"): ...
class PayloadTooLarge(AppError, status_code=413, error_type="payload_too_large"): ...
class InvalidRequest(AppError, status_code=422, error_type="validation_error"): ...
class Forbidden(AppError, status_code=403, error_type="forbidden"): ...
class NotFound(AppError, status_code=404, error_type="not_found"): ...
class Conflict(AppError, status_code=409, error_type="conflict"): ...
class UpstreamTimeout(AppError, status_code=504, error_type="payletter_timeout"): ...


class Unauthorized(AppError, status_code=401, error_type="unauthorized"):
    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class PaymentRefused(AppError, status_code=422, error_type="payletter_refused"):
    """Payletter refused the request for a business reason (HTTP 406 there)."""


class UpstreamError(AppError, status_code=502, error_type="payletter_error"):
    """Payletter failed or answered something we can't use."""


class TooManyRequests(AppError, status_code=429, error_type="too_many_requests"):
    """Too many failed attempts from this source: wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
