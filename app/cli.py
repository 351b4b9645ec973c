"""Operator commands: `payletter-gateway serve | migrate | check-config | webhooks … |
orders list/show/export/cancel/sync | deliveries replay | reconcile`.

Every command reads the service's own settings (DATABASE_URL, PAYLETTER_*, …). Bad input
exits 2, a failure 1, each with one line on stderr (never a traceback). `--json` prints JSON,
and only JSON, on stdout; prompts, progress and notes go to stderr.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import signal
import sys
import unicodedata
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, TypeVar, get_args

import click
import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker, sqlite_file, utcnow
from app.errors import AppError, InvalidRequest, NotFound
from app.gateway import open_gateway
from app.kit.korea_time import parse_day
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
from app.payletter.models import KST
from app.payments.deliveries import DeliveryKind, DeliveryOutcome, delivery_summary
from app.payments.repository import DeliveryRepository
from app.payments.service import replay_delivery
from app.payments.sync import sync_order
from app.reconciliation.service import reconcile, report_table, run_detail, yesterday_in_korea
from app.refunds.service import cancel_order
from app.settings import ConfigError, Settings, load_settings
from app.webhooks.repository import OutboxRepository

ROOT = Path(__file__).resolve().parent.parent
ACTOR = "cli"  # the audit rows' actor for what an operator does here
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


# ---- plumbing: settings, errors, the event loop ---------------------------------------------


@dataclass
class CliContext:
    """What the commands share. Tests pass settings and a transport standing in for Payletter;
    otherwise the settings come from the environment, like the service's."""

    settings: Settings | None = None
    payletter_transport: httpx.AsyncBaseTransport | None = None

    def load_settings(self) -> Settings:
        if self.settings is None:
            try:
                self.settings = load_settings()
            except ConfigError as exc:
                raise BadInput(f"configuration error: {exc}") from None
        return self.settings


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


class CliError(click.ClickException):
    """One line on stderr; exit 1: something failed."""

    exit_code = 1


class BadInput(CliError):
    """Exit 2: the request can't be done as asked."""

    exit_code = 2


def run(work: Coroutine[Any, Any, T], *, as_json: bool = False) -> T:
    """Run a command's coroutine; service errors become one line and an exit code."""
    try:
        return asyncio.run(work)
    except AppError as exc:
        if as_json:
            emit_json(exc.to_body())
        # 4xx: the request can't be done as asked (2); 5xx: something failed (1)
        raise (BadInput if exc.status_code < 500 else CliError)(exc.message) from None
    except ConfigError as exc:
        raise BadInput(f"configuration error: {exc}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {_first_line(exc)}") from None
    except BrokenPipeError:
        raise
    except OSError as exc:  # the database unreachable, an output file not writable
        raise CliError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def emit_json(body: Any) -> None:
    click.echo(json.dumps(body, ensure_ascii=False, indent=2))


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON (and only JSON) on stdout.")(f)


def exit_with(code: int) -> None:
    if code:
        raise click.exceptions.Exit(code)


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url, **settings.pool_options)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def korea_date(ctx: click.Context, param: click.Parameter, value: str | None
               ) -> date | None:
    """An option's value as a date (YYYY-MM-DD, read as a Korea date, in the range every
    entry point accepts); bad input is one line and exit 2."""
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise BadInput(f"invalid value for {param.opts[0]}: {exc}") from None


# ---- the command tree -----------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (stderr).")
def cli(verbose: bool) -> None:
    """Operate the Payletter gateway: the service, its database, orders, webhooks."""
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True, envvar="PORT")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              envvar="WEB_CONCURRENCY")
@click.option("--graceful-shutdown", type=int, default=25, show_default=True,
              envvar="GRACEFUL_SHUTDOWN_SECONDS",
              help="Seconds in-flight requests get to finish after SIGTERM.")
