"""``retoone serve`` end to end ("make run"): a real process, real HTTP, real PostgreSQL.

With no database URL the server starts its embedded PostgreSQL in the data dir,
announces its URL on stdout, serves, stops cleanly on SIGTERM (and stops the
embedded PostgreSQL with it), and on the next start reuses the data and the
secret key. With ``--database-url``/``--redis-url`` it uses those instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import SECRET, STRONG_PASSWORD, unique

RETOONE = Path(sys.executable).with_name("retoone")
READY_PREFIX = "Retoone is running at "
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REDIS_URL = os.environ.get("RETOONE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Server:
    proc: asyncio.subprocess.Process
    ready_line: str
    log: Path

    @property
    def url(self) -> str:
        return self.ready_line.removeprefix(READY_PREFIX).split()[0]

    async def stop(self) -> int:
        """SIGTERM (as a service manager stops it), then the exit status within a deadline."""
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)

    async def interrupt(self) -> int:
        """Ctrl+C in the terminal: SIGINT to the whole process group, then the exit status."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any RETOONE_* setting (so the defaults apply), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETOONE_")}
    env.update(extra)
    return env


def output(log: Path) -> str:
    return log.read_text(errors="replace")


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of a running postmaster for ``pgdata``, or None when none runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # it exists, as another user (pgserver's, when run as root)
        pass
    return pid


@asynccontextmanager
async def serving(args: list[str], env: dict[str, str], log: Path) -> AsyncIterator[Server]:
    """Start ``retoone serve``; wait for its ready line; on the way out make sure it is gone."""
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            str(RETOONE), "serve", *args, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=err, start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while True:
            remaining = deadline - loop.time()
            assert remaining > 0, f"no ready line within {START_TIMEOUT_S}s:\n{output(log)}"
            try:
                line = (await asyncio.wait_for(proc.stdout.readline(), remaining)).decode()
            except TimeoutError:
                raise AssertionError(f"no ready line in time:\n{output(log)}") from None
            assert line, f"the server exited ({await proc.wait()}):\n{output(log)}"
            if line.startswith(READY_PREFIX):
                break
        yield Server(proc, line.strip(), log)
    finally:
        if proc.returncode is None:  # the test failed before stopping it
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def register_and_login(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post("/api/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": STRONG_PASSWORD})
    assert r.status_code == 201, r.text
    return await login(client, name)


async def login(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post("/api/auth/login", json={"login": name, "password": STRONG_PASSWORD})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


async def test_serve_with_embedded_postgres_stops_cleanly_and_reuses_its_data(
    tmp_path: Path, private_dir: Path
) -> None:
    data_dir = private_dir / "data"
    pgdata = data_dir / "pgdata"
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(data_dir)]
    env = clean_env(HOME=str(tmp_path / "home"))
    name = unique()

    try:
        async with serving(args, env, tmp_path / "first.log") as server:
            assert server.url == f"http://localhost:{port}"
            assert "embedded PostgreSQL, in-process bus" in server.ready_line
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                r = await client.get("/healthz")
                assert r.status_code == 200, r.text
                assert r.json() == {"status": "ok", "db": "ok", "bus": "inproc"}

                page = await client.get("/")
                assert page.status_code == 200
                assert "text/html" in page.headers["content-type"]

                token = await register_and_login(client, name)
                me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
                assert me.json()["user"]["username"] == name

            assert postmaster_pid(pgdata) is not None
            secret_file = data_dir / "secret_key"
            secret = secret_file.read_text()
            assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
            assert await server.stop() == 0, output(server.log)
        assert postmaster_pid(pgdata) is None, "SIGTERM must stop the embedded PostgreSQL"

        async with serving(args, env, tmp_path / "second.log") as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                r = await client.get("/healthz")
                assert r.status_code == 200, r.text
                token = await login(client, name)  # the first run's account is still there
                me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
                assert me.json()["user"]["username"] == name
            assert secret_file.read_text() == secret
            assert await server.interrupt() == 0, output(server.log)
        assert postmaster_pid(pgdata) is None, "Ctrl+C must stop the embedded PostgreSQL"
        assert "Traceback" not in output(tmp_path / "second.log")
        assert not (tmp_path / "home").exists(), "nothing may land in the home directory"
    finally:
        leftover = postmaster_pid(pgdata)
        if leftover is not None:  # only after a failure: stop what the test started
            os.kill(leftover, signal.SIGINT)


async def test_serve_with_external_postgres_and_redis(test_db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(data_dir),
            "--database-url", test_db_url, "--redis-url", REDIS_URL]
    # The test database's app role password derives from the secret: keep the suite's.
    env = clean_env(HOME=str(tmp_path / "home"), RETOONE_SECRET_KEY=SECRET.decode())

    async with serving(args, env, tmp_path / "serve.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            r = await client.get("/healthz")
            assert r.status_code == 200, r.text
            assert r.json() == {"status": "ok", "db": "ok", "bus": "redis"}

            name = unique()
            token = await register_and_login(client, name)
            me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
        assert await server.stop() == 0, output(server.log)

    assert "external PostgreSQL, Redis bus" in server.ready_line
    assert not (data_dir / "pgdata").exists(), "an external database needs no embedded one"
    assert not (data_dir / "secret_key").exists()
