"""Failed sign-ins and wrong bearer tokens are throttled per source address (audit item 8).

The clock is injected: a window passes without sleeping.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.throttle import FailureThrottle, source_key
from app.main import create_app
from tests.support import client_for, make_settings, running

OPS = "ops-token-for-tests"
SHOP = "shop-token-for-tests"
LIMIT, WINDOW = 3, 60.0
ATTACKER, NEIGHBOUR = "198.51.100.7", "198.51.100.8"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def throttled_app(database_url: str, clock: Clock, **settings: Any
                        ) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, auth_failure_limit=LIMIT,
                                   auth_failure_window_seconds=WINDOW, **settings))
    async with running(app):
        app.state.gateway.auth_failures.clock = clock
        yield app


@pytest.fixture
async def app(database_url: str, engine: AsyncEngine, clock: Clock) -> AsyncIterator[FastAPI]:
    async for running_app in throttled_app(database_url, clock):
        yield running_app


async def get_orders(app: FastAPI, peer: str, token: str, **headers: str) -> httpx.Response:
    async with client_for(app, peer=peer, authorization=f"Bearer {token}", **headers) as c:
        return await c.get("/orders", params={"limit": 1})


def assert_throttled(r: httpx.Response, wait: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == str(wait)
    error = r.json()["error"]  # the project's one error shape
    assert error["type"] == "too_many_requests" and error["retry_after"] == wait
    assert f"try again in {wait} s" in error["message"]


# -- over HTTP --------------------------------------------------------------------------------

async def test_wrong_tokens_from_one_source_get_429_until_the_window_passes(
    app: FastAPI, clock: Clock
) -> None:
    for _ in range(LIMIT):
        assert (await get_orders(app, ATTACKER, "guess")).status_code == 403
        clock.now += 1
    # Failures at t=0, 1 and 2; now t=3: free again 60 s after the first.
    assert_throttled(await get_orders(app, ATTACKER, "guess"), 57)
    # Blocked means blocked: not even the right token is compared, so guessing on while
    # blocked can't tell a right guess from a wrong one.
    assert_throttled(await get_orders(app, ATTACKER, OPS), 57)

    clock.now += 56
    assert_throttled(await get_orders(app, ATTACKER, OPS), 1)
    clock.now += 1  # the first failure left the window
    assert (await get_orders(app, ATTACKER, OPS)).status_code == 200


async def test_another_source_is_not_blocked_and_correct_tokens_still_work_for_others(
    app: FastAPI, clock: Clock
) -> None:
    for _ in range(LIMIT):
        await get_orders(app, ATTACKER, "guess")
    assert_throttled(await get_orders(app, ATTACKER, SHOP), 60)

    assert (await get_orders(app, NEIGHBOUR, OPS)).status_code == 200
    assert (await get_orders(app, NEIGHBOUR, SHOP)).status_code == 200
    assert (await get_orders(app, NEIGHBOUR, "typo")).status_code == 403  # counted, not blocked
    async with client_for(app, peer=NEIGHBOUR, authorization=f"Bearer {SHOP}") as shop:
        assert (await shop.post("/orders", json={})).status_code == 422  # got past auth
    # Their successes reset nothing of the attacker's.
    assert_throttled(await get_orders(app, ATTACKER, OPS), 60)


async def test_a_success_does_not_reset_a_sources_own_failures(
    app: FastAPI, clock: Clock
) -> None:
    """Else the shop, holding its own token, could interleave guesses at the ops token."""
    for _ in range(LIMIT - 1):
        assert (await get_orders(app, NEIGHBOUR, "ops-guess")).status_code == 403
        assert (await get_orders(app, NEIGHBOUR, SHOP)).status_code == 200
    assert (await get_orders(app, NEIGHBOUR, "ops-guess")).status_code == 403
    assert_throttled(await get_orders(app, NEIGHBOUR, SHOP), 60)


async def test_only_wrong_tokens_count_not_missing_ones_or_a_valid_token_on_the_wrong_route(
    app: FastAPI,
) -> None:
    async with client_for(app, peer=ATTACKER) as anonymous, \
            client_for(app, peer=ATTACKER, authorization=f"Bearer {SHOP}") as shop:
        for _ in range(LIMIT * 3):
            assert (await anonymous.get("/orders")).status_code == 401
            assert (await shop.post("/webhooks/events/replay-dead")).status_code == 403
    assert (await get_orders(app, ATTACKER, OPS)).status_code == 200


async def test_failed_sign_ins_on_the_ops_page_are_throttled_with_the_bearer_failures(
    app: FastAPI, clock: Clock
) -> None:
    async with client_for(app, peer=ATTACKER) as browser, \
            client_for(app, peer=ATTACKER, authorization="Bearer guess") as curl:
        refused = await browser.post("/ops/login", data={"token": "guess-1"})
        assert refused.status_code == 403 and "not the ops token" in refused.text
        assert (await browser.post("/ops/login", data={"token": SHOP})).status_code == 403
        assert (await curl.get("/ops")).status_code == 403  # the ops page's bearer path
        clock.now += 10

        blocked = await browser.post("/ops/login", data={"token": OPS})
        assert_throttled(blocked, 50)
        assert "set-cookie" not in blocked.headers
        assert blocked.headers["content-security-policy"].startswith("default-src 'none'")
        assert_throttled(await curl.get("/ops"), 50)
    async with client_for(app, peer=NEIGHBOUR) as operator:
        assert (await operator.post("/ops/login", data={"token": OPS})).status_code == 303
        assert (await operator.get("/ops")).status_code == 200


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    database_url: str, engine: AsyncEngine, clock: Clock
) -> None:
    async for app in throttled_app(database_url, clock, trusted_proxies="127.0.0.5"):
        # Not a trusted proxy: a new X-Forwarded-For on every guess changes nothing.
        for n in range(LIMIT):
            forged = {"x-forwarded-for": f"203.0.113.{n}"}
            assert (await get_orders(app, ATTACKER, "guess", **forged)).status_code == 403
        assert_throttled(await get_orders(app, ATTACKER, OPS,
                                          **{"x-forwarded-for": "203.0.113.99"}), 60)
        # Behind the trusted proxy, each client it vouches for is counted on its own.
        for _ in range(LIMIT):
            r = await get_orders(app, "127.0.0.5", "guess", **{"x-forwarded-for": "192.0.2.1"})
            assert r.status_code == 403
        assert_throttled(await get_orders(app, "127.0.0.5", OPS,
                                          **{"x-forwarded-for": "192.0.2.1"}), 60)
        ok = await get_orders(app, "127.0.0.5", OPS, **{"x-forwarded-for": "192.0.2.2"})
        assert ok.status_code == 200


# -- the limiter itself ---------------------------------------------------------------------

def test_failures_count_within_a_sliding_window(clock: Clock) -> None:
    throttle = FailureThrottle(3, 60, clock=clock)
    assert throttle.failed("a") is False and throttle.retry_after("a") is None
    clock.now += 30
    assert throttle.failed("a") is False
    clock.now += 31  # the first one is out of the window now
    assert throttle.failed("a") is False and throttle.retry_after("a") is None
    assert throttle.failed("a") is True  # three within 60 s: this one blocks
    assert throttle.retry_after("a") == 29  # until the oldest of the three is 60 s old
    assert throttle.retry_after("b") is None
    clock.now += 29
    assert throttle.retry_after("a") is None


def test_memory_is_bounded_by_the_number_of_sources_tracked(clock: Clock) -> None:
    throttle = FailureThrottle(2, 60, max_sources=100, clock=clock)
    for _ in range(2):
        throttle.failed("blocked")
    for n in range(10_000):  # a crowd of sources, one failure each
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
        assert len(throttle) <= 100
    assert len(throttle) == 100
    assert throttle.retry_after("blocked") is None  # the least recently failing went first
    assert "10.0.39.15" in throttle  # the most recent stay

    clock.now += 61  # and sources whose failures have all expired are let go
    throttle.failed("late")
    assert len(throttle) == 1


def test_an_ipv6_source_is_its_slash_64() -> None:
    """A single IPv6 host usually holds a whole /64: counting per address would not count."""
    one = source_key(ipaddress.ip_address("2001:db8:1:2::1"))
    assert one == source_key(ipaddress.ip_address("2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert one != source_key(ipaddress.ip_address("2001:db8:1:3::1"))
    assert source_key(ipaddress.ip_address("198.51.100.7")) == "198.51.100.7"
    assert source_key(None) == "unknown"
