"""Request ids, access lines and JSON logs.

Every request gets an id (the caller's `X-Request-ID` when it is sane, else a new one),
echoed in the response header and attached to every log line written while it is served.
The access line is ours, not uvicorn's: it carries the request id and never the query
string (return and cancel URLs carry signatures; callbacks may carry anything).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HANDLER_NAME = "gateway"
access_log = logging.getLogger("app.access")


class RequestIdMiddleware:
    """Pure ASGI (no response buffering), so streaming answers stream.

    It runs on every request, so it allocates only what it must: one header scan, the id,
    one wrapped `send`; the access line's fields are built only when the line is written.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                request_id = given if _SANE_ID.match(given) else ""
                break
        request_id = request_id or new_request_id()
        header = (b"x-request-id", request_id.encode())
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers")
                if type(headers) is list:  # Starlette's own, built for this one answer
                    headers.append(header)
                else:
                    message = {**message, "headers": [*(headers or ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    "%s %s %s", scope["method"], scope["path"], status,
                    extra={"method": scope["method"], "path": scope["path"],
                           "status": status, "peer": client[0] if client else None,
                           "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
            REQUEST_ID.reset(token)


def new_request_id() -> str:
    """32 random hex digits (what uuid4().hex gave, without building a UUID)."""
    return os.urandom(16).hex()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "taskName",
    "color_message"}  # uvicorn's copy of the message with terminal colours


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # several workers write to one stream
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def uvicorn_log_config(log_format: str, level: str) -> dict[str, Any]:
    """uvicorn's `log_config`: every process it starts (the supervisor and each worker)
    writes through our one handler from its first line, so LOG_FORMAT=json holds for all."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"gateway": formatter},
        "handlers": {HANDLER_NAME: {"class": "logging.StreamHandler", "formatter": "gateway",
                                    "filters": ["request_id"]}},
        "root": {"handlers": [HANDLER_NAME], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error")},
    }


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """One handler on the root logger (idempotent); uvicorn's loggers flow into it."""
    root = logging.getLogger()
    for existing in list(root.handlers):  # e.g. a CLI's basicConfig: one line, one format
        if existing.get_name() != HANDLER_NAME and type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
    if not any(h.get_name() == HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler()
        handler.set_name(HANDLER_NAME)
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(JsonFormatter() if log_format == "json"
                             else logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Our access line replaces uvicorn's (it has the request id, and no query strings).
    logging.getLogger("uvicorn.access").disabled = True
