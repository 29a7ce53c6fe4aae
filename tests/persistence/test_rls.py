"""Row-level security: user B can never read, change or delete user A's rows.

The tables are enumerated from the catalog, so a new table that holds user data
without RLS, without policies, or without a row made by the exercise below
fails here until it is covered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pyotp
import pytest

from accounts import auth, reset, twofactor, users
from accounts.context import Accounts
from persistence.db import Database
from tests.conftest import STRONG_PASSWORD, unique

NOT_USER_DATA = {"schema_migrations"}


@dataclass
class Pair:
    a: UUID
    b: UUID
    a_token: str
    b_token: str


async def user_tables(owner: asyncpg.Connection) -> list[str]:
    rows = await owner.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    return [r["relname"] for r in rows if r["relname"] not in NOT_USER_DATA]


async def owner_column(owner: asyncpg.Connection, table: str) -> str:
    columns = {
        r["attname"]
        for r in await owner.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
            "AND NOT attisdropped",
            table,
        )
    }
    if table == "users":
        return "id"
    assert "user_id" in columns, f"{table}: user-data tables need a user_id column"
    return "user_id"


async def exercise(accounts: Accounts, name: str) -> tuple[UUID, str]:
    """Create a user with a row in every table: sessions, 2FA, reset, outbox, audit."""
    user = await users.register(accounts, name, f"{name}@example.com", STRONG_PASSWORD)
    login = await auth.login(accounts, name, STRONG_PASSWORD)
    enrolment = await twofactor.enrol(accounts, user.id)
    await twofactor.confirm(accounts, user.id, pyotp.TOTP(enrolment.secret).now())
    await reset.request_reset(accounts, name)
    return user.id, login.token


@pytest.fixture
async def pair(accounts: Accounts) -> Pair:
    a, a_token = await exercise(accounts, unique("alice"))
    b, b_token = await exercise(accounts, unique("bob"))
    return Pair(a, b, a_token, b_token)


async def test_every_user_table_forces_rls_with_policies(owner: asyncpg.Connection) -> None:
    tables = await user_tables(owner)
    assert "users" in tables and "security_events" in tables
    for table in tables:
        row = await owner.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) AS policies "
            "FROM pg_class c WHERE oid = $1::regclass",
            table,
        )
        assert row["relrowsecurity"], f"{table}: ROW LEVEL SECURITY is not enabled"
        assert row["relforcerowsecurity"], f"{table}: ROW LEVEL SECURITY is not forced"
        assert row["policies"] > 0, f"{table}: no policies"
        policy_text = await owner.fetchval(
            "SELECT string_agg(coalesce(pg_get_expr(polqual, polrelid), '') || ' ' || "
            "coalesce(pg_get_expr(polwithcheck, polrelid), ''), ' ') "
            "FROM pg_policy WHERE polrelid = $1::regclass",
            table,
        )
        assert "app_user_id()" in policy_text, f"{table}: policies ignore app.user_id"


async def test_app_role_is_unprivileged(db: Database, owner: asyncpg.Connection) -> None:
    role = await owner.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", db.app_role
    )
    assert role is not None
    assert not role["rolsuper"]
    assert not role["rolbypassrls"]
    owned = await owner.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = $1",
        db.app_role,
    )
    assert owned == 0
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == db.app_role
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM schema_migrations")


async def test_no_user_context_sees_no_user_rows(
    db: Database, owner: asyncpg.Connection, pair: Pair
) -> None:
    for table in await user_tables(owner):
        assert await owner.fetchval(f"SELECT count(*) FROM {table}") > 0
        async with db.anonymous() as conn:
            seen = await conn.fetchval(f"SELECT count(*) FROM {table}")
        assert seen == 0, f"{table}: {seen} rows visible without a user context"


async def _row_of(owner: asyncpg.Connection, table: str, column: str, user: UUID) -> dict[str, Any]:
    row = await owner.fetchrow(f"SELECT * FROM {table} WHERE {column} = $1 LIMIT 1", user)
    assert row is not None, f"{table}: the exercise made no row for user A; cover this table"
    return dict(row)


async def _forge_insert(conn: asyncpg.Connection, table: str, row: dict[str, Any]) -> None:
    """Try to insert a copy of A's row (fresh keys) while the context is B."""
    row = dict(row)
    identity = {
        r["attname"]
        for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
            "AND attidentity <> ''",
            table,
        )
    }
    for col in identity:
        row.pop(col, None)
    if table == "users":
        row["id"] = uuid4()
        row["username"] = unique("forged")
        row["email"] = f"{row['username']}@example.com"
    elif isinstance(row.get("id"), UUID):
        row["id"] = uuid4()
    for key in ("token_hash",):
        if key in row:
            row[key] = uuid4().bytes
    for key, value in row.items():
        if isinstance(value, dict | list) and key == "detail":
            row[key] = json.dumps(value)
    cols = list(row)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(cols)))
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders})", *row.values()
    )


