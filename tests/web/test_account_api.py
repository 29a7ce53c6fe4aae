"""The signed-in user's own account over HTTP: profile updates, password change (and its
lockout), the data export (every table, no secrets) and account deletion (every row).

Conventions and shared helpers: tests/web/api_helpers.py.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from persistence.migrate import quote_ident
from tests.conftest import STRONG_PASSWORD
from tests.web.api_helpers import (
    NEW_PASSWORD,
    assert_error,
    bearer,
    fill_every_table,
    kinds,
    last_event,
    login,
    reset_token_from_outbox,
    signup,
)

# --------------------------------------------------------------------------- profile


async def test_profile_update(client: httpx.AsyncClient, owner: asyncpg.Connection) -> None:
    account = await signup(client)
    r = await client.patch("/api/me", headers=account.auth, json={
        "display_name": "DJ Tape", "bio": "Dub and techno.", "genres": [" techno ", "dub"],
        "privacy": "public",
    })
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    assert user["display_name"] == "DJ Tape"
    assert user["bio"] == "Dub and techno."
    assert user["genres"] == ["techno", "dub"]
    assert user["privacy"] == "public"
    assert (await client.get("/api/me", headers=account.auth)).json()["user"] == user

    # Fields left out keep their values.
    r = await client.patch("/api/me", headers=account.auth, json={"privacy": "followers"})
    assert r.json()["user"]["privacy"] == "followers"
    assert r.json()["user"]["display_name"] == "DJ Tape"
    assert r.json()["user"]["genres"] == ["techno", "dub"]
    updated = await last_event(owner, account.id, "profile.updated")
    assert updated["detail"] == {"fields": ["privacy"]}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"privacy": "everyone"}, "privacy"),
        ({"privacy": ""}, "privacy"),
        ({"display_name": "x" * 65}, "display_name"),
        ({"bio": "x" * 2001}, "bio"),
        ({"genres": [f"g{i}" for i in range(21)]}, "genres"),
        ({"genres": ["  "]}, "genres"),
        ({"genres": "techno"}, "genres"),
        ({"genres": [1, 2]}, "genres"),
        ({"bio": 42}, "bio"),
    ],
)
async def test_profile_validation_is_422(
    client: httpx.AsyncClient, patch: dict[str, Any], field: str
) -> None:
    account = await signup(client)
    r = await client.patch("/api/me", headers=account.auth, json=patch)
    error = assert_error(r, 422, "invalid_field")
    assert error["message"].startswith(f"{field}:")
    me = (await client.get("/api/me", headers=account.auth)).json()["user"]
    assert me["privacy"] == "private" and me["bio"] == "" and me["genres"] == []


# --------------------------------------------------------------------------- password change


async def test_change_password_ends_other_sessions(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    other = (await login(client, account.username))["token"]
    third = (await login(client, account.username))["token"]
    client.cookies.clear()
    r = await client.post("/api/me/password", headers=account.auth, json={
        "current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD,
    })
    assert r.status_code == 200, r.text
    assert r.json()["sessions_ended"] == 2
    assert (await client.get("/api/me", headers=account.auth)).status_code == 200
    for token in (other, third):
        assert_error(await client.get("/api/me", headers=bearer(token)), 401, "token_revoked")
    r = await client.post("/api/auth/login",
                          json={"login": account.username, "password": STRONG_PASSWORD})
    assert_error(r, 401, "invalid_credentials")
    await login(client, account.username, NEW_PASSWORD)
    changed = await last_event(owner, account.id, "password.changed")
    assert changed["detail"] == {"sessions_ended": 2}


async def test_change_password_with_wrong_current_password(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    r = await client.post("/api/me/password", headers=account.auth, json={
        "current_password": "Wrong-Password-99", "new_password": NEW_PASSWORD,
    })
    assert_error(r, 401, "invalid_credentials")
    failed = await last_event(owner, account.id, "login.failed")
    assert failed["detail"] == {"during": "password_change"}
    await login(client, account.username)  # unchanged


async def test_a_stolen_session_cannot_guess_the_password_without_limit(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    """Password checks behind a session count toward lockout like logins do."""
    account = await signup(client)
    guesses = [
        ("POST", "/api/me/password", {"current_password": "Guess-Number-01",
                                      "new_password": NEW_PASSWORD}),
        ("POST", "/api/me/2fa/disable", {"password": "Guess-Number-02", "totp_code": "000000"}),
        ("DELETE", "/api/me", {"password": "Guess-Number-03"}),
    ]
    for i in range(5):
        method, path, body = guesses[i % len(guesses)]
        r = await client.request(method, path, headers=account.auth, json=body)
        assert_error(r, 401, "invalid_credentials")
    r = await client.post("/api/me/password", headers=account.auth, json={
        "current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD,
    })
    assert_error(r, 423, "account_locked")
    r = await client.request("DELETE", "/api/me", headers=account.auth,
                             json={"password": STRONG_PASSWORD})
    assert_error(r, 423, "account_locked")
    assert (await last_event(owner, account.id, "login.locked"))["detail"] == {
        "during": "account_delete"
    }
    r = await client.post("/api/auth/login",
                          json={"login": account.username, "password": STRONG_PASSWORD})
    assert_error(r, 423, "account_locked")


async def test_change_password_to_a_weak_one_is_422(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    r = await client.post("/api/me/password", headers=account.auth, json={
        "current_password": STRONG_PASSWORD, "new_password": f"{account.username}!!",
    })
    assert_error(r, 422, "weak_password")
    await login(client, account.username)


# --------------------------------------------------------------------------- export, deletion


async def test_export_has_every_table_and_no_secrets(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    secret = await fill_every_table(client, owner, account)
    r = await client.get("/api/me/export", headers=account.auth)
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == {"users", "auth_sessions", "recovery_codes", "password_resets",
                         "outbox", "security_events"}
    assert all(data[table] for table in data), {t: len(v) for t, v in data.items()}
    assert data["users"][0]["id"] == str(account.id)
    assert data["users"][0]["totp_enabled"] is True
    assert all(e.get("kind") for e in data["security_events"])
    text = r.text
    for name in ("password_hash", "token_hash", "totp_secret", "code_hash", "totp_last_step"):
        assert name not in text, name
    assert "$argon2" not in text and secret not in text
    hashes = await owner.fetch(
        "SELECT token_hash FROM auth_sessions WHERE user_id = $1 UNION ALL "
        "SELECT token_hash FROM password_resets WHERE user_id = $1 UNION ALL "
        "SELECT code_hash FROM recovery_codes WHERE user_id = $1", account.id,
    )
    for (digest,) in hashes:
        assert digest.hex() not in text
    assert "account.exported" in await kinds(owner, account.id)


async def test_export_does_not_reveal_a_pending_reset_token(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    """A stolen session alone must not turn into a new password: anyone can ask for a
    reset by username, so the export must not show the token from the outbox."""
    account = await signup(client)
    r = await client.post("/api/auth/password-reset", json={"login": account.username})
    assert r.status_code == 202
    token = await reset_token_from_outbox(owner, account.id)
    r = await client.get("/api/me/export", headers=account.auth)
    assert r.status_code == 200
    assert len(r.json()["outbox"]) == 1
    assert r.json()["outbox"][0]["kind"] == "password_reset"
    assert token not in r.text


async def test_export_needs_authentication(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/me/export"), 401, "not_authenticated")


async def test_delete_account_with_wrong_password_is_refused(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    r = await client.request("DELETE", "/api/me", headers=account.auth,
                             json={"password": "Wrong-Password-99"})
    assert_error(r, 401, "invalid_credentials")
    assert await owner.fetchval("SELECT count(*) FROM users WHERE id = $1", account.id) == 1
    assert (await client.get("/api/me", headers=account.auth)).status_code == 200
    failed = await last_event(owner, account.id, "login.failed")
    assert failed["detail"] == {"during": "account_delete"}
    r = await client.request("DELETE", "/api/me", headers=account.auth, json={})
    assert_error(r, 422, "missing_field")


async def test_delete_account_removes_every_row(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    await fill_every_table(client, owner, account)
    r = await client.request("DELETE", "/api/me", headers=account.auth,
                             json={"password": STRONG_PASSWORD})
    assert r.status_code == 204, r.text

    columns = await owner.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = 'uuid'"
    )
    assert {c["table_name"] for c in columns} >= {
        "users", "auth_sessions", "recovery_codes", "password_resets", "outbox",
        "security_events"}
    for table, column in columns:
        count = await owner.fetchval(
            f"SELECT count(*) FROM {quote_ident(table)} WHERE {quote_ident(column)} = $1",
            account.id,
        )
        assert count == 0, f"{table}.{column} still holds the deleted user"
    assert await owner.fetchval("SELECT count(*) FROM outbox WHERE recipient = $1",
                                account.email) == 0
    assert_error(await client.get("/api/me", headers=account.auth), 401, "token_invalid")
    r = await client.post("/api/auth/login",
                          json={"login": account.username, "password": STRONG_PASSWORD})
    assert_error(r, 401, "invalid_credentials")
