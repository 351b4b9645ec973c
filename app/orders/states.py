"""The order state machine, as one table.

Read a row as: in state FROM, event EVENT moves the order to TO. A pair that is not in the
table is not allowed and changes nothing. Duplicates (the same result twice) are decided
by the payment service before this table is consulted.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    CREATED = "created"  # stored, no payment window yet
    PENDING = "pending"  # payment window issued to the buyer
    AWAITING_DEPOSIT = "awaiting_deposit"  # virtual account issued, money not in yet
    PAID = "paid"
    FAILED = "failed"
    ABANDONED = "abandoned"
    PARTIALLY_CANCELLED = "partially_cancelled"
    CANCELLED = "cancelled"
    NEEDS_REVIEW = "needs_review"


class OrderEvent(StrEnum):
    WINDOW_ISSUED = "window_issued"  # payments/request answered with a token
    REQUEST_REFUSED = "request_refused"  # payments/request refused the order for good
    APPROVED = "approved"  # verified success: the money was taken
    ACCOUNT_ISSUED = "account_issued"  # verified virtual-account issuance
    DECLINED = "declined"  # the return reported a failure
    BUYER_CANCELLED = "buyer_cancelled"  # the buyer pressed cancel in the window
    EXPIRED = "expired"  # no result before the deadline
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"  # the whole remaining amount refunded
    MISMATCH = "mismatch"  # a result that contradicts the order: a human decides


S, E = OrderStatus, OrderEvent
_ANY_BUT_REVIEW = tuple(s for s in S if s is not S.NEEDS_REVIEW)

# (from, event) -> to
TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    (S.CREATED, E.WINDOW_ISSUED): S.PENDING,
    (S.CREATED, E.REQUEST_REFUSED): S.FAILED,
    # A verified success wins over every not-yet-paid state: the money was taken.
    (S.CREATED, E.APPROVED): S.PAID,
    (S.PENDING, E.APPROVED): S.PAID,
    (S.AWAITING_DEPOSIT, E.APPROVED): S.PAID,
    (S.FAILED, E.APPROVED): S.PAID,
    (S.ABANDONED, E.APPROVED): S.PAID,
    (S.CREATED, E.ACCOUNT_ISSUED): S.AWAITING_DEPOSIT,
    (S.PENDING, E.ACCOUNT_ISSUED): S.AWAITING_DEPOSIT,
    (S.PENDING, E.DECLINED): S.FAILED,
    (S.PENDING, E.BUYER_CANCELLED): S.ABANDONED,
    (S.CREATED, E.EXPIRED): S.ABANDONED,
    (S.PENDING, E.EXPIRED): S.ABANDONED,
    (S.AWAITING_DEPOSIT, E.EXPIRED): S.ABANDONED,
    (S.PAID, E.PARTIALLY_REFUNDED): S.PARTIALLY_CANCELLED,
    (S.PARTIALLY_CANCELLED, E.PARTIALLY_REFUNDED): S.PARTIALLY_CANCELLED,
    (S.PAID, E.REFUNDED): S.CANCELLED,
    (S.PARTIALLY_CANCELLED, E.REFUNDED): S.CANCELLED,
    **{(s, E.MISMATCH): S.NEEDS_REVIEW for s in _ANY_BUT_REVIEW},
}


def next_status(current: OrderStatus, event: OrderEvent) -> OrderStatus | None:
    """The state `event` moves an order in `current` to, or None if it may not."""
    return TRANSITIONS.get((current, event))


# The money was taken (and may have been given back since): receipts exist, a result of
# the same tid is a duplicate.
PAID_STATES = frozenset({S.PAID, S.PARTIALLY_CANCELLED, S.CANCELLED})