async def test_user_b_cannot_touch_user_a_rows_in_any_table(
    db: Database, owner: asyncpg.Connection, pair: Pair
) -> None:
    for table in await user_tables(owner):
        column = await owner_column(owner, table)
        a_row = await _row_of(owner, table, column, pair.a)
        before = await owner.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", pair.a)

        async with db.as_user(pair.b) as conn:
            assert await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE {column} = $1", pair.a
            ) == 0, f"{table}: B reads A's rows"
            visible_owners = {
                r[0] for r in await conn.fetch(f"SELECT DISTINCT {column} FROM {table}")
            }
            assert visible_owners <= {pair.b}, f"{table}: B sees rows of {visible_owners}"
            updated = await conn.execute(
                f"UPDATE {table} SET {column} = {column} WHERE {column} = $1", pair.a
            )
            assert updated == "UPDATE 0", f"{table}: B updated A's rows"
            deleted = await conn.execute(f"DELETE FROM {table} WHERE {column} = $1", pair.a)
            assert deleted == "DELETE 0", f"{table}: B deleted A's rows"

        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.as_user(pair.b) as conn:
                await _forge_insert(conn, table, a_row)

        after = await owner.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", pair.a)
        assert after == before, f"{table}: A's rows changed"


async def test_b_cannot_move_own_rows_to_a(db: Database, pair: Pair) -> None:
    """WITH CHECK: B may not hand a row over to A either."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(pair.b) as conn:
            await conn.execute(
                "UPDATE auth_sessions SET user_id = $1 WHERE user_id = $2", pair.a, pair.b
            )


async def test_user_cannot_grant_themselves_admin(db: Database, pair: Pair) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(pair.b) as conn:
            await conn.execute("UPDATE users SET role = 'admin' WHERE id = $1", pair.b)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(pair.b) as conn:
            await conn.execute("SET LOCAL ROLE postgres")


async def test_api_never_shows_a_to_b(client: httpx.AsyncClient, pair: Pair) -> None:
    headers = {"Authorization": f"Bearer {pair.b_token}"}
    me = (await client.get("/api/me", headers=headers)).json()
    assert me["user"]["id"] == str(pair.b)
    audit_rows = (await client.get("/api/me/audit", headers=headers)).json()["events"]
    assert audit_rows and all(e["user_id"] == str(pair.b) for e in audit_rows)
    export = (await client.get("/api/me/export", headers=headers)).json()
    text = json.dumps(export)
    assert str(pair.a) not in text
    assert str(pair.b) in text
    for path in ("/api/admin/users", "/api/admin/audit"):
        refused = await client.get(path, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    role = await client.post(
        f"/api/admin/users/{pair.a}/role", headers=headers, json={"role": "admin"}
    )
    assert role.status_code == 403


async def test_only_admins_may_end_other_users_sessions(db: Database, pair: Pair) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.as_user(pair.b) as conn:
            await conn.fetchval("SELECT admin_revoke_sessions($1)", pair.a)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.anonymous() as conn:
            await conn.fetchval("SELECT admin_revoke_sessions($1)", pair.a)
