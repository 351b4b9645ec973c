"""The payment window's life: request, open, approve / decline / cancel, deposit.

The window's buttons and the /_sim/ control calls both end up here, so a browser-less
test exercises exactly what a buyer's clicks do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.callbacks import CallbackEngine
from simulator.clock import KST, to_kst
from simulator.config import Merchant
from simulator.results import (
    DEFAULT_DECLINE_CODE,
    DEFAULT_DECLINE_MESSAGE,
    MASKED_CARD_NUMBER,
    PAY_INFO,
    account_issued_return_fields,
    failure_return_fields,
    success_return_fields,
)
from simulator.rules import tax_amount_default
from simulator.state import Simulator
from simulator.store import Billkey, Payment, Phase, StatusCode, VirtualAccount
from simulator.validation import PaymentRequest

# The window can still be acted on in these phases (a buyer may retry after a failure).
OPEN_PHASES = frozenset({Phase.CREATED, Phase.ENTERED, Phase.DECLINED, Phase.ABANDONED})
# 문화상품권 may be requested without an amount: the buyer's voucher decides it.
DEFAULT_VOUCHER_AMOUNT = 10_000
ACCOUNT_VALID_DAYS = 3
# status_code while a virtual account waits for its deposit. 3 (인증), not 4 (승인): no money
# has moved, so a status check must not let anyone treat the order as paid yet.
ACCOUNT_ISSUED_STATUS = StatusCode.AUTHENTICATED


class WindowConflict(Exception):
    """The action does not fit the payment's state (e.g. approving twice)."""


@dataclass(frozen=True)
class WindowResult:
    return_url: str
    return_fields: dict[str, str]


def open_payment(sim: Simulator, request: PaymentRequest) -> Payment:
    now = sim.clock.now()
    money = request.amounts
    payment = Payment(
        token=sim.store.new_token(now),
        client_id=request.client_id,
        rules=request.rules,
        order_no=request.order_no,
        user_id=request.user_id,
        user_name=request.user_name,
        service_name=request.service_name,
        product_name=request.product_name,
        custom_parameter=request.custom_parameter,
        amount=money.amount,
        taxfree_amount=money.taxfree_amount,
        tax_amount=money.tax_amount,
        disposable_cup_deposit=money.disposable_cup_deposit,
        amount_given=request.amount_given,
        autopay_flag=request.autopay,
        receipt_flag=request.receipt_flag,
        email_flag=request.email_flag,
        email_addr=request.email_addr,
        return_url=request.return_url,
        callback_url=request.callback_url,
        cancel_url=request.cancel_url,
        expire_date=request.expire_date,
        expire_time=request.expire_time,
        created_at=now,
    )
    sim.store.add(payment)
    return payment


def window_urls(sim: Simulator, payment: Payment) -> dict[str, str]:
    base = f"{sim.config.public_url}/pay/{payment.token}"
    return {"online_url": f"{base}?location=online", "mobile_url": f"{base}?location=mobile"}


def enter(payment: Payment, location: str) -> None:
    """The buyer opened the window: status 2 (진입)."""
    if payment.phase is Phase.CREATED:
        payment.phase = Phase.ENTERED
        payment.status_code = StatusCode.ENTERED
    payment.location = location


def _require_open(payment: Payment) -> None:
    if payment.phase not in OPEN_PHASES:
        raise WindowConflict(f"payment {payment.token} is already {payment.phase.value}")


def approve(
    sim: Simulator, payment: Payment, *, result_pgcode: str | None = None,
    amount: int | None = None,
) -> WindowResult:
    """The buyer paid (for a virtual account: asked for an account to deposit into)."""
    _require_open(payment)
    merchant = sim.merchant_for(payment)
    now = sim.clock.now()
    if not payment.amount_given:
        payment.amount = amount if amount is not None else DEFAULT_VOUCHER_AMOUNT
        payment.tax_amount = tax_amount_default(payment.amount, payment.taxfree_amount)
    if not payment.tid:
        sim.store.assign_tid(payment, sim.store.new_tid(payment.client_id, now))
    payment.result_pgcode = payment.rules.result_pgcode(result_pgcode)
    if payment.pgcode == "virtualaccount":
        return _issue_account(sim, payment, merchant, now)
    _mark_paid(sim, payment, now)
    if payment.autopay_flag:
        _register_billkey(sim, payment, now)
    if payment.amount == 0:
        payment.status_code = StatusCode.DONE  # billkey only: no money, no callback to wait for
    fields = success_return_fields(payment, merchant, corrupt_payhash=sim.faults.bad_payhash)
    payment.return_fields = fields
    return WindowResult(payment.return_url, fields)


