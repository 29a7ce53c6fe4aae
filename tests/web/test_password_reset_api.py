"""Password reset over HTTP: the request (the same answer for unknown accounts), the
emailed token (single use, expiring, hashed at rest), weak new passwords, and the reset
ending sessions and clearing a lockout.

Conventions and shared helpers: tests/web/api_helpers.py.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import httpx

from tests.conftest import STRONG_PASSWORD, unique
from tests.web.api_helpers import (
    NEW_PASSWORD,
    assert_error,
    last_event,
    login,
    register,
    reset_token_from_outbox,
    signup,
)

# --------------------------------------------------------------------------- password reset


async def test_reset_request_answers_the_same_for_unknown_accounts(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    known = await client.post("/api/auth/password-reset", json={"login": user["email"]})
    ghost = unique("ghost")
    unknown = await client.post("/api/auth/password-reset", json={"login": ghost})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert "token" not in known.text
    assert await owner.fetchval("SELECT count(*) FROM outbox WHERE user_id = $1",
                                UUID(user["id"])) == 1
    assert await owner.fetchval("SELECT count(*) FROM outbox WHERE recipient LIKE $1",
                                f"{ghost}%") == 0
    row = await owner.fetchrow(
        "SELECT user_id, detail->>'matched' AS matched FROM security_events "
        "WHERE kind = 'password.reset_requested' AND detail->>'login' = $1", ghost,
    )
    assert row is not None and row["user_id"] is None and row["matched"] == "false"
    requested = await last_event(owner, UUID(user["id"]), "password.reset_requested")
    assert requested["detail"] == {"matched": True}


async def test_reset_confirm_changes_the_password_and_ends_sessions(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    r = await client.post("/api/auth/password-reset", json={"login": account.username})
    assert r.status_code == 202
    token = await reset_token_from_outbox(owner, account.id)
    stored = await owner.fetchval("SELECT count(*) FROM password_resets WHERE token_hash = $1",
                                  token.encode())
    assert stored == 0  # only the hash is stored

    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    assert_error(await client.get("/api/me", headers=account.auth), 401, "token_revoked")
    r = await client.post("/api/auth/login",
                          json={"login": account.username, "password": STRONG_PASSWORD})
    assert_error(r, 401, "invalid_credentials")
    await login(client, account.username, NEW_PASSWORD)
    done = await last_event(owner, account.id, "password.reset")
    assert done["detail"] == {"sessions_ended": 1}


async def test_reset_token_is_single_use(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    await client.post("/api/auth/password-reset", json={"login": user["username"]})
    token = await reset_token_from_outbox(owner, UUID(user["id"]))
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": "Another-Strong-Phrase-5"})
    assert_error(r, 400, "reset_token_used")
    refused = await last_event(owner, UUID(user["id"]), "password.reset_refused")
    assert refused["detail"] == {"reason": "reset_token_used"}
    await login(client, user["username"], NEW_PASSWORD)  # the second try changed nothing


async def test_expired_reset_token_is_refused(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    await client.post("/api/auth/password-reset", json={"login": user["username"]})
    token = await reset_token_from_outbox(owner, UUID(user["id"]))
    await owner.execute(
        "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        UUID(user["id"]),
    )
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": NEW_PASSWORD})
    assert_error(r, 400, "reset_token_expired")
    refused = await last_event(owner, UUID(user["id"]), "password.reset_refused")
    assert refused["detail"] == {"reason": "reset_token_expired"}
    await login(client, user["username"])  # the old password still works


async def test_unknown_reset_token_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": "no-such-token", "password": NEW_PASSWORD})
    assert_error(r, 400, "reset_token_invalid")


async def test_reset_with_a_weak_password_keeps_the_token(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    await client.post("/api/auth/password-reset", json={"login": user["username"]})
    token = await reset_token_from_outbox(owner, UUID(user["id"]))
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": "password1"})
    assert_error(r, 422, "weak_password")
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200


async def test_reset_clears_a_lockout(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    for _ in range(5):
        await client.post("/api/auth/login",
                          json={"login": user["username"], "password": "Wrong-Password-99"})
    r = await client.post("/api/auth/login",
                          json={"login": user["username"], "password": STRONG_PASSWORD})
    assert_error(r, 423, "account_locked")
    await client.post("/api/auth/password-reset", json={"login": user["username"]})
    token = await reset_token_from_outbox(owner, UUID(user["id"]))
    r = await client.post("/api/auth/password-reset/confirm",
                          json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200
    await login(client, user["username"], NEW_PASSWORD)
