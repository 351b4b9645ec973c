"""An order with its whole history: what GET /orders/{order_no} and `orders show` answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.ops.audit import audit_view
from app.ops.repository import AuditRepository
from app.orders.repository import OrderRepository
from app.orders.service import order_detail
from app.payments.repository import DeliveryRepository
from app.refunds.repository import RefundRepository
from app.refunds.service import refund_view


async def order_with_history(session: AsyncSession, order_no: str) -> dict[str, Any]:
    """The order's fields, then every delivery, state change, refund and audit entry."""
    orders = OrderRepository(session)
    order = await orders.get_by_order_no(order_no)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    deliveries = await DeliveryRepository(session).for_order(order.id)
    view = order_detail(order, deliveries, await orders.transitions(order.id))
    view["refunds"] = [refund_view(r) for r in await RefundRepository(session).for_order(order.id)]
    view["audit"] = [audit_view(a) for a in await AuditRepository(session).for_order(order.id)]
    return view
