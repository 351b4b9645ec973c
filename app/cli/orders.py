"""`orders list | show | export | cancel | sync`: find, show, export, refund and settle
orders."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from app.cli.common import (
    ACTOR,
    CliContext,
    F,
    database,
    emit_json,
    exit_with,
    json_option,
    korea_date,
    pass_cli,
    run,
    run_in_gateway,
)
from app.cli.formatting import clean, kst, money, shorten, table, won
from app.errors import InvalidRequest, NotFound
from app.gateway import open_gateway
from app.models import Order
from app.orders import history
from app.orders.queries import (
    CSV_COLUMNS,
    MAX_LIMIT,
    SORTS,
    OrderFilter,
    SortKey,
    csv_row,
    iter_orders,
    order_totals,
    orders_page,
    parse_filter,
)
from app.orders.repository import OrderRepository
from app.orders.schemas import OrderOut
from app.payments.sync import sync_order
from app.refunds.service import RefundOutcome, cancel_order

# ---- orders: filters ------------------------------------------------------------------------

_TEXT_FILTERS = ("pgcode", "user_id", "order_no", "tid", "client_id")
_DATE_FILTERS = ("created_from", "created_to", "paid_from", "paid_to")


def filter_options(f: F) -> F:
    """The filters of GET /orders, as options."""
    options = [
        click.option("--status", "statuses", multiple=True, metavar="STATUS[,STATUS]",
                     help="Repeat or separate by commas."),
        click.option("--pgcode"), click.option("--user-id"), click.option("--order-no"),
        click.option("--tid"), click.option("--client-id"),
        *(click.option(f"--{name.replace('_', '-')}", name, callback=korea_date,
                       metavar="YYYY-MM-DD",
                       help=f"{'From' if name.endswith('from') else 'Up to and including'} "
                            "this Korea date.")
          for name in _DATE_FILTERS),
        click.option("--needs-review/--no-needs-review", default=None,
                     help="Only orders in review / none of them."),
        click.option("--sort", default="-created_at", show_default=True,
                     help=f"One of {', '.join(SORTS)}; prefix - for descending."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_filter(values: dict[str, Any]) -> tuple[OrderFilter, SortKey]:
    params: dict[str, str] = {}
    if values["statuses"]:
        params["status"] = ",".join(values["statuses"])
    for name in _TEXT_FILTERS:
        if values[name]:
            params[name] = values[name]
    for name in _DATE_FILTERS:
        if values[name] is not None:
            params[name] = values[name].isoformat()
    if values["needs_review"] is not None:
        params["needs_review"] = "true" if values["needs_review"] else "false"
    try:
        return parse_filter(params), SortKey.parse(values["sort"])
    except InvalidRequest as exc:
        hint = f"'--{exc.field.replace('_', '-')}'" if exc.field else None
        raise click.BadParameter(exc.message, param_hint=hint) from None


def order_json(order: Order) -> dict[str, Any]:
    """An order as GET /orders lists it."""
    return OrderOut.model_validate(order).model_dump(mode="json")


# ---- orders: list, show ---------------------------------------------------------------------


@click.group()
def orders() -> None:
    """Find, show, export, cancel and sync orders."""


@orders.command("list")
@filter_options
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True)
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@json_option
@pass_cli
def orders_list(obj: CliContext, /, limit: int, cursor: str | None, as_json: bool,
                **filters: Any) -> None:
    """One page of orders with the totals of every match (--json: as GET /orders)."""
    settings = obj.load_settings()
    flt, sort = build_filter(filters)

    async def work() -> dict[str, Any]:
        async with database(settings) as sessionmaker, sessionmaker() as session:
            return await orders_page(session, flt, sort=sort, cursor=cursor, limit=limit)

    body = run(work(), as_json=as_json)
    if as_json:
        emit_json(body)
    else:
        click.echo("\n".join(orders_table(body)))


def orders_table(body: dict[str, Any]) -> list[str]:
    totals = body["totals"]
    summary = (f"{totals['count']:,} order(s) match: {won(totals['amount'])}, "
               f"{won(totals['refunded'])} refunded")
    if not body["items"]:
        return [summary]
    rows = [[o["order_no"], o["status"], o["pgcode"], money(o["amount"]),
             money(o["cancelled_amount"]), o["user_id"], kst(o["created_at"]),
             kst(o["paid_at"]), o["tid"] or "-", shorten(o["product_name"], 30)]
            for o in body["items"]]
    lines = table(["ORDER_NO", "STATUS", "PGCODE", "AMOUNT", "REFUNDED", "USER_ID",
                   "CREATED (KST)", "PAID (KST)", "TID", "PRODUCT"], rows, right=(3, 4))
    lines += ["", f"{summary}; showing {len(rows)}, sorted {body['sort']}"]
    if body["next_cursor"]:
        lines.append(f"next page: --cursor {body['next_cursor']}")
    return lines



@orders.command("show")
@click.argument("order_no")
@json_option
@pass_cli
def orders_show(obj: CliContext, order_no: str, as_json: bool) -> None:
    """An order's fields and its timeline: deliveries, state changes, refunds, audit,
    the shop's events (the ops page's timeline)."""
    settings = obj.load_settings()

    async def work() -> tuple[dict[str, Any], list[history.TimelineEntry]]:
        async with database(settings) as sessionmaker, sessionmaker() as session:
            records = await history.order_records(session, order_no)
            return history.history_view(records), history.timeline(records)

    view, entries = run(work(), as_json=as_json)
    if as_json:
        emit_json(view)
    else:
        click.echo("\n".join(order_lines(view, entries)))


def order_lines(o: dict[str, Any], entries: Sequence[history.TimelineEntry]) -> list[str]:
    paid_with = f" (paid with {o['paid_pgcode']})" if o["paid_pgcode"] not in (
        None, o["pgcode"]) else ""
    fields = [
        ("status", o["status"]), ("client_id", o["client_id"]),
        ("pgcode", o["pgcode"] + paid_with),
        ("amount", f"{won(o['amount'])} (tax-free {money(o['taxfree_amount'])}, "
                   f"tax {money(o['tax_amount'])})"),
        ("refunded", won(o["cancelled_amount"])),
        ("product", o["product_name"]),
        ("user", o["user_id"] + (f" ({o['user_name']})" if o["user_name"] else "")),
        ("tid", o["tid"]), ("cid", o["cid"]), ("pay_info", o["pay_info"]),
        ("card_info", o["card_info"]), ("install_month", o["install_month"]),
        ("created", kst(o["created_at"])), ("paid", kst(o["paid_at"])),
        ("transaction", kst(o["transaction_date"])), ("updated", kst(o["updated_at"])),
        ("review_reason", o["review_reason"]), ("last_error", o["last_error"]),
    ]
    lines = [f"Order {clean(o['order_no'])}"]
    lines += ["  " + line for line in table(
        [], [[name, "-" if value in (None, "") else clean(str(value))]
             for name, value in fields])]
    events = timeline_rows(entries)
    lines += ["", f"Timeline (KST), {len(events)} entries"]
    if events:
        lines += ["  " + line for line in table(["TIME", "WHAT", "DETAIL"], events)]
    return lines


def timeline_rows(entries: Sequence[history.TimelineEntry]) -> list[list[str]]:
    """The order's one timeline (`app.orders.history`: the ops page shows the same entries)."""
    return [[kst(e.shown.isoformat()), e.kind, shorten(e.text, 160)] for e in entries]


