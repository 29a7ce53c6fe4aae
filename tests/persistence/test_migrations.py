"""Migrations: applied once, recorded with checksums, guarded; the app role stays powerless."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from persistence.db import Database
from persistence.migrate import (
    MigrationError,
    app_role_name,
    load_migrations,
    migrate,
    quote_ident,
)
from tests.conftest import scratch_database

APP_PASSWORD = "app-role-password-for-tests"


@pytest.fixture
async def scratch_owner(pg_server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An owner connection to a fresh, unmigrated database."""
    async with scratch_database(pg_server_url) as url:
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()


def test_migration_files_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert load_migrations()[0].name == "accounts"


async def test_migrate_applies_once_and_records_checksums(
    scratch_owner: asyncpg.Connection,
) -> None:
    expected = load_migrations()
    assert await migrate(scratch_owner, APP_PASSWORD) == [m.version for m in expected]
    assert await migrate(scratch_owner, APP_PASSWORD) == []

    rows = await scratch_owner.fetch(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    )
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (m.version, m.name, hashlib.sha256(m.sql.encode()).hexdigest()) for m in expected
    ]
    assert await scratch_owner.fetchval("SELECT to_regclass('public.users') IS NOT NULL")


async def test_changed_migration_is_an_error(scratch_owner: asyncpg.Connection) -> None:
    await migrate(scratch_owner, APP_PASSWORD)
    await scratch_owner.execute(
        "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1"
    )
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(scratch_owner, APP_PASSWORD)
    # The advisory lock was released on the way out: a fixed record migrates again.
    await scratch_owner.execute(
        "UPDATE schema_migrations SET checksum = $1 WHERE version = 1",
        load_migrations()[0].checksum,
    )
    assert await migrate(scratch_owner, APP_PASSWORD) == []


async def test_concurrent_migrators_apply_each_migration_once(pg_server_url: str) -> None:
    async with scratch_database(pg_server_url) as url:
        first, second = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            results = await asyncio.gather(
                migrate(first, APP_PASSWORD), migrate(second, APP_PASSWORD)
            )
            all_versions = [m.version for m in load_migrations()]
            assert sorted(results) == [[], all_versions]
            assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(
                all_versions
            )
        finally:
            await first.close()
            await second.close()


async def test_migrate_refuses_an_unprivileged_connection(pg_server_url: str) -> None:
    role = f"retoone_plain_{secrets.token_hex(4)}"
    password = secrets.token_hex(16)
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(
        f"CREATE ROLE {quote_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'"
    )
    try:
        async with scratch_database(pg_server_url) as url:
            plain = await asyncpg.connect(url, user=role, password=password)
            try:
                with pytest.raises(MigrationError, match="superuser or BYPASSRLS"):
                    await migrate(plain, APP_PASSWORD)
            finally:
                await plain.close()
            owner = await asyncpg.connect(url)
            try:
                assert await owner.fetchval("SELECT to_regclass('schema_migrations')") is None
            finally:
                await owner.close()
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(role)}")
        await admin.close()


async def test_app_role_is_unprivileged(db: Database, owner: asyncpg.Connection) -> None:
    assert db.app_role == app_role_name(db.database)
    role = await owner.fetchrow(
        "SELECT oid, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication, "
        "rolcanlogin FROM pg_roles WHERE rolname = $1",
        db.app_role,
    )
    assert role is not None
    assert role["rolcanlogin"]
    assert not role["rolsuper"]
    assert not role["rolbypassrls"]
    assert not role["rolcreatedb"]
    assert not role["rolcreaterole"]
    assert not role["rolreplication"]
    member_of = await owner.fetch(
        "SELECT roleid::regrole::text AS r FROM pg_auth_members WHERE member = $1", role["oid"]
    )
    assert [r["r"] for r in member_of] == []

    # And the pool really connects as it.
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == db.app_role


async def test_app_role_owns_nothing(db: Database, owner: asyncpg.Connection) -> None:
    oid = await owner.fetchval("SELECT oid FROM pg_roles WHERE rolname = $1", db.app_role)
    owned = {
        "relations": await owner.fetch(
            "SELECT relname FROM pg_class WHERE relowner = $1", oid
        ),
        "functions": await owner.fetch("SELECT proname FROM pg_proc WHERE proowner = $1", oid),
        "schemas": await owner.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspowner = $1", oid
        ),
        "types": await owner.fetch("SELECT typname FROM pg_type WHERE typowner = $1", oid),
        "databases": await owner.fetch(
            "SELECT datname FROM pg_database WHERE datdba = $1", oid
        ),
    }
    assert {kind: [tuple(r) for r in rows] for kind, rows in owned.items() if rows} == {}

    # The public schema's tables, sequences and functions exist and belong to someone else.
    counts = await owner.fetchrow(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')) AS relations, "
        "       (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "        WHERE n.nspname = 'public') AS functions"
    )
    assert counts is not None
    assert counts["relations"] > 0
    assert counts["functions"] > 0


async def test_app_role_cannot_touch_schema_migrations(
    db: Database, owner: asyncpg.Connection
) -> None:
    for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        assert not await owner.fetchval(
            "SELECT has_table_privilege($1, 'schema_migrations', $2)", db.app_role, privilege
        )
    async with db.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM schema_migrations")
