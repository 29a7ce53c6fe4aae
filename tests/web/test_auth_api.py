"""The accounts HTTP API end to end: registration, login, lockout, tokens, password
reset, CSRF, profile, password change, export, deletion and the auth rate limit.

Everything goes through the real app (``client``) on the real PostgreSQL; the
``owner`` connection only arranges state (moving timestamps to stand in for
time passing) and checks what the database and the audit log hold. Two-factor
and admin flows are in test_twofactor_api.py and test_admin_api.py; the shared
helpers are in api_helpers.py.
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
from persistence.migrate import quote_ident
from tests.conftest import SECRET, STRONG_PASSWORD, unique
from tests.web.api_helpers import (
    NEW_PASSWORD,
    assert_error,
    bearer,
    fill_every_table,
    kinds,
    last_event,
    login,
    register,
    reset_token_from_outbox,
    session_for,
    signup,
)
from transport.bus import InProcessBus
from web.app import create_app
from web.security import CSRF_COOKIE, SESSION_COOKIE, RateLimiter
from web.services import Services
from web.settings import Settings

# --------------------------------------------------------------------------- register


async def test_register_returns_201_and_the_user(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    username = unique("Reg")
    r = await client.post("/api/auth/register", json={
        "username": username, "email": f"{username}@Example.com", "password": STRONG_PASSWORD,
    })
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert user["username"] == username
    assert user["email"] == f"{username}@Example.com"
    assert user["role"] == "user" and user["status"] == "active"
    assert user["display_name"] == username
    assert user["privacy"] == "private" and user["totp_enabled"] is False
    assert "password" not in r.text and "$argon2" not in r.text
    stored = await owner.fetchval("SELECT password_hash FROM users WHERE id = $1",
                                  UUID(user["id"]))
    assert stored.startswith("$argon2id$") and STRONG_PASSWORD not in stored
    assert await kinds(owner, UUID(user["id"])) == ["register"]


async def test_register_duplicate_username_is_409(client: httpx.AsyncClient) -> None:
    user = await register(client)
    for name in (user["username"], user["username"].upper()):
        r = await client.post("/api/auth/register", json={
            "username": name, "email": f"{unique()}@example.com", "password": STRONG_PASSWORD,
        })
        assert_error(r, 409, "username_taken")


async def test_register_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    user = await register(client)
    for email in (user["email"], user["email"].upper()):
        r = await client.post("/api/auth/register", json={
            "username": unique(), "email": email, "password": STRONG_PASSWORD,
        })
        assert_error(r, 409, "email_taken")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt-pw", "at least 10"),
        ("password123", "commonly used"),
        ("Qwertyuiop", "commonly used"),
        ("{username}-Tape-72", "username"),
        ("aaaaaaaaaaaa", "different characters"),
    ],
)
async def test_register_weak_password_is_422(
    client: httpx.AsyncClient, owner: asyncpg.Connection, password: str, reason: str
) -> None:
    username = unique("weak")
    r = await client.post("/api/auth/register", json={
        "username": username, "email": f"{unique('mail')}@example.com",
        "password": password.format(username=username),
    })
    error = assert_error(r, 422, "weak_password")
    assert reason in error["message"]
    assert await owner.fetchval("SELECT count(*) FROM users WHERE username = $1", username) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "has space"),
        ("username", "x" * 33),
        ("username", "semi;colon"),
        ("email", "not-an-email"),
        ("email", "two@@example.com"),
        ("email", "nodot@example"),
    ],
)
async def test_register_invalid_username_or_email_is_422(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    fields = {"username": unique(), "email": f"{unique()}@example.com",
              "password": STRONG_PASSWORD, field: value}
    r = await client.post("/api/auth/register", json=fields)
    error = assert_error(r, 422, "invalid_field")
    assert error["message"].startswith(f"{field}:")


async def test_register_missing_field_and_bad_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", json={"username": unique()})
    assert_error(r, 422, "missing_field")
    r = await client.post("/api/auth/register", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert_error(r, 400, "malformed_json")
    r = await client.post("/api/auth/register", json=["a", "list"])
    assert_error(r, 422, "invalid_body")
    r = await client.post("/api/auth/register", json={
        "username": 123, "email": "a@example.com", "password": STRONG_PASSWORD})
    assert_error(r, 422, "invalid_field")


# --------------------------------------------------------------------------- login


async def test_login_by_username_and_by_email(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    for name in (user["username"], user["email"], user["email"].upper()):
        body = await login(client, name)
        assert body["user"]["id"] == user["id"]
        assert len(body["token"]) >= 40 and len(body["csrf_token"]) == 64
        assert body["expires_at"]
        r = await client.get("/api/me", headers=bearer(body["token"]))
        assert r.status_code == 200 and r.json()["user"]["id"] == user["id"]
    assert (await kinds(owner, UUID(user["id"]))).count("login.ok") == 3


async def test_login_wrong_password_is_401_and_audited(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    r = await client.post("/api/auth/login",
                          json={"login": user["username"], "password": "Wrong-Password-99"})
    error = assert_error(r, 401, "invalid_credentials")
    assert "token" not in r.text and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert (await kinds(owner, UUID(user["id"])))[-1] == "login.failed"
    # The user sees the failure in their own audit log.
    account = await session_for(client, user)
    r = await client.get("/api/me/audit", headers=account.auth)
    assert "login.failed" in [e["kind"] for e in r.json()["events"]]
    assert error["message"] == "wrong username, email or password"


async def test_login_unknown_user_is_the_same_401(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    wrong = await client.post("/api/auth/login",
                              json={"login": user["username"], "password": "Wrong-Password-99"})
    name = unique("ghost")
    unknown = await client.post("/api/auth/login",
                                json={"login": name, "password": "Wrong-Password-99"})
    assert_error(unknown, 401, "invalid_credentials")
    assert unknown.json() == wrong.json()
    row = await owner.fetchrow(
        "SELECT user_id, detail::text AS detail FROM security_events "
        "WHERE kind = 'login.unknown_user' AND detail->>'login' = $1", name,
    )
    assert row is not None and row["user_id"] is None


async def test_me_with_bearer_token(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    r = await client.get("/api/me", headers=account.auth)
    assert r.status_code == 200
    me = r.json()["user"]
    assert me["id"] == str(account.id) and me["username"] == account.username
    assert "password_hash" not in me and "totp_secret" not in me


async def test_me_with_session_cookie(client: httpx.AsyncClient) -> None:
    user = await register(client)
    r = await client.post("/api/auth/login",
                          json={"login": user["username"], "password": STRONG_PASSWORD})
    assert r.status_code == 200
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    csrf = next(c for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert "httponly" in session.lower() and "samesite=lax" in session.lower()
    assert "httponly" not in csrf.lower()
    assert client.cookies[SESSION_COOKIE] == r.json()["token"]
    assert client.cookies[CSRF_COOKIE] == r.json()["csrf_token"]
    r = await client.get("/api/me")  # the cookie only
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"] == user["id"]


async def test_me_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/me"), 401, "not_authenticated")


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


# --------------------------------------------------------------------------- tokens


async def test_expired_token_is_401_token_expired(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    await owner.execute(
        "UPDATE auth_sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        account.id,
    )
    assert_error(await client.get("/api/me", headers=account.auth), 401, "token_expired")
    rejected = await last_event(owner, account.id, "token.rejected")
    assert rejected["detail"] == {"reason": "token_expired"}


async def test_logout_revokes_the_token(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    other = await login(client, account.username)  # a second session stays open
    client.cookies.clear()
    r = await client.post("/api/auth/logout", headers=account.auth)
    assert r.status_code == 204
    assert_error(await client.get("/api/me", headers=account.auth), 401, "token_revoked")
    assert_error(await client.post("/api/auth/logout", headers=account.auth), 401,
                 "token_revoked")
    assert (await client.get("/api/me", headers=bearer(other["token"]))).status_code == 200
    found = await kinds(owner, account.id)
    assert "logout" in found
    rejected = await last_event(owner, account.id, "token.rejected")
    assert rejected["detail"] == {"reason": "token_revoked"}


async def test_logout_clears_the_cookies(client: httpx.AsyncClient) -> None:
    user = await register(client)
    body = await login(client, user["username"])
    r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code == 204, r.text
    cleared = " ".join(r.headers.get_list("set-cookie"))
    assert f'{SESSION_COOKIE}=""' in cleared and f'{CSRF_COOKIE}=""' in cleared
    assert SESSION_COOKIE not in client.cookies
    assert_error(await client.get("/api/me"), 401, "not_authenticated")


@pytest.mark.parametrize("token", ["garbage", "x" * 43, "y" * 201])
async def test_garbage_token_is_401_token_invalid(
    client: httpx.AsyncClient, token: str
) -> None:
    assert_error(await client.get("/api/me", headers=bearer(token)), 401, "token_invalid")


async def test_garbage_session_cookie_is_401_token_invalid(client: httpx.AsyncClient) -> None:
    client.cookies.set(SESSION_COOKIE, "not-a-session")
    assert_error(await client.get("/api/me"), 401, "token_invalid")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc",
                                    "bearer-token"])
async def test_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, header: str
) -> None:
    r = await client.get("/api/me", headers={"Authorization": header})
    error = assert_error(r, 401, "token_invalid")
    assert "Bearer" in error["message"]


async def test_malformed_header_wins_over_a_valid_cookie(client: httpx.AsyncClient) -> None:
    user = await register(client)
    await login(client, user["username"])  # the session cookie is now set
    r = await client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(r, 401, "token_invalid")


async def test_bearer_token_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    r = await client.get("/api/me", headers={"Authorization": f"bearer {account.token}"})
    assert r.status_code == 200


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


# --------------------------------------------------------------------------- CSRF


async def test_cookie_requests_need_the_csrf_header(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await register(client)
    body = await login(client, user["username"])  # the client now holds the cookies
    r = await client.patch("/api/me", json={"bio": "no csrf"})
    assert_error(r, 403, "csrf_failed")
    refused = await last_event(owner, UUID(user["id"]), "csrf.failed")
    assert refused["detail"] == {"path": "/api/me"}

    r = await client.patch("/api/me", json={"bio": "wrong csrf"},
                           headers={"X-CSRF-Token": "0" * 64})
    assert_error(r, 403, "csrf_failed")
    assert (await kinds(owner, UUID(user["id"]))).count("csrf.failed") == 2

    r = await client.patch("/api/me", json={"bio": "with csrf"},
                           headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["bio"] == "with csrf"
    # Safe methods need no CSRF header.
    assert (await client.get("/api/me")).json()["user"]["bio"] == "with csrf"


async def test_csrf_token_of_another_session_is_refused(client: httpx.AsyncClient) -> None:
    user = await register(client)
    first = await login(client, user["username"])
    await login(client, user["username"])  # the cookie now holds the second session
    r = await client.patch("/api/me", json={"bio": "x"},
                           headers={"X-CSRF-Token": first["csrf_token"]})
    assert_error(r, 403, "csrf_failed")


async def test_cookie_logout_needs_the_csrf_header(client: httpx.AsyncClient) -> None:
    user = await register(client)
    body = await login(client, user["username"])
    assert_error(await client.post("/api/auth/logout"), 403, "csrf_failed")
    assert (await client.get("/api/me")).status_code == 200  # the session is still open
    r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code == 204


async def test_bearer_requests_need_no_csrf_header(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    assert not client.cookies
    r = await client.patch("/api/me", json={"bio": "bearer"}, headers=account.auth)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["bio"] == "bearer"


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
