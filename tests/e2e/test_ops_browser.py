"""The ops page in headless Chromium against a real service process: sign in, filter, open an
order and read its timeline, refund behind the confirmation, and a hostile order rendered
inert. Screenshots go to test-artifacts/ (ops-login.png, ops-list.png, ops-order.png, …)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.db import create_engine, create_sessionmaker, utcnow
from app.models import Order, OrderTransition
from harness.processes import OPS_TOKEN, Process
from tests.e2e.browser import chromium
from tests.e2e.stack import ARTIFACTS, Stack, sqlite_stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCRIPT = "<script>window.__xss=1</script>"
ATTRIBUTE = "\"><img src=x onerror=\"window.__xss=2\"><script>window.__xss=3</script>"


@pytest.fixture
def driver() -> Iterator[Any]:
    with chromium((1360, 1000)) as browser:
        yield browser


def screenshot(driver: Any, name: str, *, full_page: bool = True) -> Path:
    """The page, as tall as its content (up to 3000 px), saved under test-artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if full_page:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1360, min(max(int(height) + 40, 700), 3000))
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 0
    return path


@pytest.fixture
async def ops_stack(simulator_process: Process, log_dir: Path, tmp_path: Path
                    ) -> AsyncIterator[tuple[Stack, str]]:
    """The service on a fresh SQLite file, as `make run` starts it; and that file's URL."""
    database = tmp_path / "ops.db"
    async with sqlite_stack(simulator_process, log_dir, database, "service-ops-page") as stack:
        yield stack, f"sqlite+aiosqlite:///{database}"


async def paid(stack: Stack, **overrides: Any) -> dict[str, Any]:
    order = await stack.create_order(**overrides)
    result = await stack.window_action(order["token"], "approve")
    await stack.browser_return(result)
    await stack.wait_acknowledged(order["order_no"])
    return order