@click.option("--log-level", default=None, help="Overrides LOG_LEVEL.")
@pass_cli
def serve(obj: CliContext, host: str, port: int, workers: int, graceful_shutdown: int,
          log_level: str | None) -> None:
    """Run the service (PORT, WEB_CONCURRENCY, GRACEFUL_SHUTDOWN_SECONDS also work)."""
    import uvicorn

    from app.metrics import workers_share_metrics
    from app.observability import configure_logging, uvicorn_log_config

    settings = obj.load_settings()  # a bad setting stops here, once, not in every worker
    level = (log_level or settings.log_level).upper()
    configure_logging(settings.log_format, level)
    database = sqlite_file(settings.database_url)
    if database is not None:  # the embedded database has no separate migration step
        _migrate_sqlite(database)
    with workers_share_metrics(workers):  # a scrape sums every worker's counters
        # proxy_headers=False: the app alone decides who is calling (TRUSTED_PROXIES).
        # access_log=False: the app writes its own access line, with the request id.
        uvicorn.run("app.main:app", host=host, port=port, workers=workers,
                    proxy_headers=False, log_level=level.lower(), access_log=False,
                    log_config=uvicorn_log_config(settings.log_format, level),
                    timeout_graceful_shutdown=graceful_shutdown)


def _migrate_sqlite(database: Path) -> None:
    folder = database.absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"the SQLite database folder {folder} cannot be created ({exc.strerror}):"
                       " mount a writable volume there or set DATABASE_URL") from None
    if not os.access(folder, os.W_OK):
        raise CliError(f"the SQLite database folder {folder} is not writable by uid "
                       f"{os.getuid()}: mount a writable volume there (the image declares "
                       "/srv/var) or set DATABASE_URL to PostgreSQL")
    logging.getLogger(__name__).info("migrating the SQLite database %s", database)
    upgrade_database("head", quiet_logging=True)


@cli.command()
@click.argument("revision", default="head")
def migrate(revision: str) -> None:
    """alembic upgrade (DATABASE_URL)."""
    upgrade_database(revision)


def upgrade_database(revision: str, *, quiet_logging: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    # The working directory first (the image's /srv), then the source tree.
    candidates = [Path.cwd() / "alembic.ini", ROOT / "alembic.ini"]
    found = next((path for path in candidates if path.exists()), None)
    if found is None:
        raise click.ClickException("alembic.ini not found here or next to the package")
    config = Config(str(found))
    # The service's own log handler (JSON when asked) instead of alembic.ini's.
    config.attributes["skip_logging"] = quiet_logging
    command.upgrade(config, revision)


@cli.command("check-config")
@pass_cli
def check_config(obj: CliContext) -> None:
    """Load the settings and report problems."""
    settings = obj.load_settings()
    click.echo(f"ok: PAYLETTER_ENV={settings.payletter_env}, Payletter at "
               f"{settings.api_base_url}, merchants {', '.join(settings.merchants)}")


# ---- webhooks -------------------------------------------------------------------------------


@cli.group()
def webhooks() -> None:
    """The outbox of shop webhooks."""


@webhooks.command()
@click.option("--once", is_flag=True, help="One batch, then exit.")
@pass_cli
def dispatch(obj: CliContext, once: bool) -> None:
    """Deliver pending events (a worker; stops on SIGINT/SIGTERM after its batch)."""
    from app.webhooks.dispatcher import DispatchConfig, Dispatcher

    settings = obj.load_settings()
    config = DispatchConfig.from_settings(settings)
    if config is None:
        raise BadInput("SHOP_WEBHOOK_URL and SHOP_WEBHOOK_SECRET are not set")
    if not once:
        logging.getLogger().setLevel(logging.INFO)  # a worker reports what it does

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)  # finish the batch in flight, then stop
        async with database(settings) as sessionmaker, httpx.AsyncClient() as http:
            dispatcher = Dispatcher(sessionmaker, http, config)
            if once:
                click.echo(f"sent {await dispatcher.run_once()} event(s)")
            else:
                await dispatcher.run_forever(stop)

    run(work())


def _replay_events(obj: CliContext, event_id: str | None) -> None:
    settings = obj.load_settings()

    async def work() -> int:
        async with database(settings) as sessionmaker, sessionmaker() as session:
            count = await OutboxRepository(session).replay(event_id=event_id, now=utcnow())
            await session.commit()
        return count

    count = run(work())
    click.echo(f"replayed {count} event(s)")
    exit_with(0 if count or event_id is None else 1)


@webhooks.command("replay")
@click.argument("event_id")
@pass_cli
def webhooks_replay(obj: CliContext, event_id: str) -> None:
    """Send one event again."""
    _replay_events(obj, event_id)


