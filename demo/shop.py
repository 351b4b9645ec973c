"""A tiny demo shop, mounted only when PAYLETTER_ENV=sim: pick a product, pay, see the order.

It plays the shop's backend: it creates the order server-side (as your backend would, with
the shop token's authority) and sends the browser to the payment window.
"""

from __future__ import annotations

import asyncio
import time
from html import escape
from typing import Annotated
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from app.errors import AppError, InvalidRequest
from app.kit.deps import GatewayDep, SessionDep
from app.kit.idempotency import Failed
from app.models import Order
from app.orders.intents import sign_intent
from app.orders.repository import OrderRepository
from app.orders.schemas import IntentOrderCreate
from app.orders.service import RESULT_LINK, create_order_from_intent, link_verifies, new_order_no
from app.payletter.methods import METHODS

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


# The shop's catalogue: the price is the shop's, never the browser's.
CATALOG: dict[str, tuple[str, int]] = {
    "coffee": ("Coffee beans 1kg", 15000),
    "tea": ("Green tea 100g", 8000),
    "mug": ("Ceramic mug", 12300),
    "sample": ("Sample pack", 500),
}
BUYER = "demo_buyer"

# The page's only script: ask the shop's backend for a signed intent, post it to the
# gateway's POST /orders (what a real shop frontend does), then open the payment window.
# Without JavaScript the form still works through the backend (/demo/orders).
_SCRIPT = """
document.getElementById('checkout').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const shown = document.getElementById('error');
  try {
    const signed = await fetch('/demo/intent', {method: 'POST', body: form});
    if (!signed.ok) throw new Error((await signed.json()).error.message);
    const {intent} = await signed.json();
    const created = await fetch('/orders', {method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({intent, pgcode: form.get('pgcode')})});
    const order = await created.json();
    if (!created.ok) throw new Error(order.error.message);
    window.location.assign(order.online_url);
  } catch (problem) {
    shown.textContent = problem.message;
    shown.hidden = false;
  }
});
"""


@router.get("", response_class=HTMLResponse)
async def shop_page(error: str | None = None) -> HTMLResponse:
    """The demo shop's checkout form."""
    methods = "".join(
        f"<option value='{code}'>{escape(METHODS[code].label)} ({code})</option>"
        for code in DEMO_METHODS
    )
    products = "".join(f"<option value='{key}'>{escape(name)}: {price:,} won</option>"
                       for key, (name, price) in CATALOG.items())
    hidden = "" if error else " hidden"
    return _page("Demo shop", f"""<p class='error' id='error'{hidden}>{escape(error or "")}</p>
<form method="post" action="/demo/orders" id="checkout">
  <label for="product">Product</label>
  <select id="product" name="product">{products}</select>
  <label for="pgcode">Payment method</label>
  <select id="pgcode" name="pgcode">{methods}</select>
  <button type="submit" id="pay">Pay</button>
</form>
<p class="note">The shop's backend signs the order (price included) as an intent; this page
posts it to the gateway's <code>POST /orders</code> with no token. Runs against the local
Payletter simulator: no real money moves.</p>
<script>{_SCRIPT}</script>""")


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


def demo_extras(order: Order | None, signature: str | None) -> str:
    """What the result page adds in sim: a deposit button for virtual accounts, a way back.
    The button carries the page's result signature: only the buyer's page can press it."""
    extra = ""
    if order is not None and order.status == "awaiting_deposit":
        extra = (f"<form method='post' action='/demo/orders/{quote(order.order_no)}/deposit'>"
                 f"<input type='hidden' name='sig' value='{escape(signature or '')}'>"
                 "<button type='submit' id='deposit'>Simulate the buyer's deposit</button>"
                 "</form>")
    return extra + "<p><a href='/demo' id='back'>Back to the demo shop</a></p>"


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
