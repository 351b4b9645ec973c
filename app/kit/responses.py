"""What the API answers, declared for its OpenAPI schema (documentation only: nothing here
changes an answer). Checked against the real answers by tests/test_openapi_contract.py
and tests/reliability/test_schemathesis.py.

Every refusal and failure is an `ErrorOut`, under the status codes each route documents
(`errors(...)`): a generated client gets one error type, and the statuses it can expect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

Responses = dict[int | str, dict[str, Any]]


class Answer(BaseModel):
    """An answer's documented shape: a field it doesn't list is never in it."""

    model_config = ConfigDict(extra="forbid")


class FieldError(Answer):
    field: str = Field(description="Where: a body field (dotted), a query or path parameter, "
                                   "or a header; empty for the body as a whole")
    message: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. `order_no`, `reason`, `payletter_code`

    type: str = Field(description="bad_request, unauthorized, forbidden, not_found, conflict, "
                                  "payload_too_large, validation_error, too_many_requests, "
                                  "payletter_refused, payletter_error, payletter_timeout, "
                                  "unavailable, internal_error, …")
    message: str
    field: str | SkipJsonSchema[None] = Field(default=None,
                                              description="The request field it is about")
    details: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="validation_error: every field that was refused")
    retry_after: int | SkipJsonSchema[None] = Field(
        default=None, description="Seconds to wait (also the Retry-After header)")


class ErrorOut(BaseModel):
    """Every refusal and failure of the API: one shape (`app.kit.http_errors`)."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


class CallbackAnswer(Answer):
    """What Payletter reads: `code` 0 once the result is durably applied; anything else makes
    it redeliver. The HTTP status mirrors a non-zero code (400, 401, 403, 404, 409, 413, 503)."""

    code: int
    message: str


class AuditEntryOut(Answer):
    """One row of the audit log (`app.ops.audit.audit_view`): who did what, with evidence."""

    id: int
    at: datetime
    actor: str = Field(description="shop, ops, ops-page, sweeper, reconcile, …")
    action: str
    outcome: str
    order_no: str | None
    detail: dict[str, Any]


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                                "schema": {"type": "integer"}}}
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"description": "A value the database can't store (PostgreSQL: a NUL character, a "
                         "number out of range), or a body that can't be read"},
    401: {"description": "No bearer token",
          "headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}},
    403: {"description": "A token (or source) not accepted here"},
    404: {"description": "No such resource"},
    409: {"description": "Not possible in the resource's current state"},
    413: {"description": "A body larger than MAX_BODY_BYTES"},
    422: {"description": "Refused: invalid (validation_error, `field` names it) or refused by "
                         "Payletter (payletter_refused)"},
    429: {"description": "Too many wrong tokens or sign-ins from this address",
          "headers": _RETRY_AFTER},
    500: {"description": "Internal error"},
    502: {"description": "Payletter failed or answered something unusable (payletter_error)"},
    503: {"description": "The database is unavailable; try again", "headers": _RETRY_AFTER},
    504: {"description": "Payletter did not answer in time (payletter_timeout)"},
}


def errors(*codes: int, model: Any = ErrorOut, described: dict[int, str] | None = None
           ) -> Responses:
    """The error statuses a route can answer, each with `model` (the error shape) and the
    usual description, or the one `described` gives."""
    said = described or {}
    return {code: _ERRORS[code] | {"model": model}
            | ({"description": said[code]} if code in said else {}) for code in codes}


def not_json(media_type: str, description: str) -> Responses:
    """A 200 that isn't JSON. Its route's response_class is plain `Response`: with a text
    or HTML class, FastAPI would document the route's (JSON) errors as text or HTML."""
    return {200: {"description": description,
                  "content": {media_type: {"schema": {"type": "string"}}}}}


# A 201 given again to a retry with the same Idempotency-Key says so (so does a kept error).
IDEMPOTENT: Responses = {201: {"headers": {"Idempotent-Replayed": {
    "description": "`true` on an answer given again to a retry with the same Idempotency-Key",
    "schema": {"type": "string", "const": "true"}}}}}

# Every router that takes a token: refused callers, oversized bodies, failures. Routes add
# what they answer besides (404, 409, 422, 502, …).
API_ERRORS: Responses = errors(401, 403, 413, 429, 500, 503)
# Answered before or outside any route's own logic (the body limit, an unexpected error).
SERVED_ERRORS: Responses = errors(413, 500)

# Payletter's callback: its answer shape whatever happens, but for a failure before the
# delivery could be read (500; 503 too then).
CALLBACK_RESPONSES: Responses = {
    **{code: {"model": CallbackAnswer, "description": f"{text} (non-zero `code`: Payletter "
                                                      "redelivers)"}
       for code, text in ((400, "A malformed result"), (401, "A result that does not verify"),
                          (403, "Not from Payletter's callback addresses"),
                          (404, "No such order"), (409, "Held for review"),
                          (413, "A body larger than MAX_BODY_BYTES"))},
    **errors(500),
    **errors(503, model=CallbackAnswer | ErrorOut, described={
        503: "Not applied this time (non-zero `code`): Payletter redelivers"}),
}

_REDIRECT = {
    "description": "To the shop's result page, with `order_no`, `status` and `outcome`",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
BROWSER_RESPONSES: Responses = {303: _REDIRECT, **errors(400, 413, 500, 503)}

# The result fields Payletter posts (its own names); the body is read raw and checked by
# app.payments.service.parse_result, so this documents it without enforcing anything.
_RESULT_FIELDS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_no": {"type": "string"}, "tid": {"type": "string"},
        "amount": {"type": "integer"}, "user_id": {"type": "string"},
        "pgcode": {"type": "string"}, "payhash": {"type": "string"},
        "cid": {"type": "string"}, "transaction_date": {"type": "string"},
        "code": {"type": "string", "description": "return only: \"0\" is success"},
        "message": {"type": "string"},
    },
    "additionalProperties": True,
}
CALLBACK_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _RESULT_FIELDS}}}}
# The return and cancel URLs we hand Payletter carry the order number and an HMAC of it.
_LINK = [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
          "description": text}
         for name, text in (("order_no", "the order the link was made for"),
                            ("sig", "HMAC of order_no under the merchant's key"))]
RETURN_DOC: dict[str, Any] = {"parameters": _LINK, "requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": _RESULT_FIELDS},
    "application/json": {"schema": _RESULT_FIELDS}}}}
CANCEL_DOC: dict[str, Any] = {"parameters": _LINK}
