"""What the API answers, declared for its OpenAPI schema (documentation only: nothing here
changes an answer). Checked against the real answers by tests/reliability/test_schemathesis.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. `field`, `details`, the refund or order

    type: str = Field(description="bad_request, unauthorized, forbidden, not_found, conflict, "
                                  "validation_error, payletter_refused, payletter_error, …")
    message: str


class ErrorOut(BaseModel):
    """Every refusal and failure of the API: one shape (`app.kit.http_errors`)."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


class CallbackAnswer(BaseModel):
    """What Payletter reads: `code` 0 once the result is durably applied; anything else makes
    it redeliver. The HTTP status mirrors a non-zero code (400, 401, 403, 404, 409, 413, 503)."""

    code: int
    message: str


Responses = dict[int | str, dict[str, Any]]

# The routers that take a token: any 4xx or 5xx is an ErrorOut (this also replaces
# FastAPI's default 422 schema, which is not the shape this API answers).
API_ERRORS: Responses = {
    "4XX": {"model": ErrorOut, "description": "Refused, with the reason"},
    "5XX": {"model": ErrorOut, "description": "Payletter or the database failed; try again"},
}

CALLBACK_RESPONSES: Responses = {
    200: {"model": CallbackAnswer, "description": "Applied, or already applied (`code` 0)"},
    "4XX": {"model": CallbackAnswer, "description": "Refused (non-zero `code`): redelivered"},
    "5XX": {"model": CallbackAnswer, "description": "Not applied this time (non-zero `code`)"},
}

_REDIRECT = {
    "description": "To the shop's result page, with `order_no`, `status` and `outcome`",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
BROWSER_RESPONSES: Responses = {
    303: _REDIRECT,
    "4XX": {"model": ErrorOut, "description": "A body that can't be read, or too large"},
}

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
