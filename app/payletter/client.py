"""Async client for Payletter's REST API (v1.0).

Retry policy, the part that protects money: read-only calls retry on transport errors and
5xx; calls that move money are resent only when the request surely never left this
process (the connection was never made), because a resend after a read timeout or a 5xx
could charge or cancel twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType, TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from app.payletter.errors import (
    PayletterConnectionError,
    PayletterTimeout,
    PayletterTransportError,
    UnexpectedResponseError,
    UnknownMerchantError,
    api_error_class_for_status,
)
from app.payletter.models import (
    AutopayRequest,
    AutopayResult,
    CancelRequest,
    CancelResult,
    CashReceiptRequest,
    MerchantCredentials,
    PartialCancelRequest,
    PaymentRequest,
    PaymentStatus,
    PaymentStatusQuery,
    PaymentWindow,
    ReceiptInfoQuery,
    ReceiptUrl,
    TransactionList,
    TransactionListQuery,
    build_request,
    revalidate,
    validate_tid,
)

logger = logging.getLogger(__name__)

ResponseHook = Callable[[str, int, float], None]
Sleep = Callable[[float], Awaitable[None]]
ResponseT = TypeVar("ResponseT", bound=BaseModel)

# These fail before a single byte of the request is written, so resending is safe.
_NEVER_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_MAX_BACKOFF_SECONDS = 2.0
_REDACTED = "[redacted]"


class KeyType(Enum):
    PAYMENT = "payment"
    SEARCH = "search"


@dataclass(frozen=True)
class Endpoint:
    """One API operation. ``path`` is the vendor's template, also the log/metrics label."""

    path: str
    method: Literal["GET", "POST"]
    key_type: KeyType
    read_only: bool


PAYMENTS_REQUEST = Endpoint("v1.0/payments/request", "POST", KeyType.PAYMENT, False)
PAYMENTS_AUTOPAY = Endpoint("v1.0/payments/autopay", "POST", KeyType.PAYMENT, False)
PAYMENTS_CANCEL = Endpoint("v1.0/payments/cancel", "POST", KeyType.PAYMENT, False)
PAYMENTS_CANCEL_PARTIAL = Endpoint("v1.0/payments/cancel/partial", "POST", KeyType.PAYMENT, False)
# Issuing a cash receipt is not read-only: it may register the receipt with the tax office.
CASHRECEIPT_ISSUE = Endpoint("v1.0/cashreceipt/issue/{tid}", "POST", KeyType.PAYMENT, False)
TRANSACTION_LIST = Endpoint("v1.0/payments/transaction/list", "GET", KeyType.SEARCH, True)
# A POST, but it only reads: safe to retry.
PAYMENTS_STATUS = Endpoint("v1.0/payments/status", "POST", KeyType.PAYMENT, True)
RECEIPT_INFO = Endpoint("v1.0/receipt/info/{tid}", "GET", KeyType.SEARCH, True)

ENDPOINTS: tuple[Endpoint, ...] = (
    PAYMENTS_REQUEST,
    PAYMENTS_AUTOPAY,
    PAYMENTS_CANCEL,
    PAYMENTS_CANCEL_PARTIAL,
    CASHRECEIPT_ISSUE,
    TRANSACTION_LIST,
    PAYMENTS_STATUS,
    RECEIPT_INFO,
)


def _path_with_tid(endpoint: Endpoint, tid: str) -> str:
    # safe="" so a "/" or "?" in a tid can't change which resource is addressed.
    return endpoint.path.replace("{tid}", quote(tid, safe=""))


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _error_fields(payload: object) -> tuple[int | None, str]:
    """(code, message) from either error shape: {code, message} or {error: {code, message}}."""
    if not isinstance(payload, dict):
        return None, ""
    source: object = payload
    nested = payload.get("error")
    if isinstance(nested, dict):
        source = nested
    elif isinstance(nested, str) and "message" not in payload:
        return _as_code(payload.get("code")), nested
    assert isinstance(source, dict)
    message = source.get("message")
    return _as_code(source.get("code")), message if isinstance(message, str) else ""


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _describe_validation(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in errors[:limit]
    ]
    if len(errors) > limit:
        parts.append(f"{len(errors) - limit} more")
    return "; ".join(parts)


