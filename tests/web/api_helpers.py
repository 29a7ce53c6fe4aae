"""Helpers for the accounts API tests: accounts, error-shape checks, audit reads, TOTP.

The API tests (test_register_login_api.py, test_auth_limits_api.py, test_sessions_api.py,
test_password_reset_api.py, test_account_api.py, test_twofactor_api.py, test_admin_api.py)
go through the real app (``client``) on the real PostgreSQL; the ``owner`` connection only
arranges state (moving timestamps to stand in for time passing) and checks what the
database and the audit log hold.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pyotp

from tests.conftest import STRONG_PASSWORD, unique

NEW_PASSWORD = "Amber-Cadence-Reel-481"
ERROR_KEYS = {"code", "message"}


# --------------------------------------------------------------------------- helpers


@dataclass
class Account:
    id: UUID
    username: str
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the API's one error shape with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == ERROR_KEYS, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def register(
    client: httpx.AsyncClient, *, prefix: str = "user", password: str = STRONG_PASSWORD
) -> dict[str, Any]:
    username = unique(prefix)
    r = await client.post("/api/auth/register", json={
        "username": username, "email": f"{username}@example.com", "password": password,
    })
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()["user"]
    return user


async def login(
    client: httpx.AsyncClient, login_name: str, password: str = STRONG_PASSWORD, **extra: str
) -> dict[str, Any]:
    r = await client.post("/api/auth/login", json={"login": login_name, "password": password,
                                                   **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def signup(
    client: httpx.AsyncClient, *, prefix: str = "user", keep_cookies: bool = False
) -> Account:
    """Register and log in; by default forget the session cookies so only Bearer is used."""
    return await session_for(client, await register(client, prefix=prefix),
                             keep_cookies=keep_cookies)


async def session_for(
    client: httpx.AsyncClient, user: dict[str, Any], *, keep_cookies: bool = False
) -> Account:
    """Log an already registered user in (with STRONG_PASSWORD)."""
    body = await login(client, user["username"])
    if not keep_cookies:
        client.cookies.clear()
    return Account(UUID(user["id"]), user["username"], user["email"], STRONG_PASSWORD,
                   body["token"])


async def events(owner: asyncpg.Connection, user_id: UUID) -> list[dict[str, Any]]:
    """The user's audit rows, oldest first, read past RLS."""
    rows = await owner.fetch(
        "SELECT kind, actor_id, detail::text AS detail FROM security_events "
        "WHERE user_id = $1 ORDER BY id", user_id,
    )
    return [{"kind": r["kind"], "actor_id": r["actor_id"], "detail": json.loads(r["detail"])}
            for r in rows]


async def kinds(owner: asyncpg.Connection, user_id: UUID) -> list[str]:
    return [e["kind"] for e in await events(owner, user_id)]


async def last_event(owner: asyncpg.Connection, user_id: UUID, kind: str) -> dict[str, Any]:
    found = [e for e in await events(owner, user_id) if e["kind"] == kind]
    assert found, f"no {kind} event for {user_id}"
    return found[-1]


async def reset_token_from_outbox(owner: asyncpg.Connection, user_id: UUID) -> str:
    body = await owner.fetchval(
        "SELECT body FROM outbox WHERE user_id = $1 AND kind = 'password_reset' "
        "ORDER BY id DESC LIMIT 1", user_id,
    )
    assert body is not None, "no reset message in the outbox"
    match = re.search(r"use this token: (\S+)", body)
    assert match, body
    return match[1]


def totp_code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * 30)


def current_step() -> int:
    return int(time.time() // 30)


async def enable_totp(client: httpx.AsyncClient, account: Account) -> tuple[str, list[str], int]:
    """Turn two-factor on; return the secret, the recovery codes and the step used to confirm.

    The next step (``step + 1``) stays valid for the following 30 s or more.
    """
    r = await client.post("/api/me/2fa/enrol", headers=account.auth)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    step = current_step()
    r = await client.post("/api/me/2fa/confirm", headers=account.auth,
                          json={"code": totp_code(secret, step)})
    assert r.status_code == 200, r.text
    return secret, r.json()["recovery_codes"], step


async def fill_every_table(
    client: httpx.AsyncClient, owner: asyncpg.Connection, account: Account
) -> str:
    """Give the account rows in every user-data table; return its TOTP secret."""
    secret, _, _ = await enable_totp(client, account)  # recovery_codes
    r = await client.post("/api/auth/password-reset", json={"login": account.username})
    assert r.status_code == 202  # password_resets and outbox
    for table in ("users", "auth_sessions", "recovery_codes", "password_resets", "outbox",
                  "security_events"):
        column = "id" if table == "users" else "user_id"
        count = await owner.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1",
                                     account.id)
        assert count > 0, table
    return secret