@webhooks.command("replay-dead")
@pass_cli
def webhooks_replay_dead(obj: CliContext) -> None:
    """Send every dead event again."""
    _replay_events(obj, None)


# ---- reconcile ------------------------------------------------------------------------------


@cli.command("reconcile")
@click.option("--date", "day", callback=korea_date, metavar="YYYY-MM-DD",
              help="Korea date (default: yesterday in Korea).")
@json_option
@pass_cli
def reconcile_day(obj: CliContext, day: date | None, as_json: bool) -> None:
    """Compare a Korea date with Payletter's transaction list; exit 1 if the run failed."""
    settings = obj.load_settings()

    async def work() -> dict[str, Any]:
        async with open_gateway(settings, payletter_transport=obj.payletter_transport
                                ) as gateway, gateway.sessionmaker() as session:
            found = await reconcile(session, gateway, day or yesterday_in_korea(), actor=ACTOR)
            detail = await run_detail(session, found)
            await session.commit()
        return detail

    detail = run(work(), as_json=as_json)
    if as_json:
        emit_json(detail)
    else:
        click.echo(report_table(detail))
    exit_with(0 if detail["status"] == "completed" else 1)


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


@cli.group()
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

    async def work() -> tuple[int, dict[str, Any]]:
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
        return answer.status_code, answer.body

    status, body = run(work(), as_json=as_json)
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
        click.echo(f"Error: {body['message']}" if status not in (200, 202)
                   else body["message"], err=True)
    exit_with(0 if status in (200, 202) else 1)


@orders.command("sync")
@click.argument("order_no")
@json_option
@pass_cli
def orders_sync(obj: CliContext, order_no: str, as_json: bool) -> None:
    """Ask Payletter about an order (its payment, refunds left unknown) and settle it."""
    settings = obj.load_settings()

    async def work() -> dict[str, Any]:
        async with open_gateway(settings, payletter_transport=obj.payletter_transport
                                ) as gateway, gateway.sessionmaker() as session:
            result = await sync_order(session, gateway, order_no, actor=ACTOR)
            await session.commit()
        return result

    result = run(work(), as_json=as_json)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result['order_no']}: {result['status_before']} → {result['status']} "
                   f"({', '.join(result['actions'])})")


@cli.group()
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
    settings = obj.load_settings()

    async def work() -> dict[str, Any]:
        async with open_gateway(settings, payletter_transport=obj.payletter_transport
                                ) as gateway, gateway.sessionmaker() as session:
            outcome = await replay_delivery(session, gateway, delivery_id)
            await session.commit()
        return {
            "replayed": delivery_id,
            "delivery_id": outcome.delivery_id,
            "outcome": outcome.outcome, "verification": outcome.verification,
            "code": outcome.code, "message": outcome.message,
            "order_no": outcome.order.order_no if outcome.order else None,
            "status": outcome.order.status if outcome.order else None,
        }

    result = run(work(), as_json=as_json)
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


# ---- formatting -----------------------------------------------------------------------------


def money(amount: int) -> str:
    return f"{amount:,}"


def won(amount: int) -> str:
    return f"{amount:,} won"


def kst(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def clean(text: str) -> str:
    """No control characters from stored data reach the terminal (escape sequences)."""
    return "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def width(text: str) -> int:
    """Columns on a terminal: Korean (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def shorten(text: str, limit: int) -> str:
    text = clean(text)
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        used += width(ch)
        if used > limit - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
          right: tuple[int, ...] = ()) -> list[str]:
    """Fixed-width columns, two spaces apart; `right` columns (amounts) right-aligned."""
    rows = [[clean(cell) for cell in row] for row in rows]
    every = [list(headers), *rows] if headers else rows
    widths = [max(width(row[i]) for row in every) for i in range(len(every[0]))]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - width(cell))
            parts.append(pad + cell if i in right else cell + pad)
        return "  ".join(parts).rstrip()

    return [line(row) for row in every]


# ---- entry ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Returns the exit code; bad usage exits 2 (as argparse did)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result = cli.main(args=list(argv) if argv is not None else None,
                          prog_name="payletter-gateway", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except BrokenPipeError:  # `… | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
