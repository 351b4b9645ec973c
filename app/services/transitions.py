"""The one place an order changes state: consult the table, write the audit row, flush."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Order, OrderTransition
from app.order_states import OrderEvent, OrderStatus, next_status
from app.repositories import OrderRepository


async def transition(
    session: AsyncSession,
    order: Order,
    event: OrderEvent,
    *,
    reason: str | None,
    delivery_id: int | None = None,
) -> OrderTransition | None:
    """Move `order` by `event` if the state table allows it; None (and no change) if not."""
    current = OrderStatus(order.status)
    target = next_status(current, event)
    if target is None:
        return None
    order.status = target.value
    if target is OrderStatus.NEEDS_REVIEW:
        order.review_reason = reason
    row = await OrderRepository(session).add_transition(
        order, from_status=current.value, event=event.value, reason=reason,
        delivery_id=delivery_id,
    )
    await session.flush()
    return row
