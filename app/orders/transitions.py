"""The one place an order changes state: consult the table, write the audit row and the
shop's event (same transaction), flush (or leave the flush to the caller).

Set the order's other fields *before* calling `transition`: the event carries the order as
it is at that moment.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Order, OrderTransition
from app.orders.repository import OrderRepository
from app.orders.states import OrderEvent, OrderStatus, next_status
from app.webhooks.outbox import record_event


async def transition(
    session: AsyncSession,
    order: Order,
    event: OrderEvent,
    *,
    reason: str | None,
    delivery_id: int | None = None,
    flush: bool = True,
) -> OrderTransition | None:
    """Move `order` by `event` if the state table allows it; None (and no change) if not.

    `flush=False` leaves the rows to the caller's next flush (a delivery's record inserts
    itself first, then flushes these with its id: no UPDATE of the transition afterwards).
    """
    current = OrderStatus(order.status)
    target = next_status(current, event)
    if target is None:
        return None
    order.status = target.value
    if target is OrderStatus.NEEDS_REVIEW:
        order.review_reason = reason
    # Set here rather than by the column's onupdate at flush, so the event below shows the
    # order exactly as it will be stored, and one flush writes all three rows.
    order.updated_at = utcnow()
    row = await OrderRepository(session).add_transition(
        order, from_status=current.value, event=event.value, reason=reason,
        delivery_id=delivery_id,
    )
    await record_event(session, order)
    if flush:
        await session.flush()
    return row


def can_move(order: Order, event: OrderEvent) -> bool:
    return next_status(OrderStatus(order.status), event) is not None
