"""Fixed values from Payletter's API page, used across tests."""

from __future__ import annotations

import hashlib

PAY_TEST_CLIENT_ID = "pay_test"
PAY_TEST_PAYMENT_KEY = "MTFBNTAzNTEwNDAxQUIyMjlCQzgwNTg1MkU4MkZENDA="

# The vendor page's callback example (payhash replaced per test).
VENDOR_CALLBACK_EXAMPLE = {
    "user_id": "test_user_id",
    "user_name": "테스트",
    "amount": 1000,
    "tax_amount": 20,
    "taxfree_amount": 100,
    "tid": "tpay_test-201808162396515",
    "cid": "20180816150336996237",
    "order_no": "1234567890",
    "service_name": "페이레터",
    "product_name": "테스트상품",
    "custom_parameter": "this is custom parameter",
    "transaction_date": "2018-08-16 15:03:52",
    "pay_info": "0101234567",
    "pgcode": "mobile",
    "domestic_flag": "",
    "billkey": "",
    "card_info": "457973******1234",
    "payhash": "9E078A29E6435959A07ED2E8415789234D18250434BAF2C185C2EF3012C77E92",
    "disposable_cup_deposit": 0,
    "cash_receipt": {
        "code": "결과",
        "message": "메시지",
        "cid": "현금영수증 승인번호",
        "deal_no": "현금영수증 발급시 주문번호",
        "issue_type": "현금영수증 발행 구분",
        "payer_sid": "신분확인 번호",
        "type": "거래자구분",
    },
}


def payhash(user_id: str, amount: int, tid: str, key: str = PAY_TEST_PAYMENT_KEY) -> str:
    """Computed here from the vendor's formula, independently of app.payletter."""
    return hashlib.sha256(f"{user_id}{amount}{tid}{key}".encode()).hexdigest().upper()
