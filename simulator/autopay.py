"""payments/autopay: charge a billkey issued by an autopay_flag=Y first payment."""

from __future__ import annotations

from datetime import datetime

from simulator.clock import to_kst
from simulator.config import Merchant
from simulator.errors import BizCode, business
from simulator.rules import months_between, same_day_of_month
from simulator.state import Simulator
from simulator.store import Billkey, Payment, Phase, StatusCode
from simulator.validation import AutopayRequest


def _previous_month(now: datetime) -> tuple[int, int]:
    local = to_kst(now)
    return (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)


def check_mobile_rule(billkey: Billkey, amount: int, now: datetime) -> None:
    """휴대폰 자동결제 승인 정책: same amount and day every month, a month after the first
    payment at the earliest, and only if last month had a payment."""
    if amount != billkey.amount:
        raise business(
            BizCode.MOBILE_AUTOPAY_RULE,
            f"mobile autopay must charge the first payment's amount ({billkey.amount})",
        )
    if months_between(billkey.first_paid_at, now) < 1:
        raise business(
            BizCode.MOBILE_AUTOPAY_RULE,
            "mobile autopay is possible one month (about 30 days) after the first payment",
        )
    if not same_day_of_month(billkey.first_paid_at, now):
        raise business(
            BizCode.MOBILE_AUTOPAY_RULE,
            f"mobile autopay must charge on day {to_kst(billkey.first_paid_at).day} of the month",
        )
    last_month = _previous_month(now)
    if not any((to_kst(c).year, to_kst(c).month) == last_month for c in billkey.charges):
        raise business(
            BizCode.MOBILE_AUTOPAY_RULE, "mobile autopay needs a payment in the previous month"
        )


def charge(sim: Simulator, merchant: Merchant, request: AutopayRequest) -> Payment:
    billkey = sim.store.billkeys.get(request.billkey)
    if billkey is None or billkey.client_id != merchant.client_id:
        raise business(BizCode.BILLKEY_INVALID, "unknown billkey")
    if billkey.revoked:
        raise business(BizCode.BILLKEY_INVALID, "the billkey has been revoked")
    if billkey.pgcode != request.rules.pgcode:
        raise business(BizCode.BILLKEY_INVALID, f"the billkey was issued for {billkey.pgcode}")
    if billkey.user_id != request.user_id:
        raise business(BizCode.BILLKEY_INVALID, "the billkey belongs to another user_id")
    now = sim.clock.now()
    if request.rules.pgcode == "mobile":
        check_mobile_rule(billkey, request.amounts.amount, now)
    money = request.amounts
    payment = Payment(
        token=sim.store.new_token(now),
        client_id=merchant.client_id,
        rules=request.rules,
        order_no=request.order_no,
        user_id=request.user_id,
        user_name=request.user_name,
        service_name=request.service_name,
        product_name=request.product_name,
        custom_parameter="",
        amount=money.amount,
        taxfree_amount=money.taxfree_amount,
        tax_amount=money.tax_amount,
        disposable_cup_deposit=money.disposable_cup_deposit,
        amount_given=True,
        autopay_flag=True,
        receipt_flag=False,
        email_flag=False,
        email_addr="",
        return_url="",
        callback_url="",
        cancel_url="",
        expire_date="",
        expire_time="",
        created_at=now,
        origin="autopay",
        phase=Phase.APPROVED,
        status_code=StatusCode.DONE,  # answered synchronously: nothing left to happen
        billkey=billkey.billkey,
        result_pgcode=request.rules.pgcode,
        approved_at=now,
    )
    sim.store.add(payment)
    sim.store.assign_tid(payment, sim.store.new_tid(merchant.client_id, now))
    payment.cid = sim.store.new_cid(now)
    billkey.charges.append(now)
    return payment
