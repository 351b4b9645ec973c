"""A shop-side webhook receiver: verify, dedupe by webhook-id, answer 2xx fast.

    SHOP_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 9000

then run the gateway with SHOP_WEBHOOK_URL=http://127.0.0.1:9000/hooks/payletter.
Only the standard library and `app/webhooks/signing.py` (copy that file into your project).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.webhooks.signing import WebhookVerificationError, verify

SECRET = os.environ.get("SHOP_WEBHOOK_SECRET", "")
DB = sqlite3.connect("webhooks-received.db", check_same_thread=False)
DB.execute("CREATE TABLE IF NOT EXISTS seen (webhook_id TEXT PRIMARY KEY, type TEXT, "
           "order_no TEXT, status TEXT, body TEXT)")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            verify(SECRET, dict(self.headers.items()), body)
        except WebhookVerificationError as exc:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(str(exc).encode())
            return
        event = json.loads(body)
        # Dedupe on webhook-id: a redelivery of an event you already have is a no-op.
        with DB:
            inserted = DB.execute(
                "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?, ?)",
                (self.headers["webhook-id"], event["type"], event["data"]["order_no"],
                 event["data"]["status"], body.decode()),
            ).rowcount
        if inserted:
            # Do the real work (fulfil the order, e-mail the buyer) in your own queue: answer
            # first, so the gateway doesn't time out and send it again.
            print(f"{event['type']}: order {event['data']['order_no']} is "
                  f"{event['data']['status']}", flush=True)
        self.send_response(204)
        self.end_headers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    if not SECRET.startswith("whsec_"):
        sys.exit("set SHOP_WEBHOOK_SECRET to the gateway's whsec_... secret")
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
