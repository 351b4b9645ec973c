"""A person's demo purchase in headless Chromium: shop page → payment window → result page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.processes import Process
from tests.e2e.browser import chromium
from tests.e2e.stack import ARTIFACTS, Stack, sqlite_stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def driver() -> Iterator[object]:
    with chromium((1000, 800)) as browser:
        yield browser


def screenshot(driver: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


@pytest.fixture
async def demo_stack(
    simulator_process: Process, log_dir: Path, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The service as `make run` starts it: PAYLETTER_ENV=sim on a fresh SQLite file."""
    async with sqlite_stack(simulator_process, log_dir, tmp_path / "demo.db",
                            "service-demo") as stack:
        yield stack


async def test_the_demo_purchase_ends_on_a_result_page_showing_paid(
    demo_stack: Stack, driver: object
) -> None:
    stack = demo_stack
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = driver
    wait = WebDriverWait(d, 20)  # type: ignore[arg-type]
    d.get(f"{stack.service.url}/demo")  # type: ignore[attr-defined]
    # The shop's catalogue decides the price; its backend signs it into an intent.
    Select(d.find_element(By.ID, "product")).select_by_value("mug")  # type: ignore[attr-defined]
    Select(d.find_element(By.ID, "pgcode")).select_by_value("creditcard")  # type: ignore[attr-defined]
    d.find_element(By.ID, "pay").click()  # type: ignore[attr-defined]

    approve = wait.until(ec.element_to_be_clickable((By.ID, "approve")))
    assert stack.simulator.url in d.current_url  # type: ignore[attr-defined]
    screenshot(d, "demo-payment-window.png")
    approve.click()

    status = wait.until(ec.presence_of_element_located((By.ID, "order-status")))
    wait.until(lambda _: status.text == "paid")
    order_no = d.find_element(By.ID, "order-no").text  # type: ignore[attr-defined]
    shot = screenshot(d, "demo-result-paid.png")
    assert shot.stat().st_size > 0

    stored = await stack.order(order_no)
    assert stored["status"] == "paid"
    assert stored["amount"] == 12300
    await stack.wait_acknowledged(order_no)
    assert {x["kind"] for x in (await stack.order(order_no))["deliveries"]} == {
        "return", "callback"}


async def test_a_virtual_account_demo_purchase_is_paid_after_the_simulated_deposit(
    demo_stack: Stack, driver: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = driver
    wait = WebDriverWait(d, 20)  # type: ignore[arg-type]
    d.get(f"{demo_stack.service.url}/demo")  # type: ignore[attr-defined]
    Select(d.find_element(By.ID, "pgcode")).select_by_value("virtualaccount")  # type: ignore[attr-defined]
    d.find_element(By.ID, "pay").click()  # type: ignore[attr-defined]
    wait.until(ec.element_to_be_clickable((By.ID, "approve"))).click()
    status = wait.until(ec.presence_of_element_located((By.ID, "order-status")))
    assert status.text == "awaiting_deposit"
    d.find_element(By.ID, "deposit").click()  # type: ignore[attr-defined]
    wait.until(ec.staleness_of(status))
    wait.until(ec.text_to_be_present_in_element((By.ID, "order-status"), "paid"))
    screenshot(d, "demo-virtual-account-paid.png")
    order_no = d.find_element(By.ID, "order-no").text  # type: ignore[attr-defined]
    assert (await demo_stack.order(order_no))["status"] == "paid"
