"""``GET /healthz`` and the two buses it reports on, against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import httpx
import redis.asyncio as aioredis

from accounts.context import Accounts
from persistence.db import Database
from session.bus import Bus
from tests.conftest import SECRET, make_accounts
from transport.bus import InProcessBus, RedisBus, make_bus
from web.app import create_app
from web.security import RateLimiter
from web.services import Services
from web.settings import Settings

REDIS_URL = os.environ.get("RETOONE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
WAIT_S = 5.0


@asynccontextmanager
async def app_client(
    settings: Settings, db: Database, accounts: Accounts, bus: Bus
) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(settings=settings, db=db, accounts=accounts, bus=bus,
                        rate_limiter=RateLimiter(settings.auth_rate_limit), owns_db=False)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        await bus.close()


async def test_healthz_ok_with_the_in_process_bus(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": "ok", "bus": "inproc"}


async def test_healthz_ok_with_a_reachable_redis(
    settings: Settings, db: Database, accounts: Accounts
) -> None:
    async with app_client(settings, db, accounts, RedisBus(REDIS_URL)) as c:
        r = await c.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": "ok", "bus": "redis"}


async def test_healthz_names_an_unreachable_redis(
    settings: Settings, db: Database, accounts: Accounts
) -> None:
    async with app_client(settings, db, accounts, RedisBus(CLOSED_REDIS_URL)) as c:
        r = await c.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["db"] == "ok"
    assert body["bus"] == "redis"
    assert set(body["failing"]) == {"bus"}
    assert body["failing"]["bus"].startswith("redis: ")
    assert "ConnectionError" in body["failing"]["bus"]


async def test_healthz_names_a_database_that_does_not_answer(
    settings: Settings, test_db_url: str
) -> None:
    closed = await Database.open(test_db_url, SECRET, max_size=1)
    await closed.close()
    async with app_client(settings, closed, make_accounts(closed), InProcessBus()) as c:
        r = await c.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["db"] == "down"
    assert body["bus"] == "inproc"
    assert set(body["failing"]) == {"db"}
    assert body["failing"]["db"]


async def test_healthz_names_both_when_both_fail(settings: Settings, test_db_url: str) -> None:
    closed = await Database.open(test_db_url, SECRET, max_size=1)
    await closed.close()
    bus = RedisBus(CLOSED_REDIS_URL)
    async with app_client(settings, closed, make_accounts(closed), bus) as c:
        r = await c.get("/healthz")
    assert r.status_code == 503
    assert set(r.json()["failing"]) == {"db", "bus"}


def test_make_bus_picks_by_url() -> None:
    assert isinstance(make_bus(None), InProcessBus)
    assert isinstance(make_bus(""), InProcessBus)
    assert make_bus(REDIS_URL).kind == "redis"


async def test_in_process_bus_round_trip() -> None:
    bus = InProcessBus()
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def handler(message: bytes) -> None:
        got.append(message)
        arrived.set()

    unsubscribe = await bus.subscribe("room-1", handler)
    await bus.publish("room-2", b"elsewhere")
    await bus.publish("room-1", b"hello")
    await asyncio.wait_for(arrived.wait(), WAIT_S)
    assert got == [b"hello"]

    await unsubscribe()
    await unsubscribe()  # twice is harmless
    await bus.publish("room-1", b"after")
    assert got == [b"hello"]
    await bus.ping()
    await bus.close()


async def test_redis_bus_round_trip() -> None:
    channel = f"retoone-test-{uuid4().hex}"
    publisher, subscriber = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def handler(message: bytes) -> None:
        if message == b"boom":
            raise RuntimeError("a failing handler must not stop the subscription")
        got.append(message)
        if len(got) == 2:
            arrived.set()

    try:
        await subscriber.ping()
        unsubscribe = await subscriber.subscribe(channel, handler)
        for message in (b"one", b"boom", b"two"):
            await publisher.publish(channel, message)
        await asyncio.wait_for(arrived.wait(), WAIT_S)
        assert got == [b"one", b"two"]

        await unsubscribe()
        probe = aioredis.from_url(REDIS_URL)
        try:
            assert await probe.pubsub_numsub(channel) == [(channel.encode(), 0)]
        finally:
            await probe.aclose()
    finally:
        await publisher.close()
        await subscriber.close()
