"""A tiny demo shop, mounted only when PAYLETTER_ENV=sim: pick a product, pay, see the order.

It plays the shop's backend: it creates the order server-side (as your backend would, with
the shop token's authority) and sends the browser to the payment window.
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api.deps import GatewayDep, SessionDep
from app.errors import AppError
from app.models import Order
from app.payletter.methods import METHODS
from app.repositories import OrderRepository
from app.schemas import OrderCreate
from app.services.orders import create_order

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

DEMO_METHODS = ("creditcard", "kakaopay", "mobile", "virtualaccount", "banktransfer", "payco")

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input,select{width:100%;padding:.5rem;font-size:1rem}
button{margin-top:1.2rem;padding:.7rem 1.4rem;font-size:1rem;cursor:pointer}
.error{background:#fee;border:1px solid #c33;padding:.6rem;margin:1rem 0}
.note{color:#666;font-size:.9rem}
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


@router.get("", response_class=HTMLResponse)
async def shop_page(error: str | None = None) -> HTMLResponse:
    """The demo shop's checkout form."""
    options = "".join(
        f"<option value='{code}'>{escape(METHODS[code].label)} ({code})</option>"
        for code in DEMO_METHODS
    )
    problem = f"<p class='error' id='error'>{escape(error)}</p>" if error else ""
    return _page("Demo shop", f"""{problem}
<form method="post" action="/demo/orders" id="checkout">
  <label for="product_name">Product</label>
  <input id="product_name" name="product_name" value="Coffee beans 1kg" maxlength="120">
  <label for="amount">Amount (won)</label>
  <input id="amount" name="amount" type="number" value="15000" min="1">
  <label for="pgcode">Payment method</label>
  <select id="pgcode" name="pgcode">{options}</select>
  <button type="submit" id="pay">Pay</button>
</form>
<p class="note">Runs against the local Payletter simulator: no real money moves.</p>""")


@router.post("/orders")
async def demo_checkout(
    session: SessionDep,
    gateway: GatewayDep,
    product_name: Annotated[str, Form()],
    amount: Annotated[int, Form()],
    pgcode: Annotated[str, Form()],
) -> RedirectResponse:
    """Create the order as a shop backend would, then open the payment window."""
    body = OrderCreate(pgcode=pgcode, amount=amount, product_name=product_name,
                       user_id="demo_buyer", user_name="Demo Buyer")
    try:
        result = await create_order(session, gateway, body, idempotency_key=None)
    except AppError as exc:
        return RedirectResponse(f"/demo?error={quote(exc.message)}", status_code=303)
    if result.status_code != 201:
        message = str(result.body.get("error", {}).get("message", "could not open the payment"))
        return RedirectResponse(f"/demo?error={quote(message)}", status_code=303)
    return RedirectResponse(str(result.body["online_url"]), status_code=303)


def demo_extras(order: Order | None) -> str:
    """What the result page adds in sim: a deposit button for virtual accounts, a way back."""
    extra = ""
    if order is not None and order.status == "awaiting_deposit":
        extra = (f"<form method='post' action='/demo/orders/{quote(order.order_no)}/deposit'>"
                 "<button type='submit' id='deposit'>Simulate the buyer's deposit</button>"
                 "</form>")
    return extra + "<p><a href='/demo' id='back'>Back to the demo shop</a></p>"


@router.post("/orders/{order_no}/deposit")
async def demo_deposit(order_no: str, session: SessionDep, gateway: GatewayDep
                       ) -> RedirectResponse:
    """Ask the simulator to deposit into the order's virtual account, then show the result."""
    order = await OrderRepository(session).get_by_order_no(order_no)
    if order is None or order.tid is None:
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
    return RedirectResponse(f"/payletter/result?order_no={quote(order_no)}", status_code=303)
