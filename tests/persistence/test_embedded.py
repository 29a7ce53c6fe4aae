"""The embedded PostgreSQL default: started on demand, stopped on release, reused on restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from persistence.embedded import DATABASE_NAME, EmbeddedPostgres, with_database


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of a running postmaster for ``pgdata``, or None when none runs."""
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
    except (FileNotFoundError, IndexError):
        return None
    pid = int(first)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # it exists, as another user (pgserver's, when run as root)
        pass
    return pid


async def test_start_stop_restart_reuses_the_cluster(private_dir: Path) -> None:
    embedded = EmbeddedPostgres(private_dir)
    assert embedded.pgdata == private_dir / "pgdata"

    url = await asyncio.to_thread(embedded.start)
    try:
        assert postmaster_pid(embedded.pgdata) is not None
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == DATABASE_NAME
            await conn.execute("CREATE TABLE kept (note text)")
            await conn.execute("INSERT INTO kept VALUES ('first run')")
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(embedded.stop)
    assert postmaster_pid(embedded.pgdata) is None, "the last user let go: the server stops"
    # Stopping twice is harmless.
    await asyncio.to_thread(embedded.stop)

    again = EmbeddedPostgres(private_dir)
    url2 = await asyncio.to_thread(again.start)
    try:
        conn = await asyncpg.connect(url2)
        try:
            assert await conn.fetchval("SELECT note FROM kept") == "first run"
            databases = await conn.fetchval(
                "SELECT count(*) FROM pg_database WHERE datname = $1", DATABASE_NAME
            )
            assert databases == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(again.stop)
    assert postmaster_pid(again.pgdata) is None


def test_with_database_replaces_only_the_path() -> None:
    url = "postgresql://postgres:@/postgres?host=/tmp/sock%20dir&port=5432"
    assert with_database(url, "retoone") == (
        "postgresql://postgres:@/retoone?host=/tmp/sock%20dir&port=5432"
    )
    assert with_database("postgresql://u@h:5432/db", "other db") == (
        "postgresql://u@h:5432/other%20db"
    )
