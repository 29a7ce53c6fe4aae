"""The ``retoone`` command line, run as real processes against a scratch database."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from persistence.migrate import load_migrations
from tests.conftest import STRONG_PASSWORD, scratch_database, unique

RETOONE = Path(sys.executable).with_name("retoone")
TIMEOUT_S = 60.0


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """stderr (where the CLI talks) with rich's line wrapping undone."""
        return " ".join(self.stderr.split())


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without RETOONE_* settings, plus a fixed secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETOONE_")}
    env["RETOONE_SECRET_KEY"] = "cli-test-secret-" + secrets.token_hex(8)
    env["HOME"] = str(tmp_path / "home")  # nothing may land in the real home directory
    env["COLUMNS"] = "200"  # rich would shorten a long outbox heading to 80 columns
    return env


@pytest.fixture
async def scratch_url(pg_server_url: str) -> AsyncIterator[str]:
    async with scratch_database(pg_server_url, "retoone_cli") as url:
        yield url


async def retoone(env: dict[str, str], *args: str) -> Run:
    proc = await asyncio.create_subprocess_exec(
        str(RETOONE), *args, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def common(url: str, tmp_path: Path) -> list[str]:
    return ["--database-url", url, "--data-dir", str(tmp_path / "data")]


async def test_db_migrate_is_idempotent(
    scratch_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    first = await retoone(cli_env, "db", "migrate", *common(scratch_url, tmp_path))
    assert first.returncode == 0, first.stderr
    versions = ", ".join(f"{m.version:04d}" for m in load_migrations())
    assert f"applied migrations: {versions}" in first.said

    second = await retoone(cli_env, "db", "migrate", *common(scratch_url, tmp_path))
    assert second.returncode == 0, second.stderr
    assert "database is up to date" in second.said

    owner = await asyncpg.connect(scratch_url)
    try:
        count = await owner.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await owner.close()
    assert count == len(load_migrations())
    # The secret key came from the environment: no key file was written.
    assert not (tmp_path / "data" / "secret_key").exists()
    assert not (tmp_path / "home").exists()


async def test_user_create_admin_and_plain_user(
    scratch_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "RETOONE_NEW_PASSWORD": STRONG_PASSWORD}
    admin_name, plain_name = unique("admin"), unique("plain")

    made = await retoone(env, "user", "create", "--username", admin_name,
                         "--email", f"{admin_name}@example.com", "--admin",
                         *common(scratch_url, tmp_path))
    assert made.returncode == 0, made.stderr
    assert f"created admin {admin_name}" in made.said

    plain = await retoone(env, "user", "create", "--username", plain_name,
                          "--email", f"{plain_name}@example.com",
                          *common(scratch_url, tmp_path))
    assert plain.returncode == 0, plain.stderr
    assert f"created user {plain_name}" in plain.said

    taken = await retoone(env, "user", "create", "--username", admin_name,
                          "--email", f"other-{admin_name}@example.com",
                          *common(scratch_url, tmp_path))
    assert taken.returncode == 1
    assert "username_taken" in taken.said
    assert "Traceback" not in taken.stderr

    owner = await asyncpg.connect(scratch_url)
    try:
        rows = await owner.fetch("SELECT username, role, status FROM users ORDER BY username")
    finally:
        await owner.close()
    assert sorted((r["username"], r["role"], r["status"]) for r in rows) == sorted(
        [(admin_name, "admin", "active"), (plain_name, "user", "active")]
    )


async def test_user_create_rejects_a_weak_password(
    scratch_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    name = unique()
    env = {**cli_env, "RETOONE_NEW_PASSWORD": "password"}
    run = await retoone(env, "user", "create", "--username", name,
                        "--email", f"{name}@example.com", "--admin",
                        *common(scratch_url, tmp_path))
    assert run.returncode != 0
    assert "weak_password" in run.said
    assert "password must be at least" in run.said
    assert "Traceback" not in run.stderr

    owner = await asyncpg.connect(scratch_url)
    try:
        assert await owner.fetchval("SELECT count(*) FROM users") == 0
    finally:
        await owner.close()


async def test_outbox_shows_waiting_messages(
    scratch_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    empty = await retoone(cli_env, "outbox", *common(scratch_url, tmp_path))
    assert empty.returncode == 0, empty.stderr
    assert "the outbox is empty" in empty.said

    name = unique()
    env = {**cli_env, "RETOONE_NEW_PASSWORD": STRONG_PASSWORD}
    made = await retoone(env, "user", "create", "--username", name,
                         "--email", f"{name}@example.com", *common(scratch_url, tmp_path))
    assert made.returncode == 0, made.stderr
    owner = await asyncpg.connect(scratch_url)
    try:
        user_id = await owner.fetchval("SELECT id FROM users WHERE username = $1", name)
        await owner.execute(
            "INSERT INTO outbox (user_id, kind, recipient, subject, body) "
            "VALUES ($1, 'password_reset', $2, 'Reset your password', $3), "
            "       ($1, 'password_reset', $2, 'Already sent', 'not shown')",
            user_id, f"{name}@example.com", "Open http://localhost/reset#token-123",
        )
        await owner.execute("UPDATE outbox SET sent_at = now() WHERE subject = 'Already sent'")
    finally:
        await owner.close()

    shown = await retoone(cli_env, "outbox", "--limit", "5", *common(scratch_url, tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "Open http://localhost/reset#token-123" in shown.stdout
    assert "not shown" not in shown.stdout
    assert f"to {name}@example.com: Reset your password" in shown.said


@pytest.mark.parametrize(
    ("args", "env_extra", "message"),
    [
        (["db", "migrate", "--database-url", "mysql://db/retoone"], {},
         "RETOONE_DATABASE_URL must be a postgresql:// URL"),
        (["outbox"], {"RETOONE_LOCKOUT_ATTEMPTS": "zero"},
         "RETOONE_LOCKOUT_ATTEMPTS must be an integer"),
        (["serve", "--redis-url", "http://cache"], {}, "RETOONE_REDIS_URL must be a redis:// URL"),
        (["serve", "--port", "0"], {}, "port 0 is not between 1 and 65535"),
    ],
)
async def test_configuration_errors_exit_2_with_a_message(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], env_extra: dict[str, str],
    message: str,
) -> None:
    run = await retoone({**cli_env, **env_extra}, *args, "--data-dir", str(tmp_path / "data"))
    assert run.returncode == 2
    assert f"configuration error: {message}" in run.said
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "data").exists()
