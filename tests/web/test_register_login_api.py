"""Registering and logging in over HTTP: the new user, duplicate and invalid fields, weak
passwords, login by username or email, wrong passwords and unknown users (one answer for
both), and ``/api/me`` with a Bearer token or the session cookie.

Conventions and shared helpers: tests/web/api_helpers.py.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.conftest import STRONG_PASSWORD, unique
from tests.web.api_helpers import assert_error, bearer, kinds, login, register, session_for, signup
from web.security import CSRF_COOKIE, SESSION_COOKIE

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
