"""In-memory state: payments, billkeys and the callback attempt log.

One process, one event loop: every mutation below runs without an `await` in the
middle, so no locks are needed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Literal

from simulator.clock import to_kst
from simulator.rules import MethodRules


class StatusCode(IntEnum):
    """payments/status's status_code (1:생성, 2:진입, 3:인증, 4:승인, 5:완료)."""

    CREATED = 1
    ENTERED = 2
    AUTHENTICATED = 3
    APPROVED = 4
    DONE = 5


class Phase(StrEnum):
    """Finer than status_code: what happened in the window (the simulator's own view)."""

    CREATED = "created"
    ENTERED = "entered"
    DECLINED = "declined"
    ABANDONED = "abandoned"  # the buyer pressed cancel in the window
    ACCOUNT_ISSUED = "account_issued"  # virtual account issued, no money yet
    APPROVED = "approved"


CancelKind = Literal["full", "partial"]


@dataclass
class CancelRecord:
    cid: str
    kind: CancelKind
    amount: int
    taxfree_amount: int
    tax_amount: int
    cancelled_at: datetime


@dataclass
class VirtualAccount:
    account_no: str
    account_name: str
    account_holder: str
    bank_code: str
    bank_name: str
    issue_tid: str
    expire_date: str
    expire_time: str
    issued_at: datetime
    deposited_at: datetime | None = None


@dataclass
class Payment:
    token: int
    client_id: str
    rules: MethodRules
    order_no: str
    user_id: str
    user_name: str
    service_name: str
    product_name: str
    custom_parameter: str
    amount: int
    taxfree_amount: int
    tax_amount: int
    disposable_cup_deposit: int
    amount_given: bool
    autopay_flag: bool
    receipt_flag: bool
    email_flag: bool
    email_addr: str
    return_url: str
    callback_url: str
    cancel_url: str
    expire_date: str
    expire_time: str
    created_at: datetime
    origin: Literal["window", "autopay"] = "window"
    phase: Phase = Phase.CREATED
    status_code: StatusCode = StatusCode.CREATED
    location: str = ""
    tid: str = ""
    cid: str = ""
    result_pgcode: str = ""
    approved_at: datetime | None = None
    billkey: str = ""
    pay_info: str = ""
    card_info: str = ""
    domestic_flag: str = ""
    install_month: str = ""
    account: VirtualAccount | None = None
    cancels: list[CancelRecord] = field(default_factory=list)
    return_fields: dict[str, str] | None = None
    cash_receipt: dict[str, str] = field(default_factory=dict)

    @property
    def pgcode(self) -> str:
        return self.rules.pgcode

    @property
    def reported_pgcode(self) -> str:
        return self.result_pgcode or self.pgcode

    @property
    def paid(self) -> bool:
        """Money moved: approved (for a virtual account: deposited) and not a 0-won signup."""
        return self.phase is Phase.APPROVED and self.approved_at is not None and self.amount > 0

    @property
    def cancelled_amount(self) -> int:
        return sum(c.amount for c in self.cancels)

    @property
    def remaining_amount(self) -> int:
        return self.amount - self.cancelled_amount if self.paid else 0

    @property
    def fully_cancelled(self) -> bool:
        return self.paid and self.remaining_amount == 0

    @property
    def sends_callback(self) -> bool:
        """Payletter calls callback_url only for a successful window payment with money."""
        return self.origin == "window" and self.paid


@dataclass
class Billkey:
    billkey: str
    client_id: str
    user_id: str
    pgcode: str
    amount: int
    first_paid_at: datetime
    charges: list[datetime] = field(default_factory=list)
    revoked: bool = False


Outcome = Literal["acknowledged", "rejected", "error", "timeout", "dropped"]


@dataclass
class CallbackAttempt:
    id: int
    delivery_id: int
    token: int
    order_no: str
    tid: str
    attempt: int
    url: str
    sent_at: datetime
    source_address: str | None
    outcome: Outcome
    response_status: int | None = None
    response_body: str | None = None
    error: str | None = None
    elapsed_ms: int = 0


class Store:
    def __init__(self, tid_prefix: str) -> None:
        self.tid_prefix = tid_prefix
        self.reset()

    def reset(self) -> None:
        self.payments: dict[int, Payment] = {}
        self.by_tid: dict[str, Payment] = {}
        self.billkeys: dict[str, Billkey] = {}
        self.callback_log: list[CallbackAttempt] = []
        self._seq = itertools.count(1)

    def _next(self) -> int:
        return next(self._seq)

    # Identifiers shaped like the vendor's samples.
    def new_token(self, now: datetime) -> int:
        # e.g. 153438847514600001: epoch milliseconds, then a 5-digit sequence.
        millis = int(now.timestamp() * 1000)
        token = millis * 100_000 + self._next() % 100_000
        while token in self.payments:
            token += 1
        return token

    def new_tid(self, client_id: str, now: datetime) -> str:
        # e.g. tpay_test-201808162396515
        while True:
            tid = f"{self.tid_prefix}{client_id}-{to_kst(now):%Y%m%d}{self._next():07d}"
            if tid not in self.by_tid:
                return tid

    def new_cid(self, now: datetime) -> str:
        # e.g. 20180816150336996237
        return f"{to_kst(now):%Y%m%d%H%M%S}{self._next() % 1_000_000:06d}"

    def new_billkey(self, client_id: str, now: datetime) -> str:
        # e.g. tbpay_test201801012359590002 (at most 40 characters)
        return f"{self.tid_prefix}b{client_id}{to_kst(now):%Y%m%d%H%M%S}{self._next() % 10_000:04d}"

    def new_account_no(self) -> str:
        return f"5620{self._next():010d}"

    def new_log_id(self) -> int:
        return len(self.callback_log) + 1

    # Lookups.
    def add(self, payment: Payment) -> None:
        self.payments[payment.token] = payment

    def assign_tid(self, payment: Payment, tid: str) -> None:
        payment.tid = tid
        self.by_tid[tid] = payment

    def find_by_order(self, client_id: str, order_no: str) -> Payment | None:
        """The most recent payment for the order (a retried request makes a new token)."""
        for payment in reversed(self.payments.values()):
            if payment.client_id == client_id and payment.order_no == order_no:
                return payment
        return None

    def attempts(self, *, order_no: str | None = None, token: int | None = None) -> list[
        CallbackAttempt
    ]:
        return [
            a for a in self.callback_log
            if (order_no is None or a.order_no == order_no) and (token is None or a.token == token)
        ]
