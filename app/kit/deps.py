"""Dependencies shared by the routers: the gateway, the request's session, who is calling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import session_scope
from app.errors import Forbidden, InvalidRequest, TooManyRequests, Unauthorized
from app.gateway import Gateway
from app.kit.idempotency import Done, Result
from app.kit.net import IPAddress, client_address
from app.kit.security import token_in
from app.kit.throttle import source_key
from app.settings import split_tokens

log = logging.getLogger(__name__)

Role = Literal["shop", "ops"]


async def get_gateway(request: Request) -> Gateway:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hop on every request for an attribute read.
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_session(gateway: GatewayDep) -> AsyncIterator[AsyncSession]:
    async with session_scope(gateway.sessionmaker) as session:
        yield session


# scope="function": commit before the response is built, so a failed commit becomes an
# error answer instead of a "code 0" that was already on its way to Payletter.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str:
    """The request's bearer token; 401 without one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


def caller_address(request: Request, gateway: Gateway) -> IPAddress | None:
    """The caller as the socket peer and TRUSTED_PROXIES decide (app/kit/net.py)."""
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.getlist("x-forwarded-for"),
                          gateway.settings.trusted_proxy_networks)


def refuse_if_throttled(request: Request, gateway: Gateway) -> str:
    """The caller's key in the failure count; 429 while it has failed too often.

    Called before a token is compared: a blocked source learns nothing from guessing on.
    """
    source = source_key(caller_address(request, gateway))
    wait = gateway.auth_failures.retry_after(source)
    if wait is not None:
        raise TooManyRequests(f"too many failed sign-ins or wrong tokens from this address; "
                              f"try again in {wait} s", retry_after=wait)
    return source


def count_failure(gateway: Gateway, source: str) -> None:
    if gateway.auth_failures.failed(source):
        settings = gateway.settings
        log.warning("%s failed sign-ins or wrong tokens from %s within %g s: refusing it "
                    "(429) until they age out", settings.auth_failure_limit, source,
                    settings.auth_failure_window_seconds)


def caller_role(request: Request, gateway: GatewayDep) -> Role:
    token = bearer_token(request)  # no token is no guess: not counted
    source = refuse_if_throttled(request, gateway)
    # Check both tokens every time, so timing doesn't tell which one was close.
    is_ops = token_in(token, gateway.settings.ops_tokens)
    is_shop = token_in(token, gateway.settings.shop_tokens)
    if is_ops:
        return "ops"
    if is_shop:
        return "shop"
    count_failure(gateway, source)
    raise Forbidden("token not accepted")


RoleDep = Annotated[Role, Depends(caller_role)]


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> str | None:
    """The Idempotency-Key header: a retry with the same key gets the same answer."""
    if key is not None and not key.strip():
        raise InvalidRequest("Idempotency-Key must not be empty", field="Idempotency-Key")
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


def answer(content: Any, *, status_code: int = 200) -> JSONResponse:
    """`content` as the JSON answer, encoded exactly as FastAPI encodes a route's return value.

    Routes declare their answer's model (`response_model=`) for the OpenAPI schema and
    return this: the model documents the answer without re-serialising it, which would
    rewrite timestamps (`+00:00` → `Z`) and drop fields the model doesn't list, drift that
    tests/test_openapi_contract.py is there to catch.
    """
    return JSONResponse(jsonable_encoder(content), status_code=status_code)


def respond(result: Result, *, status_code: int = 201) -> JSONResponse:
    """A service's Done/Failed as the answer (the same one again to a replayed request)."""
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if isinstance(result, Done):
        return JSONResponse(result.view, status_code=status_code, headers=headers or None)
    error = result.error
    return JSONResponse(error.to_body(), status_code=error.status_code,
                        headers={**error.headers, **headers} or None)


def require_shop(role: RoleDep) -> Role:
    if role != "shop":
        raise Forbidden("this endpoint takes the shop token")
    return role


def require_reader(role: RoleDep) -> Role:
    return role  # both the shop and operators may read orders


def require_ops(role: RoleDep) -> Role:
    if role != "ops":
        raise Forbidden("this endpoint takes the ops token")
    return role


async def order_creator(request: Request, gateway: GatewayDep) -> Role | None:
    """POST /orders: the shop with its token, or anyone holding a signed order intent.

    A request with an Authorization header must carry the shop token. Without one, only a
    body with an `intent` may go on (the intent's signature is checked by the service).
    """
    if request.headers.get("authorization"):
        return require_shop(caller_role(request, gateway))
    try:
        body = await request.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "intent" in body:
        return None
    raise Unauthorized("missing bearer token (a shop's frontend posts a signed order intent)")


async def metrics_reader(request: Request, gateway: GatewayDep) -> None:
    """/metrics: anyone, unless METRICS_TOKEN is set; then that bearer token (401 / 403)."""
    configured = gateway.settings.metrics_token
    accepted = split_tokens(configured.get_secret_value()) if configured else ()
    if accepted and not token_in(bearer_token(request), accepted):
        raise Forbidden("token not accepted")


ShopDep = Annotated[Role, Depends(require_shop)]
OrderCreatorDep = Annotated[Role | None, Depends(order_creator)]
ReaderDep = Annotated[Role, Depends(require_reader)]
OpsDep = Annotated[Role, Depends(require_ops)]

# A row id in a path: a positive 64-bit integer (larger ones can't be bound to a query:
# SQLite raises OverflowError, PostgreSQL a data error), so out of range is a 422.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
