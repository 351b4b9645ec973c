"""Cash receipts and transaction confirmations: Payletter renders them; we hand out URLs."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound, PaymentRefused, UpstreamError
from app.gateway import Gateway
from app.kit.idempotency import Done, Failed, Result
from app.models import Order
from app.ops.audit import audit
from app.orders.repository import OrderRepository
from app.orders.states import PAID_STATES
from app.payletter.errors import BusinessRuleError, PayletterError
from app.payletter.models import CashReceiptRequest


async def _paid_order(session: AsyncSession, order_no: str) -> Order:
    order = await OrderRepository(session).get_by_order_no(order_no)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    if order.tid is None or order.status not in PAID_STATES:
        raise Conflict(f"order is {order.status}: receipts exist only for paid orders")
    return order


async def issue_cash_receipt(session: AsyncSession, gateway: Gateway, order_no: str, *,
                             receipt_type: str | None, tax_flag: str | None, actor: str
                             ) -> Result:
    """The receipt page's URL; a refusal is returned, not raised, so its audit row commits."""
    order = await _paid_order(session, order_no)
    assert order.tid is not None
    back = f"{gateway.settings.public_base}/payletter/result?{urlencode({'order_no': order_no})}"
    request = CashReceiptRequest(client_id=order.client_id, type=receipt_type,
                                 tax_flag=tax_flag, return_url=back)
    try:
        result = await gateway.payletter.issue_cash_receipt(order.tid, request)
    except BusinessRuleError as exc:
        await audit(session, actor=actor, action="cash_receipt", outcome="refused", order=order,
                    error=exc.message)
        return Failed(PaymentRefused(f"Payletter refused the cash receipt: {exc.message}"))
    except PayletterError as exc:
        raise UpstreamError(f"Payletter could not issue the cash receipt: {exc}") from None
    await audit(session, actor=actor, action="cash_receipt", outcome="issued", order=order,
                receipt_url=result.receipt_url)
    return Done({"receipt_url": result.receipt_url})


async def transaction_receipt(session: AsyncSession, gateway: Gateway, order_no: str, *,
                              actor: str) -> str:
    order = await _paid_order(session, order_no)
    assert order.tid is not None
    try:
        result = await gateway.payletter.receipt_info(order.client_id, order.tid)
    except BusinessRuleError as exc:
        raise PaymentRefused(f"Payletter has no receipt for this payment: {exc.message}"
                             ) from None
    except PayletterError as exc:
        raise UpstreamError(f"Payletter could not find the receipt: {exc}") from None
    await audit(session, actor=actor, action="receipt", outcome="shown", order=order,
                receipt_url=result.receipt_url)
    return result.receipt_url
