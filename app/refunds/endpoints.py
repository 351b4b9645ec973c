"""Refunds: operators cancel a paid order, in full or in part."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.kit.deps import GatewayDep, IdempotencyKeyDep, OpsDep, SessionDep
from app.kit.responses import API_ERRORS, ErrorOut, Responses, errors
from app.payletter.results import MAX_AMOUNT
from app.refunds.schemas import RefundAnswerOut
from app.refunds.service import RefundOutcome, cancel_order

router = APIRouter(prefix="/orders", tags=["refunds"], responses=API_ERRORS)

# A refund's state → the answer's status: done, sent and waiting, or outcome unknown
# (Payletter never answered); a failure is 422, or 502 when it never reached Payletter.
_STATUS = {"done": 200, "requested": 202, "unknown": 504}


def refund_status_code(outcome: RefundOutcome) -> int:
    return _STATUS.get(outcome.refund["status"], 422 if outcome.sent else 502)


# The refund's own answer under each of those statuses; refusals before anything was sent
# (no such order, not refundable, a bad amount) are the usual errors.
CANCEL_RESPONSES: Responses = {
    **errors(400, 404, 409),
    202: {"model": RefundAnswerOut, "description": "Sent; Payletter's confirmation is pending"},
    **errors(422, model=RefundAnswerOut | ErrorOut, described={
        422: "Payletter refused the cancel (the refund, failed), or the request is invalid"}),
    **errors(502, 504, model=RefundAnswerOut, described={
        502: "The cancel never reached Payletter: the refund failed, nothing happened there",
        504: "Payletter did not answer: the outcome is unknown and the cancel is never resent "
             "(the status sync settles it)"}),
}


class CancelBody(BaseModel):
    """`{}` refunds the whole remaining amount; `{"amount": N}` a part of it."""

    model_config = ConfigDict(extra="forbid")

    # Bounded like every amount we store (BIGINT; SQLite's INTEGER is 64-bit too).
    amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    taxfree_amount: StrictInt | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    tax_amount: StrictInt | None = Field(default=None, ge=0, le=MAX_AMOUNT)


@router.post("/{order_no}/cancel", response_model=RefundAnswerOut,
             response_description="The refund is done", responses=CANCEL_RESPONSES)
async def cancel(
    order_no: str, body: CancelBody, session: SessionDep, gateway: GatewayDep, role: OpsDep,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """Refund a paid order, in full or in part (checked against the method's rules)."""
    answer = await cancel_order(
        session, gateway, order_no, amount=body.amount, taxfree_amount=body.taxfree_amount,
        tax_amount=body.tax_amount, idempotency_key=idempotency_key, actor=role)
    return JSONResponse(answer.body, status_code=refund_status_code(answer))


