"""A small HTTP/1.1 load generator: what bench/load.py uses when wrk is missing.

    python -m bench.loadgen URL --bodies FILE [--mode unique|cycle] [--connections 50]
        [--duration 15] [--header 'Authorization: Bearer …']

Like bench/bodies.lua: POSTs one line of FILE per request over `--connections` keep-alive
connections for `--duration` seconds (closed loop: each connection sends its next request
when the answer arrived); "unique" sends every line at most once and counts a start-over in
`wrapped`. Prints the same `BENCH_JSON {...}` line as the wrk script. Raw sockets and
asyncio (uvloop when installed), so the generator costs little next to the servers; run it
as its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Stats:
    latencies_us: list[int] = field(default_factory=list)
    status_errors: int = 0
    read_errors: int = 0
    connect_errors: int = 0
    timeouts: int = 0
    wrapped: int = 0
    sent: int = 0


class Bodies:
    def __init__(self, lines: list[bytes], mode: str) -> None:
        self.lines, self.mode, self.position = lines, mode, 0

    def next(self, stats: Stats) -> bytes:
        if self.position >= len(self.lines):
            self.position = 0
            stats.wrapped += 1
        line = self.lines[self.position]
        self.position += 1
        stats.sent += 1
        return line


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def connection(host: str, port: int, path: str, extra: bytes, bodies: Bodies,
                     deadline: float, answer_within: float, stats: Stats) -> None:
    prefix = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
              "Content-Type: application/json\r\n").encode() + extra
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                stats.connect_errors += 1
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        body = bodies.next(stats)
        started = time.perf_counter()
        writer.write(prefix + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        try:
            async with asyncio.timeout(answer_within):
                status = await read_response(reader)
        except TimeoutError:
            stats.timeouts += 1
            writer.close()
            writer = None
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError):
            stats.read_errors += 1
            writer.close()
            writer = None
            continue
        if time.monotonic() > deadline:
            break  # like wrk: an answer after the end doesn't count
        stats.latencies_us.append(int((time.perf_counter() - started) * 1e6))
        if status > 399:
            stats.status_errors += 1
    if writer is not None:
        writer.close()


def percentile(ordered: list[int], q: float) -> int:
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run(args: argparse.Namespace, lines: list[bytes]) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    extra = b"".join(f"{h}\r\n".encode() for h in args.header)
    bodies, stats = Bodies(lines, args.mode), Stats()
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(*(
        connection(host, port, url.path or "/", extra, bodies, deadline, args.timeout, stats)
        for _ in range(args.connections)))
    elapsed = time.monotonic() - started
    ordered = sorted(stats.latencies_us)
    return {
        "requests": len(ordered), "duration_us": int(elapsed * 1e6),
        "p50_us": percentile(ordered, 50), "p90_us": percentile(ordered, 90),
        "p99_us": percentile(ordered, 99), "max_us": ordered[-1] if ordered else 0,
        "mean_us": sum(ordered) / len(ordered) if ordered else 0.0,
        "errors": {"connect": stats.connect_errors, "read": stats.read_errors, "write": 0,
                   "status": stats.status_errors, "timeout": stats.timeouts},
        "wrapped": stats.wrapped, "sent": stats.sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--mode", choices=("unique", "cycle"), default="unique")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    with open(args.bodies, "rb") as handle:
        lines = [line.rstrip(b"\n") for line in handle if line.strip()]
    try:
        import uvloop  # uvicorn[standard] brings it
    except ImportError:
        result = asyncio.run(run(args, lines))
    else:
        result = uvloop.run(run(args, lines))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
