"""Refunds: operators cancel a paid order, in full or in part."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.kit.deps import GatewayDep, IdempotencyKeyDep, OpsDep, SessionDep
from app.kit.responses import API_ERRORS
from app.payletter.results import MAX_AMOUNT
from app.refunds.service import RefundOutcome, cancel_order

router = APIRouter(prefix="/orders", tags=["refunds"], responses=API_ERRORS)

# A refund's state → the answer's status: done, sent and waiting, or outcome unknown
# (Payletter never answered); a failure is 422, or 502 when it never reached Payletter.
_STATUS = {"done": 200, "requested": 202, "unknown": 504}


def refund_status_code(outcome: RefundOutcome) -> int:
    return _STATUS.get(outcome.refund["status"], 422 if outcome.sent else 502)


class CancelBody(BaseModel):
    """`{}` refunds the whole remaining amount; `{"amount": N}` a part of it."""

    model_config = ConfigDict(extra="forbid")

    # Bounded like every amount we store (BIGINT; SQLite's INTEGER is 64-bit too).
    amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    taxfree_amount: StrictInt | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    tax_amount: StrictInt | None = Field(default=None, ge=0, le=MAX_AMOUNT)


@router.post("/{order_no}/cancel")
async def cancel(
    order_no: str, body: CancelBody, session: SessionDep, gateway: GatewayDep, role: OpsDep,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """Refund a paid order, in full or in part (checked against the method's rules)."""
    answer = await cancel_order(
        session, gateway, order_no, amount=body.amount, taxfree_amount=body.taxfree_amount,
        tax_amount=body.tax_amount, idempotency_key=idempotency_key, actor=role)
    return JSONResponse(answer.body, status_code=refund_status_code(answer))