def _mark_paid(sim: Simulator, payment: Payment, now: datetime) -> None:
    rules = payment.rules
    payment.cid = sim.store.new_cid(now)
    payment.approved_at = now
    payment.phase = Phase.APPROVED
    payment.status_code = StatusCode.APPROVED
    payment.pay_info = PAY_INFO.get(payment.pgcode, "")
    payment.card_info = MASKED_CARD_NUMBER if rules.card_info else ""
    payment.domestic_flag = "N" if rules.card_like else ""
    payment.install_month = "0" if rules.card_like else ""
    if payment.receipt_flag and rules.cash_receipt:
        issue_cash_receipt(sim, payment)


def issue_cash_receipt(sim: Simulator, payment: Payment, receipt_type: str = "01") -> None:
    """The buyer asked for a 현금영수증 (in the window, or later on the receipt page)."""
    if payment.cash_receipt:
        return
    payment.cash_receipt = {
        "code": "0",
        "message": "현금영수증 발급 완료",
        "cid": sim.store.new_cid(sim.clock.now()),
        "deal_no": payment.order_no,
        "issue_type": "1",
        "payer_sid": "010****5678",
        "type": receipt_type,
    }


def _register_billkey(sim: Simulator, payment: Payment, now: datetime) -> None:
    payment.billkey = sim.store.new_billkey(payment.client_id, now)
    sim.store.billkeys[payment.billkey] = Billkey(
        billkey=payment.billkey,
        client_id=payment.client_id,
        user_id=payment.user_id,
        pgcode=payment.pgcode,
        amount=payment.amount,
        first_paid_at=now,
        charges=[now] if payment.amount > 0 else [],
    )


def _issue_account(
    sim: Simulator, payment: Payment, merchant: Merchant, now: datetime
) -> WindowResult:
    default_expiry = to_kst(now) + timedelta(days=ACCOUNT_VALID_DAYS)
    payment.account = VirtualAccount(
        account_no=sim.store.new_account_no(),
        account_name=payment.user_name or payment.user_id,
        account_holder=merchant.display_name,
        bank_code="088",
        bank_name="신한은행",
        issue_tid=sim.store.new_cid(now),
        expire_date=payment.expire_date or f"{default_expiry:%Y%m%d}",
        expire_time=payment.expire_time or "2359",
        issued_at=now,
    )
    payment.phase = Phase.ACCOUNT_ISSUED
    payment.status_code = ACCOUNT_ISSUED_STATUS
    fields = account_issued_return_fields(payment)
    payment.return_fields = fields
    return WindowResult(payment.return_url, fields)


def account_expired(payment: Payment, now: datetime) -> bool:
    account = payment.account
    if account is None:
        return False
    deadline = datetime.strptime(
        account.expire_date + account.expire_time, "%Y%m%d%H%M"
    ).replace(tzinfo=KST)
    return now > deadline + timedelta(seconds=59)


def deposit(sim: Simulator, payment: Payment) -> None:
    """Money arrived on the virtual account: the payment is done; the callback follows."""
    now = sim.clock.now()
    if payment.phase is not Phase.ACCOUNT_ISSUED or payment.account is None:
        raise WindowConflict(f"payment {payment.token} has no open virtual account")
    if account_expired(payment, now):
        raise WindowConflict(f"the virtual account of payment {payment.token} has expired")
    payment.account.deposited_at = now
    _mark_paid(sim, payment, now)
    payment.status_code = StatusCode.DONE


def decline(
    payment: Payment, code: str = DEFAULT_DECLINE_CODE, message: str = DEFAULT_DECLINE_MESSAGE
) -> WindowResult:
    _require_open(payment)
    if code == "0":
        raise WindowConflict("a decline needs a non-zero code")
    payment.phase = Phase.DECLINED
    fields = failure_return_fields(payment, code, message)
    payment.return_fields = fields
    return WindowResult(payment.return_url, fields)


def abandon(payment: Payment) -> str | None:
    """The buyer pressed cancel. The cancel_url to send them to, or None for a closed page."""
    _require_open(payment)
    payment.phase = Phase.ABANDONED
    if not payment.rules.calls_cancel_url or not payment.cancel_url:
        return None
    return payment.cancel_url


async def approve_and_notify(
    sim: Simulator, payment: Payment, *, result_pgcode: str | None = None,
    amount: int | None = None,
) -> WindowResult:
    """Approve, then start the callback (and, if the fault says so, wait for its first try)."""
    result = approve(sim, payment, result_pgcode=result_pgcode, amount=amount)
    if payment.sends_callback:
        deliveries = sim.send_callback(payment)
        if sim.faults.callback_before_return:
            await CallbackEngine.wait_first_attempts(deliveries)
    return result
