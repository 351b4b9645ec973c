"""One exception tree for everything that can go wrong talking to Payletter.

Messages are built from non-secret parts only (endpoint, status, codes, field names):
API keys, billkeys and payhashes must never end up in ``str(exc)`` or ``repr(exc)``.
"""

from __future__ import annotations

# Server messages are echoed into our errors; keep them on one short line so a hostile or
# broken body can't forge log lines or flood them.
_MAX_MESSAGE_CHARS = 300


def one_line(text: str, limit: int = _MAX_MESSAGE_CHARS) -> str:
    """Collapse whitespace/control characters and cap the length."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class PayletterError(Exception):
    """Base of every error raised by ``app.payletter``."""


class PayletterValidationError(PayletterError):
    """The request was refused before anything was sent to Payletter."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = one_line(reason)
        where = f"{field}: " if field else ""
        super().__init__(f"invalid Payletter request: {where}{self.reason}")


class UnknownPgcodeError(PayletterValidationError):
    def __init__(self, pgcode: str) -> None:
        self.pgcode = pgcode
        super().__init__("pgcode", f"unknown pgcode {one_line(pgcode, 40)!r}")


class UnknownMerchantError(PayletterValidationError):
    """No credentials are configured for this client_id."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        super().__init__("client_id", f"no credentials configured for {one_line(client_id, 40)!r}")


class PayletterTransportError(PayletterError):
    """No HTTP answer was received.

    ``may_have_reached_payletter`` is False only when the request surely never left this
    process (the connection was never established), so a money-moving call may be resent.
    """

    def __init__(
        self, message: str, *, may_have_reached_payletter: bool, endpoint: str = ""
    ) -> None:
        self.may_have_reached_payletter = may_have_reached_payletter
        self.endpoint = endpoint
        prefix = f"Payletter {endpoint}: " if endpoint else "Payletter: "
        reached = "may have reached Payletter" if may_have_reached_payletter else "never sent"
        super().__init__(f"{prefix}{one_line(message)} ({reached})")


class PayletterTimeout(PayletterTransportError):
    pass


class PayletterConnectionError(PayletterTransportError):
    pass


class PayletterAPIError(PayletterError):
    """Payletter answered, but not with a usable success."""

    def __init__(self, status_code: int, code: int | None, message: str, endpoint: str) -> None:
        self.status_code = status_code
        self.code = code
        self.message = one_line(message)
        self.endpoint = endpoint
        code_part = f", code {code}" if code is not None else ""
        super().__init__(
            f"Payletter {endpoint} failed: HTTP {status_code}{code_part}: {self.message}"
        )


class AuthenticationError(PayletterAPIError):
    """HTTP 401, code 998: the API key is missing or wrong."""


class PermissionDeniedError(PayletterAPIError):
    """HTTP 403, code 993: the key may not do this."""


class MethodNotAllowedError(PayletterAPIError):
    """HTTP 405, code 995: wrong HTTP method for the endpoint."""


class BusinessRuleError(PayletterAPIError):
    """HTTP 406, codes 2000-5000: Payletter refused the operation; ``message`` says why."""


class PayletterServerError(PayletterAPIError):
    """HTTP 5xx (code 999): a fault on Payletter's side."""


class UnexpectedResponseError(PayletterAPIError):
    """Any other status, a body that isn't JSON, or a 200 that doesn't match the model."""


_ERROR_CLASS_BY_STATUS: dict[int, type[PayletterAPIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    405: MethodNotAllowedError,
    406: BusinessRuleError,
}


def api_error_class_for_status(status_code: int) -> type[PayletterAPIError]:
    if status_code in _ERROR_CLASS_BY_STATUS:
        return _ERROR_CLASS_BY_STATUS[status_code]
    if 500 <= status_code <= 599:
        return PayletterServerError
    return UnexpectedResponseError