# ---- orders: export -------------------------------------------------------------------------


@orders.command("export")
@filter_options
@click.option("--output", "-o", default="-", show_default=True, metavar="FILE|-",
              help="Write here (- for stdout). A file is written whole or not at all.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True, help="CSV (the columns of GET /orders?format=csv) or one "
                                      "JSON order per line (as GET /orders lists them).")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar on stderr (default: when stderr is a terminal).")
@click.option("--batch", type=click.IntRange(1, MAX_LIMIT * 10), default=1000,
              show_default=True, help="Rows read per query, each in a session of its own.")
@pass_cli
def orders_export(obj: CliContext, /, output: str, fmt: str, progress: bool | None, batch: int,
                  **filters: Any) -> None:
    """Every matching order, streamed in batches: memory stays flat however many match."""
    settings = obj.load_settings()
    flt, sort = build_filter(filters)
    show = progress if progress is not None else sys.stderr.isatty()

    async def work() -> int:
        async with database(settings) as sessionmaker:
            total = None
            if show:
                async with sessionmaker() as session:
                    total = (await order_totals(session, flt))["count"]
            written = 0
            with opened(output) as out, Progress(total, enabled=show) as bar:
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                if fmt == "csv":
                    if output != "-":
                        out.write("\ufeff")  # Excel then reads Korean right
                    writer.writerow(CSV_COLUMNS)
                async for rows in iter_orders(sessionmaker, flt, sort=sort, batch=batch):
                    if fmt == "csv":
                        writer.writerows(csv_row(order) for order in rows)
                    else:
                        buffer.writelines(json.dumps(order_json(order), ensure_ascii=False)
                                          + "\n" for order in rows)
                    out.write(buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
                    written += len(rows)
                    bar.update(len(rows))
                out.write(buffer.getvalue())  # a header with no rows
            return written

    written = run(work())
    where = "stdout" if output == "-" else output
    click.echo(f"exported {written:,} order(s) to {where} ({fmt})", err=True)


@contextmanager
def opened(output: str) -> Iterator[IO[str]]:
    """stdout, or a file written next to its name and renamed into place once complete."""
    if output == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(output)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


class Progress:
    """click's progress bar on a terminal; on anything else (a log), a line per tenth."""

    def __init__(self, total: int | None, *, enabled: bool) -> None:
        self.total, self.enabled, self.done, self.tenth = total, enabled, 0, 0
        self.bar: Any = None
        if enabled and total is not None and sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label="exporting", show_pos=True,
                                         file=sys.stderr)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
        elif self.enabled and self.total:
            tenth = min(10, self.done * 10 // self.total)
            if tenth > self.tenth:
                self.tenth = tenth
                click.echo(f"exported {self.done:,} of {self.total:,} orders "
                           f"({self.done * 100 // self.total}%)", err=True)


# ---- orders: cancel, sync; deliveries -------------------------------------------------------


@orders.command("cancel")
@click.argument("order_no")
@click.option("--amount", type=click.IntRange(min=1),
              help="Won to refund (default: the whole remaining amount).")
@click.option("--taxfree-amount", type=click.IntRange(min=0), help="Its tax-free part.")
@click.option("--tax-amount", type=click.IntRange(min=0), help="Its VAT.")
@click.option("--idempotency-key", help="The same key answers the same refund, never twice.")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@json_option
@pass_cli
def orders_cancel(obj: CliContext, order_no: str, amount: int | None,
                  taxfree_amount: int | None, tax_amount: int | None,
                  idempotency_key: str | None, yes: bool, as_json: bool) -> None:
    """Refund a paid order, in full or in part (the method's rules are checked first)."""
    settings = obj.load_settings()

    async def work() -> RefundOutcome:
        async with open_gateway(settings, payletter_transport=obj.payletter_transport
                                ) as gateway:
            if not yes:
                async with gateway.sessionmaker() as session:
                    order = await OrderRepository(session).get_by_order_no(order_no)
                if order is None:
                    raise NotFound(f"no order {order_no!r}")
                remaining = order.amount - order.cancelled_amount
                what = won(amount) if amount else f"the whole remaining {won(remaining)}"
                click.confirm(f"Refund {what} of order {order_no} ({order.pgcode}, "
                              f"{order.status}, {won(order.amount)}, "
                              f"{won(order.cancelled_amount)} refunded so far)?",
                              abort=True, err=True)
            async with gateway.sessionmaker() as session:
                answer = await cancel_order(
                    session, gateway, order_no, amount=amount, taxfree_amount=taxfree_amount,
                    tax_amount=tax_amount, idempotency_key=idempotency_key, actor=ACTOR)
                await session.commit()
        return answer

    outcome = run(work(), as_json=as_json)
    body = outcome.body
    if as_json:
        emit_json(body)
    else:
        refund, order = body["refund"], body["order"]
        cid = f", cid {refund['cid']}" if refund["cid"] else ""
        click.echo(f"refund #{refund['id']} ({refund['kind']}, {won(refund['amount'])}): "
                   f"{refund['status']}{cid}")
        click.echo(f"order {order['order_no']}: {order['status']}, refunded "
                   f"{won(order['cancelled_amount'])} of {won(order['amount'])}")
    if body.get("message"):
        click.echo(body["message"] if outcome.accepted else f"Error: {body['message']}",
                   err=True)
    exit_with(0 if outcome.accepted else 1)


@orders.command("sync")
@click.argument("order_no")
@json_option
@pass_cli
def orders_sync(obj: CliContext, order_no: str, as_json: bool) -> None:
    """Ask Payletter about an order (its payment, refunds left unknown) and settle it."""
    result = run_in_gateway(
        obj, lambda gateway, session: sync_order(session, gateway, order_no, actor=ACTOR),
        as_json=as_json)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result['order_no']}: {result['status_before']} → {result['status']} "
                   f"({', '.join(result['actions'])})")
