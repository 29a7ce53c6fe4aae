"""The admin API over HTTP: who may use it, listing users, suspending and reactivating
accounts, changing roles, and which audit rows each caller can read.

Admins are made through the ``owner`` connection, as ``retoone user create
--admin`` does; everything else goes through the app.
"""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import httpx

from persistence.db import Database
from tests.conftest import STRONG_PASSWORD
from tests.web.api_helpers import (
    Account,
    assert_error,
    kinds,
    last_event,
    login,
    signup,
)


async def make_admin(client: httpx.AsyncClient, owner: asyncpg.Connection) -> Account:
    admin = await signup(client, prefix="admin")
    await owner.execute("UPDATE users SET role = 'admin' WHERE id = $1", admin.id)
    return admin


async def test_non_admin_is_forbidden(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    user = await signup(client)
    other = await signup(client)
    calls = [
        ("GET", "/api/admin/users", None),
        ("GET", "/api/admin/audit", None),
        ("POST", f"/api/admin/users/{other.id}/suspend", None),
        ("POST", f"/api/admin/users/{other.id}/reactivate", None),
        ("POST", f"/api/admin/users/{user.id}/role", {"role": "admin"}),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, headers=user.auth, json=body)
        assert_error(r, 403, "forbidden")
    assert await owner.fetchval("SELECT role FROM users WHERE id = $1", user.id) == "user"
    assert await owner.fetchval("SELECT status FROM users WHERE id = $1", other.id) == "active"
    assert_error(await client.get("/api/admin/users"), 401, "not_authenticated")


async def test_admin_lists_users(client: httpx.AsyncClient, owner: asyncpg.Connection) -> None:
    admin = await make_admin(client, owner)
    user = await signup(client)
    r = await client.get("/api/admin/users", headers=admin.auth, params={"q": user.username})
    assert r.status_code == 200, r.text
    found = r.json()["users"]
    assert [u["id"] for u in found] == [str(user.id)]
    assert found[0]["email"] == user.email and found[0]["status"] == "active"
    assert "password_hash" not in r.text and "totp_secret" not in r.text

    r = await client.get("/api/admin/users", headers=admin.auth, params={"limit": 2})
    assert r.status_code == 200 and len(r.json()["users"]) == 2
    for bad in ({"limit": 0}, {"limit": "many"}, {"offset": -1}):
        r = await client.get("/api/admin/users", headers=admin.auth, params=bad)
        assert_error(r, 422, "invalid_field")


async def test_suspend_ends_sessions_and_blocks_login_until_reactivated(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    admin = await make_admin(client, owner)
    user = await signup(client)

    r = await client.post(f"/api/admin/users/{user.id}/suspend", headers=admin.auth)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["status"] == "suspended"
    suspended = await last_event(owner, user.id, "admin.suspended")
    assert suspended["actor_id"] == admin.id
    assert suspended["detail"] == {"status": "suspended", "was": "active", "sessions_ended": 1}

    # The user's open session ended at once.
    assert_error(await client.get("/api/me", headers=user.auth), 401, "token_revoked")
    rejected = await last_event(owner, user.id, "token.rejected")
    assert rejected["detail"] == {"reason": "token_revoked"}
    # And they cannot log in (the right password is not enough).
    r = await client.post("/api/auth/login",
                          json={"login": user.username, "password": STRONG_PASSWORD})
    assert_error(r, 403, "account_suspended")
    assert "token" not in r.json()
    assert "login.suspended" in await kinds(owner, user.id)
    # A wrong password still reads as a wrong password.
    r = await client.post("/api/auth/login",
                          json={"login": user.username, "password": "Wrong-Password-99"})
    assert_error(r, 401, "invalid_credentials")

    r = await client.post(f"/api/admin/users/{user.id}/reactivate", headers=admin.auth)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["status"] == "active"
    assert (await last_event(owner, user.id, "admin.reactivated"))["actor_id"] == admin.id
    # The old session stays ended; a new login works.
    assert_error(await client.get("/api/me", headers=user.auth), 401, "token_revoked")
    fresh = await login(client, user.username)
    headers = {"Authorization": f"Bearer {fresh['token']}"}
    assert (await client.get("/api/me", headers=headers)).status_code == 200


async def test_admin_reactivate_clears_a_lockout(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    admin = await make_admin(client, owner)
    user = await signup(client)
    for _ in range(5):
        r = await client.post("/api/auth/login",
                              json={"login": user.username, "password": "Wrong-Password-99"})
        assert_error(r, 401, "invalid_credentials")
    r = await client.post("/api/auth/login",
                          json={"login": user.username, "password": STRONG_PASSWORD})
    assert_error(r, 423, "account_locked")

    r = await client.post(f"/api/admin/users/{user.id}/reactivate", headers=admin.auth)
    assert r.status_code == 200, r.text
    body = await login(client, user.username)
    assert body["user"]["id"] == str(user.id)


async def test_admin_cannot_change_themselves_or_unknown_users(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    admin = await make_admin(client, owner)
    for action in ("suspend", "reactivate"):
        r = await client.post(f"/api/admin/users/{admin.id}/{action}", headers=admin.auth)
        assert_error(r, 403, "forbidden")
    r = await client.post(f"/api/admin/users/{admin.id}/role", headers=admin.auth,
                          json={"role": "user"})
    assert_error(r, 403, "forbidden")
    assert await owner.fetchval("SELECT role FROM users WHERE id = $1", admin.id) == "admin"

    r = await client.post(f"/api/admin/users/{uuid4()}/suspend", headers=admin.auth)
    assert_error(r, 404, "not_found")
    r = await client.post("/api/admin/users/not-a-uuid/suspend", headers=admin.auth)
    assert_error(r, 404, "not_found")


async def test_role_change(client: httpx.AsyncClient, owner: asyncpg.Connection) -> None:
    admin = await make_admin(client, owner)
    user = await signup(client)
    url = f"/api/admin/users/{user.id}/role"

    r = await client.post(url, headers=admin.auth, json={"role": "superuser"})
    error = assert_error(r, 422, "invalid_field")
    assert error["message"].startswith("role:")
    assert_error(await client.post(url, headers=admin.auth, json={}), 422, "missing_field")

    r = await client.post(url, headers=admin.auth, json={"role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "admin"
    changed = await last_event(owner, user.id, "admin.role_changed")
    assert changed["actor_id"] == admin.id
    assert changed["detail"] == {"role": "admin", "was": "user"}
    # The promotion applies to the user's existing session at once.
    assert (await client.get("/api/admin/users", headers=user.auth)).status_code == 200

    r = await client.post(url, headers=admin.auth, json={"role": "user"})
    assert r.status_code == 200 and r.json()["user"]["role"] == "user"
    assert_error(await client.get("/api/admin/users", headers=user.auth), 403, "forbidden")


async def test_admin_audit_shows_other_users_events(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    admin = await make_admin(client, owner)
    user = await signup(client)
    await client.post("/api/auth/login",
                      json={"login": user.username, "password": "Wrong-Password-99"})

    r = await client.get("/api/admin/audit", headers=admin.auth,
                         params={"user_id": str(user.id)})
    assert r.status_code == 200, r.text
    found = r.json()["events"]
    assert {e["user_id"] for e in found} == {str(user.id)}
    assert [e["kind"] for e in found] == ["login.failed", "login.ok", "register"]  # newest first
    ids = [e["id"] for e in found]
    assert ids == sorted(ids, reverse=True)

    # Unfiltered, the admin sees several users' rows; paging with ``before`` goes back.
    r = await client.get("/api/admin/audit", headers=admin.auth, params={"limit": 1000})
    users_seen = {e["user_id"] for e in r.json()["events"]}
    assert {str(user.id), str(admin.id)} <= users_seen
    r = await client.get("/api/admin/audit", headers=admin.auth,
                         params={"user_id": str(user.id), "before": ids[0]})
    assert [e["id"] for e in r.json()["events"]] == ids[1:]

    r = await client.get("/api/admin/audit", headers=admin.auth, params={"user_id": "nope"})
    assert_error(r, 422, "invalid_field")


async def test_user_audit_shows_only_their_own_rows(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    admin = await make_admin(client, owner)
    user = await signup(client)
    other = await signup(client)
    await client.post(f"/api/admin/users/{other.id}/suspend", headers=admin.auth)
    await client.post("/api/auth/login",
                      json={"login": other.username, "password": "Wrong-Password-99"})
    r = await client.post(f"/api/admin/users/{user.id}/role", headers=admin.auth,
                          json={"role": "user"})
    assert r.status_code == 200  # an event about the user, done by the admin

    r = await client.get("/api/me/audit", headers=user.auth, params={"limit": 1000})
    assert r.status_code == 200, r.text
    found = r.json()["events"]
    assert found and {e["user_id"] for e in found} == {str(user.id)}
    assert {"register", "login.ok", "admin.role_changed"} <= {e["kind"] for e in found}
    assert all(e["user_id"] != str(other.id) for e in found)

    # Even the admin's own /api/me/audit is only about the admin.
    r = await client.get("/api/me/audit", headers=admin.auth, params={"limit": 1000})
    assert {e["user_id"] for e in r.json()["events"]} == {str(admin.id)}


async def test_suspended_admin_loses_admin_rights(
    client: httpx.AsyncClient, owner: asyncpg.Connection, db: Database
) -> None:
    first = await make_admin(client, owner)
    second = await make_admin(client, owner)
    r = await client.post(f"/api/admin/users/{second.id}/suspend", headers=first.auth)
    assert r.status_code == 200
    assert await owner.fetchval("SELECT status FROM users WHERE id = $1", second.id) == "suspended"
    # Their session ended; and the database no longer treats them as an admin.
    assert_error(await client.get("/api/admin/users", headers=second.auth), 401,
                 "token_revoked")
    async with db.as_user(second.id) as conn:
        assert not await conn.fetchval("SELECT app_is_admin()")
