"""Delivery permutations (issue 8, item 5): however returns, callbacks, duplicates,
cancel-page visits, status syncs and sweeps interleave, the order ends where a sequential
model says it must.

The model is the state table of app/orders/states.py (`next_status`, not a copy of it) plus
the rules the payment service adds on top (README, "What it guarantees"): a result
whose tid is already on a paid order is a duplicate; a verified result that contradicts the
order (another amount, a second tid) is a MISMATCH; a return is applied only when Payletter's
payments/status names its tid; a sync asks Payletter only about an unsettled order and
expires it only while it is still waiting for the buyer.

Each example makes one order (its window issued long ago, so it is due for expiry), fixes
what Payletter knows (paid with tid T1, or no payment), and runs a drawn sequence of events:
one at a time, where the real final state must equal the model's; then the same events in
concurrent groups (asyncio.gather) on a second order, whose final state must be the model's
for SOME interleaving of each group (a sweep is two steps there: it picks due orders, then
syncs each one). Compared: status, tid, how many state changes (each with its one outbox
event) and how many of them were into `paid` (never more than one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.models import Order
from app.orders.states import OrderEvent, OrderStatus, next_status
from app.payments.sweeper import sweep_once
from tests.factories import callback_body, create_order, path_of, return_fields, sent_request
from tests.fake_payletter import FakePayletter
from tests.reliability.fuzz_support import budget
from tests.support import scalar

S = OrderStatus


class Ev(StrEnum):
    RETURN_OK = "return-ok"  # the buyer's browser brings the signed, verified success
    RETURN_FAIL = "return-fail"  # the buyer's browser brings a failure (signed link)
    CALLBACK = "callback"  # Payletter's callback, payhash verified
    CALLBACK_DUP = "callback-dup"  # the same callback again (Payletter redelivers)
    MISMATCH = "mismatch"  # a verified callback for another tid and amount
    CANCEL_PAGE = "cancel-page"  # the buyer presses cancel (signed link)
    SYNC = "sync"  # an operator's POST /orders/{no}/sync
    SWEEP = "sweep"  # one pass of the background sweeper


DELIVERIES = {Ev.RETURN_OK, Ev.RETURN_FAIL, Ev.CALLBACK, Ev.CALLBACK_DUP, Ev.MISMATCH,
              Ev.CANCEL_PAGE}


# ---- the sequential model -------------------------------------------------------------

T1, T2 = "T1", "T2"  # the payment's tid, and another payment's
AFTER_PAYMENT = {S.PAID, S.PARTIALLY_CANCELLED, S.CANCELLED}
UNSETTLED = {S.CREATED, S.PENDING, S.AWAITING_DEPOSIT, S.FAILED, S.ABANDONED}
SWEPT = {S.CREATED, S.PENDING, S.AWAITING_DEPOSIT}
WAITING_FOR_BUYER = {S.CREATED, S.PENDING}


@dataclass(frozen=True)
class State:
    status: OrderStatus = S.PENDING
    tid: str | None = None
    changes: int = 0  # state changes since the window was issued
    paid: int = 0  # of which into `paid`

    def move(self, event: OrderEvent, *, tid: str | None = None) -> State:
        target = next_status(self.status, event)
        if target is None:
            return self
        return State(target, tid or self.tid, self.changes + 1,
                     self.paid + (target is S.PAID))

    def result(self, tid: str, *, matches: bool = True) -> State:
        """A verified success for this order (callback, return, or Payletter's status)."""
        if self.tid == tid and self.status in AFTER_PAYMENT:
            return self  # a duplicate
        if not matches or (self.tid is not None and self.tid != tid):
            return self.move(OrderEvent.MISMATCH)
        return self.move(OrderEvent.APPROVED, tid=tid)

    def sync(self, payletter_paid: bool) -> State:
        if payletter_paid:
            return self.result(T1)
        if self.status in WAITING_FOR_BUYER:
            return self.move(OrderEvent.EXPIRED)
        return self


def model(state: State, event: Ev, payletter_paid: bool) -> State:
    if event in (Ev.CALLBACK, Ev.CALLBACK_DUP):
        return state.result(T1)
    if event is Ev.RETURN_OK:
        # A return is believed once Payletter's status names its tid (or the order has it).
        already = state.tid == T1 and state.status in AFTER_PAYMENT
        return state.result(T1) if payletter_paid or already else state
    if event is Ev.MISMATCH:
        return state.result(T2, matches=False)
    if event is Ev.RETURN_FAIL:
        return state.move(OrderEvent.DECLINED)
    if event is Ev.CANCEL_PAGE:
        return state.move(OrderEvent.BUYER_CANCELLED)
    if event is Ev.SYNC:
        return state.sync(payletter_paid) if state.status in UNSETTLED else state
    assert event is Ev.SWEEP
    return state.sync(payletter_paid) if state.status in SWEPT else state


# A sweep is two steps, and others may come between them: it picks the orders that are
# due (still waiting) in one read, then syncs each in a transaction of its own, where a
# payment Payletter confirms wins over whatever the order became meanwhile (as an
# operator's sync does). Every other event is one atomic step.
Step = tuple[Ev, str, int]  # (event, "do" | "select" | "sync", its place in the group)


def _chains(group: list[Ev]) -> list[list[Step]]:
    return [[(event, "select", i), (event, "sync", i)] if event is Ev.SWEEP
            else [(event, "do", i)] for i, event in enumerate(group)]


def _interleavings(chains: list[list[Step]]) -> Iterator[list[Step]]:
    """Every order of the steps that keeps each chain's own order."""
    if not any(chains):
        yield []
        return
    for k, chain in enumerate(chains):
        if chain:
            rest = [*chains[:k], chain[1:], *chains[k + 1:]]
            for tail in _interleavings(rest):
                yield [chain[0], *tail]


def _run(state: State, steps: list[Step], payletter_paid: bool) -> State:
    selected: set[int] = set()
    for event, phase, place in steps:
        if phase == "select":
            if state.status in SWEPT:
                selected.add(place)
        elif phase == "sync":
            if place in selected:
                state = state.sync(payletter_paid)
        else:
            state = model(state, event, payletter_paid)
    return state


def possible_ends(groups: list[list[Ev]], payletter_paid: bool) -> set[State]:
    """Final states of every run that does the groups in order, each group's events in
    any interleaving of their steps."""
    states = {State()}
    for group in groups:
        states = {_run(state, steps, payletter_paid)
                  for state in states for steps in _interleavings(_chains(group))}
    return states


def test_the_model_follows_the_state_table() -> None:
    """A few fixed points, so a model bug can't make the property vacuous."""
    assert possible_ends([[Ev.CALLBACK], [Ev.RETURN_OK]], False) == {
        State(S.PAID, T1, 1, 1)}
    assert possible_ends([[Ev.RETURN_FAIL], [Ev.CALLBACK]], False) == {
        State(S.PAID, T1, 2, 1)}
    assert possible_ends([[Ev.CANCEL_PAGE, Ev.RETURN_FAIL]], False) == {
        State(S.ABANDONED, None, 1, 0), State(S.FAILED, None, 1, 0)}
    assert possible_ends([[Ev.CALLBACK], [Ev.MISMATCH], [Ev.CALLBACK_DUP]], False) == {
        State(S.NEEDS_REVIEW, T1, 2, 1)}
    assert possible_ends([[Ev.SWEEP], [Ev.SYNC]], True) == {State(S.PAID, T1, 1, 1)}
    assert possible_ends([[Ev.RETURN_FAIL], [Ev.SWEEP]], True) == {State(S.FAILED, None, 1, 0)}
    assert possible_ends([[Ev.RETURN_FAIL], [Ev.SYNC]], True) == {State(S.PAID, T1, 2, 1)}
    assert possible_ends([[Ev.SYNC], [Ev.CALLBACK]], False) == {State(S.PAID, T1, 2, 1)}
    # The sweep picked the order while it waited; the decline came before its sync, which
    # found the payment: failed, then paid (found by the soak, and right: the money was taken).
    assert possible_ends([[Ev.RETURN_FAIL, Ev.SWEEP]], True) == {
        State(S.FAILED, None, 1, 0), State(S.PAID, T1, 1, 1), State(S.PAID, T1, 2, 1)}


# ---- scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    groups: list[list[Ev]]
    payletter_paid: bool

    @property
    def concurrent(self) -> bool:
        return any(len(group) > 1 for group in self.groups)

    @property
    def events(self) -> list[Ev]:
        return [event for group in self.groups for event in group]

    def one_by_one(self) -> Scenario:
        return Scenario([[event] for event in self.events], self.payletter_paid)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Events cut into groups of 1 to 4 that run concurrently (the sequential run of the
    same events is made from it: `Scenario.one_by_one`)."""
    events = draw(st.lists(st.sampled_from(list(Ev)), min_size=1, max_size=8), label="events")
    groups: list[list[Ev]] = []
    rest = list(events)
    while rest:
        size = draw(st.integers(1, min(4, len(rest))), label="group size")
        groups.append(rest[:size])
        rest = rest[size:]
    return Scenario(groups, draw(st.booleans(), label="payletter says paid"))


# ---- running one against the real app ----------------------------------------------------


@dataclass
class Actors:
    app: FastAPI
    shop: httpx.AsyncClient
    ops: httpx.AsyncClient
    payletter: httpx.AsyncClient
    browser: httpx.AsyncClient
    fake: FakePayletter
    engine: AsyncEngine


async def prepare(actors: Actors, scenario: Scenario) -> tuple[dict[str, Any], dict[str, str]]:
    order = await create_order(actors.shop)
    no = order["order_no"]
    # The window was issued long ago: a sync or sweep finding no payment expires the order.
    long_ago = utcnow() - timedelta(hours=2)
    async with actors.engine.begin() as conn:
        await conn.execute(update(Order).where(Order.order_no == no)
                           .values(created_at=long_ago, updated_at=long_ago))
    tid1, tid2 = f"tpay_test-{no}", f"tpay_test-{no}-2"
    if scenario.payletter_paid:
        actors.fake.statuses[no] = {"token": "1", "tid": tid1, "status_code": 4}
    sent = sent_request(actors.fake, no)
    return order, {"return": path_of(sent["return_url"]), "cancel": path_of(sent["cancel_url"]),
                   T1: tid1, T2: tid2}


def action(actors: Actors, order: dict[str, Any], links: dict[str, str], event: Ev
           ) -> Callable[[], Awaitable[Any]]:
    no = order["order_no"]
    if event in (Ev.CALLBACK, Ev.CALLBACK_DUP):
        return lambda: actors.payletter.post("/payletter/callback",
                                             json=callback_body(order, tid=links[T1]))
    if event is Ev.MISMATCH:
        body = callback_body(order, tid=links[T2], amount=order["amount"] + 1)
        return lambda: actors.payletter.post("/payletter/callback", json=body)
    if event is Ev.RETURN_OK:
        return lambda: actors.browser.post(links["return"],
                                           data=return_fields(order, tid=links[T1]))
    if event is Ev.RETURN_FAIL:
        declined = {"code": "1001", "message": "card declined", "order_no": no}
        return lambda: actors.browser.post(links["return"], data=declined)
    if event is Ev.CANCEL_PAGE:
        return lambda: actors.browser.get(links["cancel"])
    if event is Ev.SYNC:
        return lambda: actors.ops.post(f"/orders/{no}/sync")
    assert event is Ev.SWEEP
    return lambda: sweep_once(actors.app.state.gateway)


def check_answer(event: Ev, answer: Any, expected_after: State | None) -> None:
    if not isinstance(answer, httpx.Response):
        return  # a sweep
    assert answer.status_code < 500, (event, answer.status_code, answer.text)
    if event in (Ev.RETURN_OK, Ev.RETURN_FAIL, Ev.CANCEL_PAGE):
        assert answer.status_code == 303, (event, answer.text)
        assert "outcome=error" not in answer.headers["location"]
    if event in (Ev.CALLBACK, Ev.CALLBACK_DUP) and expected_after is not None:
        # code 0 exactly when the order is (now, or already) paid by this result
        paid = expected_after.status is S.PAID and expected_after.tid == T1
        assert (answer.json()["code"] == 0) == paid, (event, answer.json(), expected_after)
    if event is Ev.MISMATCH:
        assert answer.json()["code"] == 409


async def real_state(engine: AsyncEngine, order_no: str, tids: dict[str, str]
                     ) -> tuple[State, int, list[str]]:
    params = {"no": order_no}
    status = await scalar(engine, "SELECT status FROM orders WHERE order_no = :no", **params)
    tid = await scalar(engine, "SELECT tid FROM orders WHERE order_no = :no", **params)
    joined = "FROM order_transitions t JOIN orders o ON o.id = t.order_id WHERE o.order_no = :no"
    changes = await scalar(engine, f"SELECT count(*) {joined} AND t.event <> 'window_issued'",
                           **params)
    paid = await scalar(engine, f"SELECT count(*) {joined} AND t.to_status = 'paid'", **params)
    events = await scalar(engine, "SELECT count(*) FROM outbox_events WHERE order_no = :no",
                          **params)
    async with engine.connect() as conn:
        from sqlalchemy import text

        outcomes = [r[0] for r in await conn.execute(text(
            "SELECT outcome FROM deliveries WHERE order_no = :no"), params)]
    names = {v: k for k, v in tids.items() if k in (T1, T2)}
    return (State(S(status), names.get(tid, tid), int(changes), int(paid)), int(events),
            outcomes)


@budget(ci=25, full=600)
@given(scenario=scenarios())
async def test_any_interleaving_ends_where_the_sequential_model_says(
    scenario: Scenario, gateway_app: FastAPI, shop: httpx.AsyncClient, ops: httpx.AsyncClient,
    payletter_peer: httpx.AsyncClient, browser: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    """The drawn events one by one on one order, then in their concurrent groups on
    another: both must end where the model says."""
    actors = Actors(gateway_app, shop, ops, payletter_peer, browser, fake_payletter, engine)
    await run_and_compare(actors, scenario.one_by_one())
    if scenario.concurrent:
        await run_and_compare(actors, scenario)


async def run_and_compare(actors: Actors, scenario: Scenario) -> None:
    engine = actors.engine
    order, links = await prepare(actors, scenario)

    expected: State | None = State()
    for group in scenario.groups:
        calls = [action(actors, order, links, event) for event in group]
        answers = await asyncio.gather(*(call() for call in calls))
        if len(group) == 1 and expected is not None:
            expected = model(expected, group[0], scenario.payletter_paid)
        else:
            expected = None  # after a concurrent group, only the final set is known
        for event, answer in zip(group, answers, strict=True):
            check_answer(event, answer, expected)

    actual, outbox_events, outcomes = await real_state(engine, order["order_no"], links)
    ends = possible_ends(scenario.groups, scenario.payletter_paid)
    assert actual in ends, f"{scenario}: got {actual}, the model allows {ends}"
    assert actual.paid <= 1
    assert outbox_events == actual.changes  # one shop event per committed state change
    assert len(outcomes) == sum(event in DELIVERIES for event in scenario.events)
    assert "error" not in outcomes, outcomes
    if not scenario.concurrent:
        assert ends == {actual}
