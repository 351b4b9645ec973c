"""What the refunds API answers: the refund as it stands, with its order."""

from __future__ import annotations

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from app.kit.responses import Answer
from app.orders.schemas import OrderViewOut, RefundOut


class RefundAnswerOut(Answer):
    """POST /orders/{order_no}/cancel, whatever became of the refund
    (`app.refunds.service.RefundOutcome.body`); the HTTP status says which."""

    refund: RefundOut
    order: OrderViewOut = Field(description="The order after the refund")
    message: str | SkipJsonSchema[None] = Field(
        default=None, description="Why it is not done: failed, or unknown")
