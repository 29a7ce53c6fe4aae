"""Shared fixtures: a real PostgreSQL (never a mock), a fresh database per test run.

``RETOONE_TEST_DATABASE_URL`` (or else ``RETOONE_DATABASE_URL``) points at a
server to use (CI has one on 127.0.0.1:5432); without either, the embedded
PostgreSQL (pgserver) starts in a temporary directory. Either way the run
creates its own database and drops it (and its app role) at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest

from accounts.context import Accounts, AccountsConfig
from accounts.passwords import HashCost, Passwords
from persistence.db import Database
from persistence.embedded import EmbeddedPostgres, with_database
from persistence.migrate import app_role_name, quote_ident
from transport.bus import InProcessBus
from web.app import create_app
from web.security import RateLimiter
from web.services import Services
from web.settings import Settings

SECRET = b"test-secret-key-0123456789abcdef"
# Cheap argon2id for tests; perf/auth.py measures the production cost.
TEST_COST = HashCost(time_cost=1, memory_kib=8 * 1024, parallelism=1)
STRONG_PASSWORD = "Violet-Harmonic-Tape-72"


@contextmanager
def private_tmp_dir() -> Iterator[Path]:
    """A directory for an embedded cluster, outside pytest's tmp root.

    As root, pgserver runs PostgreSQL as its own ``pgserver`` user, which must
    traverse to the data dir; pytest resets ``/tmp/pytest-of-<user>`` to mode 0700
    whenever a session starts (a concurrent one included), which would lock that
    user out of a running server's files.
    """
    path = Path(tempfile.mkdtemp(prefix="retoone-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def private_dir() -> Iterator[Path]:
    with private_tmp_dir() as path:
        yield path


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str = "retoone_scratch") -> AsyncIterator[str]:
    """A new empty database on the test server; dropped (with its app role) afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        try:
            yield with_database(server_url, name)
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
            await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(app_role_name(name))}")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("RETOONE_TEST_DATABASE_URL") or os.environ.get("RETOONE_DATABASE_URL")
    if url:
        yield url
        return
    with private_tmp_dir() as where:
        embedded = EmbeddedPostgres(where)
        try:
            yield embedded.start()
        finally:
            embedded.stop()


@pytest.fixture(scope="session")
async def test_db_url(pg_server_url: str) -> AsyncIterator[str]:
    async with scratch_database(pg_server_url, "retoone_test") as url:
        yield url


@pytest.fixture(scope="session")
async def db(test_db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(test_db_url, SECRET, max_size=8)
    yield database
    await database.close()


@pytest.fixture
async def owner(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """A migration-owner connection (bypasses RLS): for arranging and checking only."""
    conn = await asyncpg.connect(db.owner_url)
    yield conn
    await conn.close()


def make_accounts(db: Database, **config: object) -> Accounts:
    base = AccountsConfig(public_url="http://testserver")
    cfg = AccountsConfig(**{**base.__dict__, **config})  # type: ignore[arg-type]
    return Accounts(db, SECRET, Passwords(TEST_COST), cfg)


@pytest.fixture
def accounts(db: Database) -> Accounts:
    return make_accounts(db, lockout_window=timedelta(minutes=15))


def unique(prefix: str = "user") -> str:
    return f"{prefix}{uuid4().hex[:10]}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key=SECRET.decode(), public_url="http://testserver",
                    auth_rate_limit=100_000)


@pytest.fixture
async def client(
    db: Database, accounts: Accounts, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(settings=settings, db=db, accounts=accounts, bus=InProcessBus(),
                        rate_limiter=RateLimiter(settings.auth_rate_limit), owns_db=False)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
