"""Numbered plain-SQL migrations, applied in order, recorded, idempotent.

Files live in ``persistence/migrations/NNNN_name.sql``. Each runs in its own
transaction; ``schema_migrations`` records the version, name and checksum. A
changed file whose version was already applied is an error, not a silent skip.
Concurrent migrators (two server processes starting at once) serialise on an
advisory lock.

After the migrations, the application role is (re)created and granted DML on
every table but ``schema_migrations``: it is LOGIN, not superuser, not
BYPASSRLS, owns nothing, and so is bound by every row-level security policy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

_LOCK_KEY = 0x7E70_0E01  # advisory lock id for "retoone migrations"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The database cannot be brought to the current schema."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Read the packaged migration files, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files("persistence.migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def app_role_name(database: str) -> str:
    """The application role for ``database`` (one per database, so test DBs stay apart)."""
    return (database + "_app")[:63]


async def migrate(conn: asyncpg.Connection, app_password: str) -> list[int]:
    """Apply pending migrations on an owner connection; return the versions applied."""
    privileged = await conn.fetchval(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    if not privileged:
        raise MigrationError(
            "migrations need an owner connection whose role is superuser or BYPASSRLS "
            "(the SECURITY DEFINER look-ups rely on it); connect with such a role"
        )
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for m in load_migrations():
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            applied.append(m.version)
        await _ensure_app_role(conn, app_password)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


async def _ensure_app_role(conn: asyncpg.Connection, password: str) -> None:
    database: str = await conn.fetchval("SELECT current_database()")
    role = quote_ident(app_role_name(database))
    exists = await conn.fetchval(
        "SELECT 1 FROM pg_roles WHERE rolname = $1", app_role_name(database)
    )
    async with conn.transaction():
        if not exists:
            await conn.execute(f"CREATE ROLE {role} LOGIN")
        # Password literals cannot be bind parameters; quote it as a literal.
        literal = "'" + password.replace("'", "''") + "'"
        await conn.execute(
            f"ALTER ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
            f"NOREPLICATION PASSWORD {literal}"
        )
        await conn.execute(f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {role}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        await conn.execute(f"REVOKE ALL ON schema_migrations FROM {role}")
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        await conn.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}")
