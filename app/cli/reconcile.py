"""`reconcile`: a Korea date against Payletter's transaction list."""

from __future__ import annotations

from datetime import date
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.common import (
    ACTOR,
    CliContext,
    emit_json,
    exit_with,
    json_option,
    korea_date,
    pass_cli,
    run_in_gateway,
)
from app.gateway import Gateway
from app.reconciliation.service import reconcile, report_table, run_detail, yesterday_in_korea


@click.command("reconcile")
@click.option("--date", "day", callback=korea_date, metavar="YYYY-MM-DD",
              help="Korea date (default: yesterday in Korea).")
@json_option
@pass_cli
def reconcile_day(obj: CliContext, day: date | None, as_json: bool) -> None:
    """Compare a Korea date with Payletter's transaction list; exit 1 if the run failed."""
    async def reconciled(gateway: Gateway, session: AsyncSession) -> dict[str, Any]:
        found = await reconcile(session, gateway, day or yesterday_in_korea(), actor=ACTOR)
        return await run_detail(session, found)

    detail = run_in_gateway(obj, reconciled, as_json=as_json)
    if as_json:
        emit_json(detail)
    else:
        click.echo(report_table(detail))
    exit_with(0 if detail["status"] == "completed" else 1)
