"""Autopay: stored billkeys (masked), charges against them, amount-0 registrations, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from app.billing.schemas import (
    BillingAuditOut,
    BillkeyListOut,
    BillkeyOut,
    ChargeCreate,
    ChargeOut,
    RegistrationCreate,
)
from app.billing.service import (
    billing_audit,
    charge,
    get_billkey,
    list_billkeys,
    register,
    revoke_billkey,
)
from app.db import utcnow
from app.kit.deps import (
    GatewayDep,
    IdempotencyKeyDep,
    OpsDep,
    ReaderDep,
    RowId,
    SessionDep,
    ShopDep,
    answer,
    respond,
)
from app.kit.pagination import PageDep
from app.kit.responses import API_ERRORS, IDEMPOTENT, errors
from app.orders.schemas import OrderViewOut

router = APIRouter(prefix="/billing", tags=["billing"], responses=API_ERRORS)

BillingAction = Literal["autopay_charge", "autopay_registration", "billkey_revoke"]


def request_time() -> datetime:
    """The instant the billing rules are judged at (tests override this dependency)."""
    return utcnow()


NowDep = Annotated[datetime, Depends(request_time)]


@router.get("/billkeys", response_model=BillkeyListOut, responses=errors(400, 422))
async def billkeys(
    session: SessionDep,
    _: ReaderDep,
    page: PageDep,
    user_id: Annotated[str | None, Query(max_length=50)] = None,
    client_id: Annotated[str | None, Query(max_length=20)] = None,
    status: Literal["active", "revoked"] | None = None,
) -> JSONResponse:
    """Stored billkeys, masked (the key itself is never shown), oldest first."""
    rows = await list_billkeys(session, client_id=client_id, user_id=user_id, status=status,
                               after_id=page.id_cursor, limit=page.limit)
    return answer({"billkeys": rows})


@router.get("/billkeys/{billkey_id}", response_model=BillkeyOut, responses=errors(404, 422))
async def billkey(billkey_id: RowId, session: SessionDep, _: ReaderDep) -> JSONResponse:
    return answer(await get_billkey(session, billkey_id))


@router.post("/billkeys/{billkey_id}/revoke", response_model=BillkeyOut,
             responses=errors(404, 422))
async def revoke(billkey_id: RowId, session: SessionDep, role: OpsDep, now: NowDep
                 ) -> JSONResponse:
    """Refuse every later charge with this billkey (local: Payletter has no revoke call)."""
    return answer(await revoke_billkey(session, billkey_id, actor=role, now=now))


@router.post("/charges", status_code=201, response_model=ChargeOut,
             responses={**IDEMPOTENT, **errors(400, 404, 409, 422, 502, 504)})
async def post_charge(
    body: ChargeCreate,
    session: SessionDep,
    gateway: GatewayDep,
    role: ShopDep,
    now: NowDep,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """Charge a stored billkey through v1.0/payments/autopay, once."""
    return respond(await charge(session, gateway, body, idempotency_key, actor=role, now=now))


@router.post("/registrations", status_code=201, response_model=OrderViewOut,
             responses={**IDEMPOTENT, **errors(400, 409, 422, 502, 504)})
async def post_registration(
    body: RegistrationCreate,
    session: SessionDep,
    gateway: GatewayDep,
    role: ShopDep,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """Open an amount-0 autopay window: the buyer's return brings the billkey."""
    return respond(await register(session, gateway, body, idempotency_key, actor=role))


@router.get("/audit", response_model=BillingAuditOut, responses=errors(422))
async def audit_log(
    session: SessionDep,
    _: OpsDep,
    page: PageDep,
    action: BillingAction | None = None,
) -> JSONResponse:
    """The newest audit rows of charges, registrations and revokes."""
    return answer({"audit": await billing_audit(session, action=action,
                                                before_id=page.id_cursor, limit=page.limit)})
