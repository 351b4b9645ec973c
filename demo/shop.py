"""A tiny demo shop, mounted only when PAYLETTER_ENV=sim: pick a product, pay, see the order.

It plays the shop's backend: it creates the order server-side (as your backend would, with
the shop token's authority) and sends the browser to the payment window.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from app.errors import AppError, InvalidRequest
from app.kit.deps import GatewayDep, SessionDep
from app.kit.idempotency import Failed
from app.kit.templates import html_page
from app.orders.intents import sign_intent
from app.orders.repository import OrderRepository
from app.orders.schemas import IntentOrderCreate
from app.orders.service import RESULT_LINK, create_order_from_intent, link_verifies, new_order_no
from app.payletter.methods import METHODS

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

DEMO_METHODS = ("creditcard", "kakaopay", "mobile", "virtualaccount", "banktransfer", "payco")

# The shop's catalogue: the price is the shop's, never the browser's.
CATALOG: dict[str, tuple[str, int]] = {
    "coffee": ("Coffee beans 1kg", 15000),
    "tea": ("Green tea 100g", 8000),
    "mug": ("Ceramic mug", 12300),
    "sample": ("Sample pack", 500),
}
BUYER = "demo_buyer"


@router.get("", response_class=HTMLResponse)
async def shop_page(error: str | None = None) -> HTMLResponse:
    """The demo shop's checkout form (app/templates/demo/shop.html)."""
    return html_page(
        "demo/shop.html", error=error,
        products=[(key, name, price) for key, (name, price) in CATALOG.items()],
        methods=[(code, METHODS[code].label) for code in DEMO_METHODS])


def _intent_for(gateway: GatewayDep, product: str) -> str:
    """The shop backend's part: terms from the catalogue, signed, valid for 15 minutes."""
    if product not in CATALOG:
        raise InvalidRequest(f"unknown product {product!r}", field="product")
    name, price = CATALOG[product]
    secret = gateway.settings.intent_secret
    assert secret is not None  # the demo exists only in sim, where a demo secret is set
    return sign_intent(secret, {
        "order_no": new_order_no(), "amount": price, "product_name": name, "user_id": BUYER,
        "user_name": "Demo Buyer", "pgcodes": list(DEMO_METHODS),
        "expires_at": int(time.time()) + 900,
    })


@router.post("/intent")
async def demo_intent(gateway: GatewayDep, product: Annotated[str, Form()]) -> dict[str, str]:
    """The demo shop's backend: sign the order terms the shop decided."""
    return {"intent": _intent_for(gateway, product)}


@router.post("/orders")
async def demo_checkout(
    session: SessionDep,
    gateway: GatewayDep,
    product: Annotated[str, Form()],
    pgcode: Annotated[str, Form()],
) -> RedirectResponse:
    """Without JavaScript: the backend posts the same signed intent itself."""
    try:
        body = IntentOrderCreate(intent=_intent_for(gateway, product), pgcode=pgcode)
        result = await create_order_from_intent(session, gateway, body)
    except AppError as exc:
        return RedirectResponse(f"/demo?error={quote(exc.message)}", status_code=303)
    if isinstance(result, Failed):
        message = result.error.message or "could not open the payment"
        return RedirectResponse(f"/demo?error={quote(message)}", status_code=303)
    return RedirectResponse(str(result.view["online_url"]), status_code=303)


@router.post("/orders/{order_no}/deposit")
async def demo_deposit(order_no: str, session: SessionDep, gateway: GatewayDep,
                       sig: Annotated[str, Form(max_length=64)] = "") -> RedirectResponse:
    """Ask the simulator to deposit into the order's virtual account, then show the result."""
    order = await OrderRepository(session).get_by_order_no(order_no)
    if (order is None or order.tid is None
            or not link_verifies(gateway, RESULT_LINK, order, sig)):
        return RedirectResponse("/demo?error=no+such+virtual+account", status_code=303)
    async with httpx.AsyncClient(base_url=gateway.settings.api_base_url, timeout=5) as sim:
        await sim.post(f"_sim/virtualaccount/{quote(order.tid)}/deposit")
    # The simulator's callback arrives on its own; give it a moment so the page shows it.
    for _ in range(30):
        current = await OrderRepository(session).get_by_order_no(order_no)
        waiting = current is not None and current.status == "awaiting_deposit"
        await session.rollback()  # never sleep inside a transaction (SQLite: the write lock)
        if not waiting:
            break
        await asyncio.sleep(0.1)
    return RedirectResponse(f"/payletter/result?{urlencode({'order_no': order_no, 'sig': sig})}",
                            status_code=303)
