"""Orders: the shop opens payments here; shop and operators read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from app.api.deps import GatewayDep, ReaderDep, SessionDep, ShopDep
from app.errors import InvalidRequest, NotFound
from app.repositories import DeliveryRepository, OrderRepository
from app.schemas import OrderCreate
from app.services.orders import create_order, order_detail

router = APIRouter(prefix="/orders", tags=["orders"])

IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


@router.post("", status_code=201)
async def post_order(
    body: OrderCreate,
    session: SessionDep,
    gateway: GatewayDep,
    _: ShopDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Create an order and its Payletter payment window."""
    if idempotency_key is not None and not idempotency_key.strip():
        raise InvalidRequest("Idempotency-Key must not be empty", field="Idempotency-Key")
    result = await create_order(session, gateway, body, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.get("/{order_no}")
async def get_order(order_no: str, session: SessionDep, _: ReaderDep) -> dict[str, Any]:
    """One order with every delivery and state change on record."""
    orders = OrderRepository(session)
    order = await orders.get_by_order_no(order_no)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    deliveries = await DeliveryRepository(session).for_order(order.id)
    return order_detail(order, deliveries, await orders.transitions(order.id))
