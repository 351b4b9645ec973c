"""Orders: the shop opens payments here; shop and operators read them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.errors import InvalidRequest
from app.kit.deps import (
    GatewayDep,
    IdempotencyKeyDep,
    OpsDep,
    OrderCreatorDep,
    ReaderDep,
    SessionDep,
    answer,
    respond,
)
from app.kit.pagination import Page, Pagination
from app.kit.responses import API_ERRORS, IDEMPOTENT, errors, not_json
from app.orders.history import order_with_history
from app.orders.queries import (
    FILTER_PARAMS,
    MAX_LIMIT,
    SortKey,
    csv_stream,
    orders_page,
    parse_filter,
)
from app.orders.schemas import (
    IntentOrderCreate,
    OrderCreate,
    OrderDetailOut,
    OrderPageOut,
    OrderViewOut,
    ReceiptUrlOut,
    SyncOut,
)
from app.orders.service import create_order, create_order_from_intent
from app.payments.receipts import issue_cash_receipt, transaction_receipt
from app.payments.sync import sync_order

router = APIRouter(prefix="/orders", tags=["orders"], responses=API_ERRORS)


@router.post("", status_code=201, response_model=OrderViewOut,
             responses={**IDEMPOTENT, **errors(400, 409, 422, 502, 504)})
async def post_order(
    body: OrderCreate | IntentOrderCreate,
    session: SessionDep,
    gateway: GatewayDep,
    _: OrderCreatorDep,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """Create an order and its Payletter payment window (shop token, or a signed intent)."""
    if isinstance(body, IntentOrderCreate):
        return respond(await create_order_from_intent(session, gateway, body))
    return respond(await create_order(session, gateway, body, idempotency_key))


LIST_PARAMS = {*FILTER_PARAMS, "sort", "cursor", "limit", "format", "totals"}


@router.get("", response_model=OrderPageOut, responses={
    **not_json("text/csv", "A page of orders (JSON), or every match (CSV)"),
    **errors(400, 422)})
async def list_orders(
    request: Request, session: SessionDep, gateway: GatewayDep, _: ReaderDep,
    page: Annotated[Page, Depends(Pagination(default=50, maximum=MAX_LIMIT))],
    sort: str | None = None,
    format: Literal["json", "csv"] | None = None, totals: bool = True,
) -> Response:
    """Orders by filters named after the columns; keyset pages with totals, or CSV."""
    unknown = sorted(set(request.query_params) - LIST_PARAMS)
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}; filters are "
                             f"{', '.join(FILTER_PARAMS)}", field=unknown[0])
    flt = parse_filter(request.query_params)
    sort_key = SortKey.parse(sort)
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        return StreamingResponse(
            csv_stream(gateway.sessionmaker, flt, sort_key),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="orders.csv"'})
    return answer(await orders_page(session, flt, sort=sort_key, cursor=page.cursor,
                                    limit=page.limit, totals=totals))


@router.get("/{order_no}", response_model=OrderDetailOut, responses=errors(400, 404, 422))
async def get_order(order_no: str, session: SessionDep, _: ReaderDep) -> JSONResponse:
    """One order with every delivery, state change, refund and audit entry on record."""
    return answer(await order_with_history(session, order_no))


@router.post("/{order_no}/sync", response_model=SyncOut,
             responses=errors(400, 404, 422, 502))
async def sync(order_no: str, session: SessionDep, gateway: GatewayDep, role: OpsDep
               ) -> JSONResponse:
    """Ask Payletter about this order (payment and unknown refunds) and settle it."""
    return answer(await sync_order(session, gateway, order_no, actor=role))


class CashReceiptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["0", "1", "2"] | None = Field(
        default=None, description="0 buyer chooses, 1 income deduction, 2 expense proof")
    tax_flag: Literal["Y", "N"] | None = Field(
        default=None, description="Payletter's: N = VAT included, Y = not included")


@router.post("/{order_no}/cash-receipt", response_model=ReceiptUrlOut,
             responses=errors(400, 404, 409, 422, 502))
async def cash_receipt(
    order_no: str, body: CashReceiptBody, session: SessionDep, gateway: GatewayDep,
    role: ReaderDep,
) -> JSONResponse:
    """Open Payletter's cash receipt page for a paid order; answers its URL."""
    return respond(await issue_cash_receipt(session, gateway, order_no, receipt_type=body.type,
                                            tax_flag=body.tax_flag, actor=role),
                   status_code=200)


@router.get("/{order_no}/receipt", response_model=ReceiptUrlOut,
            responses=errors(400, 404, 409, 422, 502))
async def receipt(order_no: str, session: SessionDep, gateway: GatewayDep, role: ReaderDep
                  ) -> JSONResponse:
    """The URL of Payletter's transaction confirmation (거래 내역 확인서)."""
    url = await transaction_receipt(session, gateway, order_no, actor=role)
    return answer({"receipt_url": url})
