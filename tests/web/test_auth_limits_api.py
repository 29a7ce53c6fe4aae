"""Limits on guessing over HTTP: the per-account lockout after five failed logins in 15
minutes, and the per-address rate limit shared by every auth route.

Conventions and shared helpers: tests/web/api_helpers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from accounts.context import Accounts
from persistence.db import Database
from tests.conftest import SECRET, STRONG_PASSWORD, unique
from tests.web.api_helpers import assert_error, kinds, login, register
from transport.bus import InProcessBus
from web.app import create_app
from web.security import RateLimiter
from web.services import Services
from web.settings import Settings

# --------------------------------------------------------------------------- lockout


async def test_lockout_after_five_failures_then_the_window_passes(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    user_id = UUID(user["id"])
    for _ in range(5):
        r = await client.post("/api/auth/login",
                              json={"login": user["username"], "password": "Wrong-Password-99"})
        assert_error(r, 401, "invalid_credentials")
    # The right password does not help while locked, by username or by email.
    for name in (user["username"], user["email"]):
        r = await client.post("/api/auth/login",
                              json={"login": name, "password": STRONG_PASSWORD})
        error = assert_error(r, 423, "account_locked")
        assert "try again after" in error["message"]
        assert "token" not in r.json()
    assert (await kinds(owner, user_id)).count("login.locked") == 2
    assert (await kinds(owner, user_id)).count("login.failed") == 5

    # Sixteen minutes later (the failures move out of the 15-minute window).
    await owner.execute(
        "UPDATE security_events SET at = at - interval '16 minutes' "
        "WHERE user_id = $1 AND kind = 'login.failed'", user_id,
    )
    body = await login(client, user["username"])
    assert body["user"]["id"] == user["id"]


async def test_four_failures_do_not_lock_and_a_success_resets_the_count(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    wrong = {"login": user["username"], "password": "Wrong-Password-99"}
    for _ in range(4):
        assert_error(await client.post("/api/auth/login", json=wrong), 401, "invalid_credentials")
    await login(client, user["username"])
    for _ in range(4):
        assert_error(await client.post("/api/auth/login", json=wrong), 401, "invalid_credentials")
    await login(client, user["username"])


# --------------------------------------------------------------------------- rate limit


@pytest.fixture
async def limited_app(db: Database, accounts: Accounts, tmp_path: Path) -> AsyncIterator[Any]:
    settings = Settings(data_dir=tmp_path, secret_key=SECRET.decode(),
                        public_url="http://testserver", auth_rate_limit=3)
    services = Services(settings=settings, db=db, accounts=accounts, bus=InProcessBus(),
                        rate_limiter=RateLimiter(settings.auth_rate_limit), owns_db=False)
    yield create_app(settings, services=services)


def client_from(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_auth_requests_are_rate_limited(limited_app: Any) -> None:
    ghost = {"login": unique("ghost"), "password": "Wrong-Password-99"}
    async with client_from(limited_app, "203.0.113.7") as c:
        for _ in range(3):
            assert_error(await c.post("/api/auth/login", json=ghost), 401,
                         "invalid_credentials")
        r = await c.post("/api/auth/login", json=ghost)
        assert_error(r, 429, "rate_limited")
        retry_after = int(r.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        # Every auth route shares the bucket, whatever the body.
        r = await c.post("/api/auth/register", json={})
        assert_error(r, 429, "rate_limited")
        r = await c.post("/api/auth/password-reset", json={"login": ghost["login"]})
        assert_error(r, 429, "rate_limited")
        # Non-auth routes are not limited.
        assert_error(await c.get("/api/me"), 401, "not_authenticated")
    # Another client address has its own bucket.
    async with client_from(limited_app, "203.0.113.8") as c:
        assert_error(await c.post("/api/auth/login", json=ghost), 401, "invalid_credentials")
