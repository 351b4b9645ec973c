"""The database goes away in the middle of the callback stream: nothing acknowledged is lost."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from tests.factories import callback_body, create_order
from tests.fake_payletter import FakePayletter
from tests.support import PAYLETTER_IP, client_for, make_settings, running
from tests.tcp_proxy import TcpProxy


def through(proxy: TcpProxy, database_url: str) -> str:
    parts = urlsplit(database_url)
    credentials = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else "postgres"
    netloc = f"{credentials}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_database_down_during_a_callback_answers_non_zero_and_the_redelivery_applies(
    postgres_url: str, pg_engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    settings = make_settings(through(proxy, postgres_url))
    async with running(create_app(settings, fake_payletter.transport)) as app:
        async with client_for(app, authorization="Bearer shop-token-for-tests") as shop:
            order = await create_order(shop)
        body = callback_body(order)
        async with client_for(app, peer=PAYLETTER_IP) as payletter:
            await proxy.cut()
            down = await payletter.post("/payletter/callback", json=body)
            assert down.json()["code"] != 0
            assert down.status_code == 503
            async with client_for(app) as probe:
                assert (await probe.get("/readyz")).status_code == 503

            await proxy.restore()
            up = await payletter.post("/payletter/callback", json=body)
            assert up.json() == {"code": 0, "message": ""}
    await proxy.cut()
    async with pg_engine.connect() as conn:
        status = (await conn.execute(text("SELECT status FROM orders"))).scalar()
        applied = (await conn.execute(text(
            "SELECT count(*) FROM deliveries WHERE outcome = 'applied'"))).scalar()
    assert status == "paid" and applied == 1


async def test_readyz_is_ok_when_the_database_answers(shop: httpx.AsyncClient) -> None:
    r = await shop.get("/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"
