"""The one place errors become HTTP answers: JSON with a clear reason, never a stack trace.

Deliveries from Payletter get Payletter's answer shape, and are recorded in a transaction
of their own when the one that was processing them failed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import AppError
from app.gateway import Gateway
from app.metrics import observe_delivery
from app.payments.endpoints import INBOUND_STATE, answer_for
from app.payments.service import UNAVAILABLE, Inbound, Outcome, record

log = logging.getLogger(__name__)

# Errors that mean "the database is not there right now", not "the request is wrong".
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, TimeoutError)


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, **extra}}


def app_error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers)


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return app_error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details[:5])
    body = error_body("validation_error", summary or "invalid request", details=details)
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body("http_error", str(exc.detail)), status_code=exc.status_code,
                        headers=exc.headers)


def refused_value(exc: Exception) -> bool:
    """PostgreSQL refused a value the request brought (SQLSTATE class 22, "data exception":
    a NUL character in text, a number out of range): bad input, not an outage."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


async def _database_error(request: Request, exc: Exception) -> Response:
    inbound: Inbound | None = getattr(request.state, INBOUND_STATE, None)
    if inbound is None and refused_value(exc):
        log.warning("database refused a value while serving %s: %s", request.url.path,
                    type(exc).__name__)
        return JSONResponse(error_body(
            "bad_request", "a value in this request can't be stored (a NUL character, or a "
            "number out of range)"), status_code=400)
    log.error("database unavailable while serving %s: %s", request.url.path,
              type(exc).__name__)
    if inbound is not None:
        return await _failed_delivery(request, inbound, "database unavailable; please redeliver")
    return JSONResponse(error_body("unavailable", "database unavailable; try again shortly"),
                        status_code=503, headers={"Retry-After": "5"})


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s", request.url.path)
    inbound: Inbound | None = getattr(request.state, INBOUND_STATE, None)
    if inbound is not None:
        return await _failed_delivery(request, inbound, "internal error; please redeliver")
    return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


async def _failed_delivery(request: Request, inbound: Inbound, message: str) -> Response:
    """Answer non-zero so Payletter redelivers, and keep the delivery on record if we can."""
    gateway: Gateway = request.app.state.gateway
    outcome = Outcome("error", "not_checked", UNAVAILABLE, message)
    try:
        async with gateway.sessionmaker() as session, session.begin():
            await record(session, inbound, outcome)
    except DATABASE_ERRORS as exc:
        log.error("could not record the %s delivery either: %s", inbound.kind,
                  type(exc).__name__)
    observe_delivery(inbound.kind, outcome.outcome, outcome.verification, 0.0)
    return answer_for(gateway, inbound, outcome)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