class PayletterClient:
    def __init__(
        self,
        *,
        base_url: str,
        merchants: Mapping[str, MerchantCredentials],
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
        on_response: ResponseHook | None = None,
        sleep: Sleep | None = None,
        backoff_seconds: float = 0.2,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an absolute http(s) URL")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for client_id, credentials in merchants.items():
            # A mismatch would send one merchant's key with another's client_id.
            if client_id != credentials.client_id:
                raise ValueError(f"merchants[{client_id!r}] holds credentials for another id")
        self._base_url = base_url.rstrip("/") + "/"
        self._merchants: Mapping[str, MerchantCredentials] = MappingProxyType(dict(merchants))
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = httpx.Timeout(timeout)
        self._max_retries = max_retries
        self._on_response = on_response
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._backoff_seconds = backoff_seconds

    def __repr__(self) -> str:
        return f"PayletterClient(base_url={self._base_url!r}, merchants={sorted(self._merchants)})"

    @property
    def base_url(self) -> str:
        return self._base_url

    def credentials_for(self, client_id: str) -> MerchantCredentials:
        """The merchant's credentials (e.g. for payhash checks); UnknownMerchantError if none."""
        credentials = self._merchants.get(client_id)
        if credentials is None:
            raise UnknownMerchantError(client_id)
        return credentials

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> PayletterClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the nine operations -----------------------------------------------------------

    async def request_payment(self, req: PaymentRequest) -> PaymentWindow:
        req = revalidate(req)
        return await self._call(PAYMENTS_REQUEST, req.client_id, PaymentWindow, body=req.to_wire())

    async def request_autopay_registration(self, req: PaymentRequest) -> PaymentWindow:
        """First payment that issues a billkey (amount 0: billkey only, if contracted)."""
        req = revalidate(req, autopay_flag="Y")
        return await self._call(PAYMENTS_REQUEST, req.client_id, PaymentWindow, body=req.to_wire())

    async def autopay(self, req: AutopayRequest) -> AutopayResult:
        req = revalidate(req)
        return await self._call(
            PAYMENTS_AUTOPAY,
            req.client_id,
            AutopayResult,
            body=req.to_wire(),
            extra_secrets=(req.billkey,),
        )

    async def cancel(self, req: CancelRequest) -> CancelResult:
        req = revalidate(req)
        return await self._call(PAYMENTS_CANCEL, req.client_id, CancelResult, body=req.to_wire())

    async def cancel_partial(self, req: PartialCancelRequest) -> CancelResult:
        req = revalidate(req)
        return await self._call(
            PAYMENTS_CANCEL_PARTIAL, req.client_id, CancelResult, body=req.to_wire()
        )

    async def issue_cash_receipt(self, tid: str, req: CashReceiptRequest) -> ReceiptUrl:
        tid = validate_tid(tid)
        req = revalidate(req)
        return await self._call(
            CASHRECEIPT_ISSUE,
            req.client_id,
            ReceiptUrl,
            path=_path_with_tid(CASHRECEIPT_ISSUE, tid),
            body=req.to_wire(),
        )

    async def transaction_list(self, query: TransactionListQuery) -> TransactionList:
        query = revalidate(query)
        return await self._call(
            TRANSACTION_LIST, query.client_id, TransactionList, params=query.to_query()
        )

    async def payment_status(self, client_id: str, order_no: str) -> PaymentStatus:
        query = build_request(PaymentStatusQuery, client_id=client_id, order_no=order_no)
        return await self._call(
            PAYMENTS_STATUS, query.client_id, PaymentStatus, body=query.to_wire()
        )

    async def receipt_info(self, client_id: str, tid: str) -> ReceiptUrl:
        query = build_request(ReceiptInfoQuery, client_id=client_id, tid=tid)
        return await self._call(
            RECEIPT_INFO,
            query.client_id,
            ReceiptUrl,
            path=_path_with_tid(RECEIPT_INFO, query.tid),
            params={"client_id": query.client_id},
        )

    # --- plumbing ------------------------------------------------------------------------

    async def _call(
        self,
        endpoint: Endpoint,
        client_id: str,
        model: type[ResponseT],
        *,
        path: str | None = None,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        extra_secrets: Sequence[SecretStr] = (),
    ) -> ResponseT:
        credentials = self.credentials_for(client_id)
        key = (
            credentials.payment_key
            if endpoint.key_type is KeyType.PAYMENT
            else credentials.search_key
        )
        headers = {
            "Authorization": f"PLKEY {key.get_secret_value()}",
            "Accept": "application/json",
        }
        if endpoint.method == "POST":
            headers["Content-Type"] = "application/json"
        url = self._base_url + (path or endpoint.path)
        response = await self._send(endpoint, url, headers, body, params)
        secrets = [
            credentials.payment_key.get_secret_value(),
            credentials.search_key.get_secret_value(),
            *(secret.get_secret_value() for secret in extra_secrets),
        ]
        return self._parse(endpoint, response, model, secrets)

    async def _send(
        self,
        endpoint: Endpoint,
        url: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    endpoint.method,
                    url,
                    headers=headers,
                    json=body,
                    params=params,
                    timeout=self._timeout,
                )
            except httpx.RequestError as exc:
                self._observe(endpoint, 0, time.perf_counter() - started, attempt, exc)
                never_sent = isinstance(exc, _NEVER_SENT)
                if attempt <= self._max_retries and (endpoint.read_only or never_sent):
                    await self._sleep(self._backoff(attempt))
                    continue
                raise self._transport_error(endpoint, exc, never_sent=never_sent) from exc
            self._observe(endpoint, response.status_code, time.perf_counter() - started, attempt)
            if response.status_code >= 500 and endpoint.read_only and attempt <= self._max_retries:
                await self._sleep(self._backoff(attempt))
                continue
            return response

    def _backoff(self, attempt: int) -> float:
        delay: float = self._backoff_seconds * (2.0 ** (attempt - 1))
        return min(delay, _MAX_BACKOFF_SECONDS)

    @staticmethod
    def _transport_error(
        endpoint: Endpoint, exc: httpx.RequestError, *, never_sent: bool
    ) -> PayletterTransportError:
        timed_out = isinstance(exc, httpx.TimeoutException)
        error_cls = PayletterTimeout if timed_out else PayletterConnectionError
        detail = str(exc)
        message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return error_cls(message, may_have_reached_payletter=not never_sent, endpoint=endpoint.path)

    def _observe(
        self,
        endpoint: Endpoint,
        status: int,
        seconds: float,
        attempt: int,
        exc: Exception | None = None,
    ) -> None:
        # Only the endpoint template, status and timing: never headers, bodies or URLs with tids.
        if exc is None:
            logger.info(
                "payletter %s %s status=%d elapsed_ms=%.0f attempt=%d",
                endpoint.method,
                endpoint.path,
                status,
                seconds * 1000,
                attempt,
            )
        else:
            logger.warning(
                "payletter %s %s status=0 error=%s elapsed_ms=%.0f attempt=%d",
                endpoint.method,
                endpoint.path,
                type(exc).__name__,
                seconds * 1000,
                attempt,
            )
        if self._on_response is None:
            return
        try:
            self._on_response(endpoint.path, status, seconds)
        except Exception:
            # A broken metrics hook must not turn a completed payment call into an error.
            logger.exception("payletter on_response hook failed")

    @staticmethod
    def _parse(
        endpoint: Endpoint,
        response: httpx.Response,
        model: type[ResponseT],
        secrets: Sequence[str],
    ) -> ResponseT:
        status = response.status_code
        try:
            payload: object = response.json()
            is_json = True
        except ValueError:
            payload, is_json = None, False
        if not is_json:
            content_type = response.headers.get("content-type", "none")
            raise UnexpectedResponseError(
                status,
                None,
                f"body is not JSON (content-type {content_type}, {len(response.content)} bytes)",
                endpoint.path,
            )
        if status == 200:
            try:
                return model.model_validate(payload)
            except ValidationError as exc:
                code, _ = _error_fields(payload)
                raise UnexpectedResponseError(
                    status,
                    code,
                    f"body does not match {model.__name__}: {_describe_validation(exc)}",
                    endpoint.path,
                ) from None
        code, message = _error_fields(payload)
        error_cls = api_error_class_for_status(status)
        message = _redact(message, secrets) or response.reason_phrase or "no message"
        raise error_cls(status, code, message, endpoint.path)
