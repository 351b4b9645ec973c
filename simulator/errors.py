"""Payletter's error answers, and the simulator's own table of 406 business codes.

The vendor fixes only the HTTP status and these codes: 401/998, 403/993, 405/995,
406/2000-5000 ("오류 상세 메시지") and 500/999. The 406 codes below are the
simulator's own; each message says exactly which field or rule failed.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal

ErrorShape = Literal["flat", "nested"]

MSG_UNAUTHENTICATED = "Authentication token is missing or incorrect."
MSG_FORBIDDEN = "Yon do not have authorization."  # sic: the vendor's own spelling
MSG_METHOD_NOT_ALLOWED = "요청된 메소드는 권한이 없습니다."
MSG_INTERNAL = "Internal server error"


class BizCode(IntEnum):
    MALFORMED_BODY = 2000
    MISSING_FIELD = 2001
    FIELD_TOO_LONG = 2002
    FORBIDDEN_CHARACTERS = 2003
    AMOUNT_BELOW_MINIMUM = 2004
    SERVICE_NAME_REQUIRED = 2005
    UNKNOWN_PGCODE = 2006
    INVALID_VALUE = 2007
    PGCODE_MISMATCH = 2008
    ORDER_NOT_FOUND = 2009
    TID_NOT_FOUND = 2010
    NOT_CANCELLABLE = 3001
    PARTIAL_CANCEL_NOT_ALLOWED = 3002
    CANCEL_WINDOW_PASSED = 3003
    AMOUNT_EXCEEDS_REMAINING = 3004
    ALREADY_CANCELLED = 3005
    NOT_APPROVED = 3006
    USER_MISMATCH = 3007
    BILLKEY_INVALID = 4001
    MOBILE_AUTOPAY_RULE = 4002
    AUTOPAY_NOT_SUPPORTED = 4003
    CASH_RECEIPT_NOT_AVAILABLE = 5000


class PayletterError(Exception):
    """An answer in Payletter's error format; the app's handler renders it."""

    def __init__(
        self, status: int, code: int, message: str, *, shape: ErrorShape = "flat"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.shape = shape

    def body(self) -> dict[str, Any]:
        inner = {"code": self.code, "message": self.message}
        # One public client saw {"error": {...}} on 500s; the fault switch can produce it.
        return {"error": inner} if self.shape == "nested" else inner


def unauthenticated() -> PayletterError:
    return PayletterError(401, 998, MSG_UNAUTHENTICATED)


def forbidden() -> PayletterError:
    return PayletterError(403, 993, MSG_FORBIDDEN)


def method_not_allowed() -> PayletterError:
    return PayletterError(405, 995, MSG_METHOD_NOT_ALLOWED)


def internal_error() -> PayletterError:
    return PayletterError(500, 999, MSG_INTERNAL)


def business(code: BizCode, message: str) -> PayletterError:
    return PayletterError(406, int(code), message)
