"""Dates outside 2000-01-01 … 2099-12-31 are bad input at every entry point that takes one:
GET /orders (JSON and CSV), the ops page (list and CSV), /reconciliations and the CLI.

Before, 9999-12-31 overflowed (500; the CSV and the ops page reset the connection) and
0001-01-01 could not be bound to a query (503 "database unavailable").
"""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from click.testing import CliRunner, Result
from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import CliContext, cli
from tests.support import make_settings, scalar

OUT_OF_RANGE = ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"]
DATE_FILTERS = ["created_from", "created_to", "paid_from", "paid_to"]
RANGE = "between 2000-01-01 and 2099-12-31"


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "validation_error" and error["field"] == field
    assert RANGE in error["message"] and field in error["message"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_order_list_and_csv_refuse_dates_out_of_range_with_a_clear_422(
    ops: httpx.AsyncClient, value: str
) -> None:
    for name in DATE_FILTERS:
        _refused(await ops.get("/orders", params={name: value}), name)
        _refused(await ops.get("/orders", params={name: value, "format": "csv"}), name)
        _refused(await ops.get("/orders", params={name: value},
                               headers={"accept": "text/csv"}), name)


async def test_the_first_and_last_day_of_the_range_are_accepted(ops: httpx.AsyncClient) -> None:
    for name in DATE_FILTERS:
        for value in ("2000-01-01", "2099-12-31"):
            r = await ops.get("/orders", params={name: value})
            assert r.status_code == 200, r.text
            csv = await ops.get("/orders", params={name: value, "format": "csv"})
            assert csv.status_code == 200 and csv.text.startswith("\ufefforder_no,")


def _cursor(value: str) -> str:
    raw = json.dumps([value, 1, "-created_at"]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_a_cursor_carrying_an_impossible_time_is_refused_not_an_outage(
    ops: httpx.AsyncClient,
) -> None:
    for moment in ("0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59+00:00",
                   "2026-01-01T00:00:00"):  # the last one naive: no instant at all
        r = await ops.get("/orders", params={"cursor": _cursor(moment)})
        assert r.status_code == 422, (moment, r.text)
        assert r.json()["error"]["field"] == "cursor"
        page = await ops.get("/ops/review", params={"cursor": _cursor(moment)})
        assert page.status_code == 422 and "cursor is not one" in page.text, moment


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_the_ops_page_shows_its_error_for_dates_out_of_range(
    ops: httpx.AsyncClient, value: str
) -> None:
    for name in DATE_FILTERS:
        for path in ("/ops", "/ops/orders.csv"):
            r = await ops.get(path, params={name: value})
            assert r.status_code == 422, (path, name, r.text)
            assert r.headers["content-type"].startswith("text/html")
            assert str(escape(f"{name}: '{value}' is not {RANGE}")) in r.text, (path, r.text)


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_reconciliations_refuse_dates_out_of_range(
    ops: httpx.AsyncClient, engine: AsyncEngine, value: str
) -> None:
    r = await ops.post("/reconciliations", json={"date": value})
    assert r.status_code == 422 and RANGE in r.json()["error"]["message"], r.text
    r = await ops.get("/reconciliations", params={"date": value})
    assert r.status_code == 422 and RANGE in r.json()["error"]["message"], r.text
    assert await scalar(engine, "SELECT count(*) FROM reconciliation_runs") == 0


async def _cli(database_url: str, *args: str) -> Result:
    obj = CliContext(settings=make_settings(database_url))
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), obj=obj,
                                   catch_exceptions=False)


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_the_cli_calls_dates_out_of_range_a_usage_error(
    database_url: str, engine: AsyncEngine, value: str
) -> None:
    commands = [["orders", "list", f"--{name.replace('_', '-')}", value]
                for name in DATE_FILTERS]
    commands += [["orders", "export", "--created-to", value], ["reconcile", "--date", value]]
    for args in commands:
        result = await _cli(database_url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == ""
        [line] = result.stderr.strip().splitlines()[-1:]
        assert f"'{value}' is not {RANGE}" in line, (args, result.stderr)
        assert "Traceback" not in result.output
    assert await scalar(engine, "SELECT count(*) FROM reconciliation_runs") == 0
