"""Sessions over HTTP: expired, revoked, garbage and malformed tokens, logout (tokens and
cookies), and the CSRF header that cookie-authenticated requests need.

Conventions and shared helpers: tests/web/api_helpers.py.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.web.api_helpers import assert_error, bearer, kinds, last_event, login, register, signup
from web.security import CSRF_COOKIE, SESSION_COOKIE

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