async def store_hostile_order(database_url: str) -> str:
    """An order as no API would take it: script in product_name, custom_parameter, reason."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            now = utcnow()
            order = Order(order_no="XSS0001", client_id="pay_test", pgcode="creditcard",
                          status="needs_review", amount=4200, taxfree_amount=0, tax_amount=382,
                          cancelled_amount=0, product_name=SCRIPT, custom_parameter=ATTRIBUTE,
                          user_id="mallory", user_name="<b>x</b>", request_options={},
                          payment_details={"note": SCRIPT}, review_reason=ATTRIBUTE,
                          created_at=now, updated_at=now)
            session.add(order)
            await session.flush()
            session.add(OrderTransition(order_id=order.id, from_status="pending",
                                        to_status="needs_review", event="mismatch",
                                        reason=SCRIPT, created_at=now))
            await session.commit()
    finally:
        await engine.dispose()
    return "XSS0001"


async def test_an_operator_signs_in_filters_opens_an_order_and_refunds_it(
    ops_stack: tuple[Stack, str], driver: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    stack, _ = ops_stack
    alice = await paid(stack, user_id="alice", amount=15000, product_name="Coffee beans 1kg")
    await paid(stack, user_id="carol", amount=8000, product_name="Green tea", pgcode="kakaopay")
    await stack.create_order(user_id="bob", amount=3000, product_name="Mug")  # stays pending

    d = driver
    wait = WebDriverWait(d, 20)
    base = stack.service.url
    d.get(f"{base}/ops")
    token = wait.until(ec.presence_of_element_located((By.ID, "token")))
    assert "/ops/login" in d.current_url
    screenshot(d, "ops-login.png", full_page=False)
    token.send_keys("not the token")
    d.find_element(By.ID, "sign-in").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "error"), "not the ops token"))
    d.find_element(By.ID, "token").send_keys(OPS_TOKEN)
    d.find_element(By.ID, "sign-in").click()
    wait.until(ec.presence_of_element_located((By.ID, "orders")))
    assert d.find_element(By.ID, "total-count").text == "3"
    screenshot(d, "ops-list.png")

    # Filter: paid orders of one buyer.
    Select(d.find_element(By.ID, "f-status")).select_by_value("paid")
    d.find_element(By.ID, "f-user_id").send_keys("alice")
    d.find_element(By.ID, "filter").click()
    wait.until(lambda _: "user_id=alice" in d.current_url)
    rows = d.find_elements(By.CSS_SELECTOR, "tr.order-row")
    assert [r.get_attribute("data-order-no") for r in rows] == [alice["order_no"]]
    assert d.find_element(By.ID, "total-count").text == "1"
    screenshot(d, "ops-list-filtered.png")

    # Open it: the timeline, oldest first.
    rows[0].find_element(By.CSS_SELECTOR, "a.order-link").click()
    wait.until(ec.presence_of_element_located((By.ID, "timeline")))
    assert d.find_element(By.ID, "field-status").text == "paid"
    kinds = [r.get_attribute("class") for r in
             d.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")]
    assert kinds[0] == "timeline-created"
    assert kinds.count("timeline-delivery") == 2 and kinds.count("timeline-state") == 2
    timeline = d.find_element(By.ID, "timeline").text
    assert "created → pending" in timeline and "pending → paid" in timeline
    assert "callback" in timeline and "return" in timeline and "KST" in timeline
    screenshot(d, "ops-order.png")

    # Refund part of it: asked first, then done.
    d.set_window_size(1360, 1000)
    d.find_element(By.ID, "amount").send_keys("5000")
    d.find_element(By.ID, "cancel").click()
    confirm = wait.until(ec.element_to_be_clickable((By.ID, "confirm")))
    assert confirm.text == "Yes, refund 5,000 won"
    screenshot(d, "ops-refund-confirm.png", full_page=False)
    assert (await stack.order(alice["order_no"]))["cancelled_amount"] == 0
    confirm.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "refund-status"), "Refunded"))
    screenshot(d, "ops-refund-done.png", full_page=False)
    stored = await stack.order(alice["order_no"])
    assert stored["status"] == "partially_cancelled" and stored["cancelled_amount"] == 5000

    # The chart and the sign-out.
    d.find_element(By.ID, "nav-totals").click()
    wait.until(ec.presence_of_element_located((By.ID, "chart")))
    assert len(d.find_elements(By.CSS_SELECTOR, "#chart rect.bar")) == 2  # two methods today
    screenshot(d, "ops-totals.png")
    d.find_element(By.ID, "sign-out").click()
    wait.until(ec.presence_of_element_located((By.ID, "token")))
    d.get(f"{base}/ops")
    assert "/ops/login" in d.current_url


async def test_an_order_with_script_in_its_fields_renders_inert(
    ops_stack: tuple[Stack, str], driver: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    stack, database_url = ops_stack
    # Through the API as well: custom_parameter takes anything; product_name refuses < >.
    api_order = await stack.create_order(user_id="eve", custom_parameter=SCRIPT + ATTRIBUTE)
    order_no = await store_hostile_order(database_url)

    d = driver
    wait = WebDriverWait(d, 20)
    d.get(f"{stack.service.url}/ops/login")
    wait.until(ec.presence_of_element_located((By.ID, "token"))).send_keys(OPS_TOKEN)
    d.find_element(By.ID, "sign-in").click()
    wait.until(ec.presence_of_element_located((By.ID, "orders")))
    assert d.execute_script("return window.__xss === undefined")
    row = d.find_element(By.CSS_SELECTOR, f"tr.order-row[data-order-no='{order_no}']")
    assert SCRIPT in row.text  # shown as text, literally
    assert not d.find_elements(By.CSS_SELECTOR, "main script, main img")

    for number in (order_no, api_order["order_no"]):
        d.get(f"{stack.service.url}/ops/orders/{number}")
        field = wait.until(ec.presence_of_element_located((By.ID, "field-custom_parameter")))
        assert d.execute_script("return window.__xss === undefined")
        assert ATTRIBUTE in field.text
        assert not d.find_elements(By.CSS_SELECTOR, "main script, main img")
    d.get(f"{stack.service.url}/ops/orders/{order_no}")
    wait.until(ec.presence_of_element_located((By.ID, "timeline")))
    assert d.find_element(By.ID, "field-product_name").text == SCRIPT
    assert SCRIPT in d.find_element(By.ID, "timeline").text
    assert ATTRIBUTE in d.find_element(By.ID, "review-reason").text
    assert d.execute_script("return window.__xss === undefined")
    screenshot(d, "ops-order-xss.png")

    d.get(f"{stack.service.url}/ops/review")
    wait.until(ec.presence_of_element_located((By.ID, "orders")))
    assert d.execute_script("return window.__xss === undefined")
    assert ATTRIBUTE in d.find_element(By.ID, "orders").text
