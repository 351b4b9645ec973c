"""The vendor-shaped results: return_url form fields and the callback_url JSON."""

from __future__ import annotations

from typing import Any

from simulator.clock import format_kst
from simulator.config import Merchant
from simulator.payhash import compute_payhash, corrupt_payhash
from simulator.store import Payment

SUCCESS_MESSAGE = "정상 처리되었습니다."
ACCOUNT_ISSUED_MESSAGE = "가상계좌가 발급되었습니다."
DEFAULT_DECLINE_CODE = "1001"
DEFAULT_DECLINE_MESSAGE = "사용자가 결제를 진행하지 않았습니다."

# What the simulated buyer "paid with" (pay_info), per pgcode.
PAY_INFO: dict[str, str] = {
    "creditcard": "신한카드",
    "payco": "신한카드",
    "mobile": "01012345678",
    "phonebill": "0212345678",
    "banktransfer": "신한은행",
    "virtualaccount": "신한은행",
}
MASKED_CARD_NUMBER = "457973******1234"


def payhash_for(payment: Payment, merchant: Merchant, *, corrupt: bool) -> str:
    value = compute_payhash(payment.user_id, payment.amount, payment.tid, merchant.payment_key)
    return corrupt_payhash(value) if corrupt else value


def _transaction_date(payment: Payment) -> str:
    return format_kst(payment.approved_at) if payment.approved_at else ""


def success_return_fields(
    payment: Payment, merchant: Merchant, *, corrupt_payhash: bool
) -> dict[str, str]:
    """Return URL, 성공시: every value a string, as a browser form posts it."""
    fields = {
        "code": "0",
        "message": SUCCESS_MESSAGE,
        "user_id": payment.user_id,
        "user_name": payment.user_name,
        "order_no": payment.order_no,
        "service_name": payment.service_name,
        "product_name": payment.product_name,
        "custom_parameter": payment.custom_parameter,
        "tid": payment.tid,
        "cid": payment.cid,
        "amount": str(payment.amount),
        "taxfree_amount": str(payment.taxfree_amount),
        "tax_amount": str(payment.tax_amount),
        "pay_info": payment.pay_info,
        "pgcode": payment.reported_pgcode,
        "billkey": payment.billkey,
        "domestic_flag": payment.domestic_flag,
        "transaction_date": _transaction_date(payment),
        "install_month": payment.install_month,
        "card_info": payment.card_info,
        "payhash": payhash_for(payment, merchant, corrupt=corrupt_payhash),
        "disposable_cup_deposit": str(payment.disposable_cup_deposit),
    }
    if payment.cash_receipt:
        fields.update({f"cash_receipt_{k}": v for k, v in _cash_receipt_return(payment).items()})
    return fields


def _cash_receipt_return(payment: Payment) -> dict[str, str]:
    receipt = payment.cash_receipt
    return {
        "code": receipt["code"],
        "message": receipt["message"],
        "type": receipt["type"],
        "issue_type": receipt["issue_type"],
        "cid": receipt["cid"],
        "payer_sid": receipt["payer_sid"],
        "deal_no": receipt["deal_no"],
    }


def account_issued_return_fields(payment: Payment) -> dict[str, str]:
    """A virtual account's return: the issued account, and no payhash (none is sent)."""
    account = payment.account
    assert account is not None
    return {
        "code": "0",
        "message": ACCOUNT_ISSUED_MESSAGE,
        "user_id": payment.user_id,
        "user_name": payment.user_name,
        "order_no": payment.order_no,
        "service_name": payment.service_name,
        "product_name": payment.product_name,
        "custom_parameter": payment.custom_parameter,
        "tid": payment.tid,
        "amount": str(payment.amount),
        "taxfree_amount": str(payment.taxfree_amount),
        "tax_amount": str(payment.tax_amount),
        "pgcode": payment.reported_pgcode,
        "transaction_date": format_kst(account.issued_at),
        "account_no": account.account_no,
        "account_name": account.account_name,
        "account_holder": account.account_holder,
        "bank_code": account.bank_code,
        "bank_name": account.bank_name,
        "issue_tid": account.issue_tid,
        "expire_date": account.expire_date,
        "expire_time": account.expire_time,
    }


def failure_return_fields(payment: Payment, code: str, message: str) -> dict[str, str]:
    """Return URL, 실패시."""
    return {
        "code": code,
        "message": message,
        "user_id": payment.user_id,
        "order_no": payment.order_no,
        "service_name": payment.service_name,
        "product_name": payment.product_name,
        "custom_parameter": payment.custom_parameter,
    }


def empty_cash_receipt() -> dict[str, str]:
    return {
        "code": "", "message": "", "cid": "", "deal_no": "",
        "issue_type": "", "payer_sid": "", "type": "",
    }


def callback_payload(
    payment: Payment, merchant: Merchant, *, corrupt_payhash: bool
) -> dict[str, Any]:
    """Callback URL JSON, keys and types as the vendor's sample (numbers are numbers)."""
    return {
        "user_id": payment.user_id,
        "user_name": payment.user_name,
        "amount": payment.amount,
        "tax_amount": payment.tax_amount,
        "taxfree_amount": payment.taxfree_amount,
        "tid": payment.tid,
        "cid": payment.cid,
        "order_no": payment.order_no,
        "service_name": payment.service_name,
        "product_name": payment.product_name,
        "custom_parameter": payment.custom_parameter,
        "transaction_date": _transaction_date(payment),
        "pay_info": payment.pay_info,
        "pgcode": payment.reported_pgcode,
        "domestic_flag": payment.domestic_flag,
        "billkey": payment.billkey,
        "card_info": payment.card_info,
        "payhash": payhash_for(payment, merchant, corrupt=corrupt_payhash),
        "disposable_cup_deposit": payment.disposable_cup_deposit,
        "cash_receipt": dict(payment.cash_receipt) or empty_cash_receipt(),
    }
