"""The database handle: an owner connection for migrations, an app-role pool for everything else.

Every query about user data runs inside ``async with db.as_user(user_id) as conn``:
a transaction on an app-role connection with ``app.user_id`` set for that
transaction only (``set_config(..., is_local => true)``, i.e. ``SET LOCAL``).
Row-level security policies read that setting; a connection without it sees no
user rows. ``db.anonymous()`` is the same transaction with no user, for the
narrow SECURITY DEFINER look-ups (login name to id, token hash to session).

Thread: asyncio event loop only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
import asyncpg.pool

from persistence.migrate import app_role_name, migrate

# What ``as_user``/``anonymous`` yield: a pooled connection (it has Connection's methods).
Connection = asyncpg.pool.PoolConnectionProxy


def app_role_password(secret_key: bytes, database: str) -> str:
    """Derive the app role's password from the server secret (stable across restarts)."""
    return hmac.new(secret_key, b"app-role:" + database.encode(), hashlib.sha256).hexdigest()


class Database:
    """An open database: the app-role pool plus the owner URL used to migrate."""

    def __init__(self, owner_url: str, pool: asyncpg.Pool, app_role: str, database: str) -> None:
        self.owner_url = owner_url
        self.pool = pool
        self.app_role = app_role
        self.database = database
        self.applied_migrations: list[int] = []

    @classmethod
    async def open(
        cls,
        owner_url: str,
        secret_key: bytes,
        *,
        run_migrations: bool = True,
        min_size: int = 1,
        max_size: int = 10,
    ) -> Database:
        """Migrate with the owner URL, then open a pool as the unprivileged app role."""
        owner = await asyncpg.connect(owner_url)
        try:
            database: str = await owner.fetchval("SELECT current_database()")
            password = app_role_password(secret_key, database)
            applied = await migrate(owner, password) if run_migrations else []
        finally:
            await owner.close()
        role = app_role_name(database)
        pool = await asyncpg.create_pool(
            owner_url, user=role, password=password, min_size=min_size, max_size=max_size
        )
        db = cls(owner_url, pool, role, database)
        db.applied_migrations = applied
        return db

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def as_user(self, user_id: UUID) -> AsyncIterator[Connection]:
        """A transaction in which row-level security sees ``user_id`` as the current user."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('app.user_id', $1, true)", str(user_id))
            yield conn

    @asynccontextmanager
    async def anonymous(self) -> AsyncIterator[Connection]:
        """A transaction with no user: user rows are invisible; definer look-ups work."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
