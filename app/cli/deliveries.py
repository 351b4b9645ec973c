"""`deliveries list | replay`: stored returns, callbacks and cancels."""

from __future__ import annotations

from typing import Any, get_args

import click

from app.cli.common import (
    CliContext,
    database,
    emit_json,
    exit_with,
    json_option,
    pass_cli,
    run,
    run_in_gateway,
)
from app.cli.formatting import kst, shorten, table
from app.orders.queries import MAX_LIMIT
from app.payments.deliveries import DeliveryKind, DeliveryOutcome, delivery_summary
from app.payments.repository import DeliveryRepository
from app.payments.service import replay_delivery


@click.group()
def deliveries() -> None:
    """Stored returns, callbacks and cancels."""


@deliveries.command("list")
@click.option("--kind", type=click.Choice(get_args(DeliveryKind)))
@click.option("--outcome", type=click.Choice(get_args(DeliveryOutcome)))
@click.option("--order-no")
@click.option("--unacknowledged", is_flag=True,
              help="Only those answered with a non-zero code (Payletter redelivers them).")
@click.option("--before-id", type=click.IntRange(1, 2**63 - 1),
              help="The next page: below this id.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True)
@json_option
@pass_cli
def deliveries_list(obj: CliContext, kind: str | None, outcome: str | None,
                    order_no: str | None, unacknowledged: bool, before_id: int | None,
                    limit: int, as_json: bool) -> None:
    """Stored deliveries, newest first, without raw bodies (--json: as GET /deliveries)."""
    settings = obj.load_settings()

    async def work() -> list[dict[str, Any]]:
        async with database(settings) as sessionmaker, sessionmaker() as session:
            rows = await DeliveryRepository(session).newest(
                kind=kind, outcome=outcome, order_no=order_no, unacknowledged=unacknowledged,
                before_id=before_id, limit=limit)
        return [{**delivery_summary(d), "received_at": d.received_at.isoformat()}
                for d in rows]

    body = run(work(), as_json=as_json)
    if as_json:
        emit_json(body)
        return
    rows = [[f"#{d['id']}", kst(d["received_at"]), d["kind"], d["order_no"] or "-",
             d["tid"] or "-", d["verification"], d["outcome"], str(d["response_code"]),
             shorten(d["detail"] or "", 60)] for d in body]
    lines = table(["ID", "RECEIVED (KST)", "KIND", "ORDER_NO", "TID", "VERIFICATION",
                   "OUTCOME", "CODE", "DETAIL"], rows, right=(7,)) if rows else []
    lines.append(f"{len(rows)} deliver{'y' if len(rows) == 1 else 'ies'}")
    if len(rows) == limit:
        lines.append(f"next page: --before-id {body[-1]['id']}")
    click.echo("\n".join(lines))


@deliveries.command("replay")
@click.argument("delivery_id", type=click.IntRange(1, 2**63 - 1))
@json_option
@pass_cli
def deliveries_replay(obj: CliContext, delivery_id: int, as_json: bool) -> None:
    """Run a stored delivery through verification again (recorded as a new delivery).

    Idempotent: a delivery that was applied comes out "duplicate". Exits 1 unless the
    outcome is one Payletter would have been told was received (code 0).
    """
    outcome = run_in_gateway(
        obj, lambda gateway, session: replay_delivery(session, gateway, delivery_id),
        as_json=as_json)
    result = {
        "replayed": delivery_id,
        "delivery_id": outcome.delivery_id,
        "outcome": outcome.outcome, "verification": outcome.verification,
        "code": outcome.code, "message": outcome.message,
        "order_no": outcome.order.order_no if outcome.order else None,
        "status": outcome.order.status if outcome.order else None,
    }
    if as_json:
        emit_json(result)
    else:
        order = (f"; order {result['order_no']} is {result['status']}"
                 if result["order_no"] else "")
        click.echo(f"delivery #{delivery_id} replayed as #{result['delivery_id']}: "
                   f"{result['outcome']} ({result['verification']}, code {result['code']})"
                   f"{order}")
        if result["message"]:
            click.echo(result["message"], err=True)
    exit_with(0 if result["code"] == 0 else 1)
