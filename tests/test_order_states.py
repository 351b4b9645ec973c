"""The order state machine table."""

from __future__ import annotations

import pytest

from app.orders.states import TRANSITIONS, OrderEvent, OrderStatus, next_status

S, E = OrderStatus, OrderEvent


def test_paid_is_reached_only_by_a_verified_approval() -> None:
    into_paid = {event for (_, event), to in TRANSITIONS.items() if to is S.PAID}
    assert into_paid == {E.APPROVED}


@pytest.mark.parametrize("state", [S.FAILED, S.ABANDONED, S.PENDING, S.AWAITING_DEPOSIT])
def test_a_verified_success_wins_over_unpaid_states(state: OrderStatus) -> None:
    assert next_status(state, E.APPROVED) is S.PAID


def test_any_state_but_review_goes_to_review_on_a_mismatch() -> None:
    for state in S:
        expected = None if state is S.NEEDS_REVIEW else S.NEEDS_REVIEW
        assert next_status(state, E.MISMATCH) is expected


def test_a_decline_or_buyer_cancel_cannot_undo_a_payment() -> None:
    for event in (E.DECLINED, E.BUYER_CANCELLED, E.EXPIRED):
        assert next_status(S.PAID, event) is None


def test_refunds_move_paid_orders_forward_only() -> None:
    assert next_status(S.PAID, E.PARTIALLY_REFUNDED) is S.PARTIALLY_CANCELLED
    assert next_status(S.PARTIALLY_CANCELLED, E.REFUNDED) is S.CANCELLED
    assert next_status(S.CANCELLED, E.APPROVED) is None
    assert next_status(S.PENDING, E.REFUNDED) is None


def test_every_state_name_matches_the_contract() -> None:
    assert [s.value for s in S] == [
        "created", "pending", "awaiting_deposit", "paid", "failed", "abandoned",
        "partially_cancelled", "cancelled", "needs_review"]
