"""The shop's example receiver (examples/webhook_receiver.py) as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.webhooks.signing import headers_for
from harness.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_the_example_receiver_verifies_dedupes_and_refuses_forgeries(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "webhook_receiver.py"), "--port", str(port)],
        cwd=tmp_path, env={**os.environ, "SHOP_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/hooks/payletter"
    try:
        body = json.dumps({"id": "evt_1", "type": "order.paid",
                           "data": {"order_no": "A1", "status": "paid"}}).encode()
        for _ in range(100):
            try:
                first = httpx.post(url, content=body, headers=headers_for(SECRET, "evt_1", body))
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert first.status_code == 204
        again = httpx.post(url, content=body, headers=headers_for(SECRET, "evt_1", body))
        assert again.status_code == 204
        forged = httpx.post(url, content=body.replace(b"paid", b"PAID"),
                            headers=headers_for(SECRET, "evt_1", body))
        assert forged.status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert output.count("order.paid: order A1 is paid") == 1  # the repeat was a no-op
