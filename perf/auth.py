"""Authentication and row-level-security cost: ``python -m perf.auth [--json PATH] [--seconds N]``.

Measures, on a scratch database it creates and drops again:

* the raw argon2id hash and verify time at the production cost (``HashCost()``);
* login throughput and latency through ``accounts.auth.login`` (production cost),
  with 1 and 4 concurrent clients;
* the latency of RLS-guarded queries on an app-role connection inside
  ``db.as_user(uid)`` against the same queries on an owner (superuser, RLS
  bypassed) connection with the same transaction shape (BEGIN, set_config,
  query, COMMIT), interleaved in alternating rounds so drift hits both alike.

The server is ``RETOONE_DATABASE_URL`` when set (its role needs CREATEDB and
must be superuser or BYPASSRLS, as for migrations), else an embedded PostgreSQL
in a temporary directory.

The RLS comparison is in perf/rls_bench.py, what the parts share in perf/auth_common.py;
this module measures argon2 and login, runs everything and reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from rich.table import Table

from accounts import auth, users
from accounts.context import Accounts, AccountsConfig
from accounts.passwords import HashCost, Passwords
from perf.auth_common import PASSWORD, Latency, console, progress
from perf.rls_bench import QUERIES, RlsResult, measure_rls, seed
from persistence.db import Database
from persistence.embedded import EmbeddedPostgres, with_database
from persistence.migrate import app_role_name, quote_ident

SECRET = b"perf-secret-key-not-for-production"
LOGIN_CONCURRENCY = (1, 4)


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HashResult:
    time_cost: int
    memory_kib: int
    parallelism: int
    hash: Latency
    verify: Latency


@dataclass(frozen=True)
class LoginResult:
    concurrency: int
    logins: int
    seconds: float
    per_second: float
    latency: Latency


@dataclass
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    hash: HashResult | None = None
    login: list[LoginResult] = field(default_factory=list)
    rls: list[RlsResult] = field(default_factory=list)


# -- the scratch database -------------------------------------------------------------------


@asynccontextmanager
async def scratch_database() -> AsyncIterator[tuple[str, str]]:
    """Yield (owner URL of a fresh database, "embedded" or "external"); drop it afterwards."""
    server_url = os.environ.get("RETOONE_DATABASE_URL") or None
    embedded: EmbeddedPostgres | None = None
    tmp: Path | None = None
    kind = "external"
    if server_url is None:
        kind = "embedded"
        tmp = Path(tempfile.mkdtemp(prefix="retoone-perf-"))
        embedded = EmbeddedPostgres(tmp)
        with console.status("starting the embedded PostgreSQL"):
            server_url = await asyncio.to_thread(embedded.start)
    name = f"retoone_perf_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
            try:
                yield with_database(server_url, name), kind
            finally:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(app_role_name(name))}")
        finally:
            await admin.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# -- (a) argon2 and login -------------------------------------------------------------------


def measure_hash(passwords: Passwords, cost: HashCost, seconds: float) -> HashResult:
    hashes: list[float] = []
    verifies: list[float] = []
    stored = passwords.hash(PASSWORD)
    budget = max(seconds / 2, 0.5)
    with progress() as bar:
        for label, samples, call in (
            ("argon2id hash", hashes, lambda: passwords.hash(PASSWORD)),
            ("argon2id verify", verifies, lambda: passwords.verify(stored, PASSWORD)),
        ):
            task = bar.add_task(label, total=None)
            deadline = time.perf_counter() + budget
            while len(samples) < 3 or time.perf_counter() < deadline:
                start = time.perf_counter()
                call()
                samples.append(time.perf_counter() - start)
                bar.advance(task)
            bar.update(task, total=len(samples))
    return HashResult(cost.time_cost, cost.memory_kib, cost.parallelism,
                      Latency.of(hashes), Latency.of(verifies))


async def make_login_users(accounts: Accounts, count: int) -> list[str]:
    names: list[str] = []
    with progress() as bar:
        task = bar.add_task("registering login users (production hash)", total=count)
        for _ in range(count):
            name = f"perf{uuid4().hex[:10]}"
            await users.register(accounts, name, f"{name}@example.com", PASSWORD)
            names.append(name)
            bar.advance(task)
    return names


async def measure_logins(
    accounts: Accounts, names: Sequence[str], concurrency: int, seconds: float
) -> LoginResult:
    latencies: list[float] = []
    with progress() as bar:
        task = bar.add_task(f"logins, {concurrency} concurrent", total=None)
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(name: str) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await auth.login(accounts, name, PASSWORD, ip="127.0.0.1", user_agent="perf")
                latencies.append(time.perf_counter() - t0)
                bar.advance(task)

        await asyncio.gather(*(worker(names[i % len(names)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        bar.update(task, total=len(latencies))
    return LoginResult(concurrency, len(latencies), elapsed, len(latencies) / elapsed,
                       Latency.of(latencies))


# -- the run --------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> Report:
    cost = HashCost()
    report = Report(
        machine={
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
        },
        settings={
            "seconds": args.seconds,
            "users": args.users,
            "events_per_user": args.events_per_user,
            "login_concurrency": list(LOGIN_CONCURRENCY),
            "hash_cost": asdict(cost),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    passwords = Passwords(cost)
    report.hash = measure_hash(passwords, cost, args.seconds)

    async with scratch_database() as (url, kind):
        report.machine["database"] = kind
        db = await Database.open(url, SECRET, min_size=1, max_size=8)
        pool: asyncpg.Pool | None = None
        owner: asyncpg.Connection | None = None
        try:
            owner = await asyncpg.connect(db.owner_url)
            report.machine["postgres"] = await owner.fetchval("SHOW server_version")
            accounts = Accounts(db, SECRET, passwords, AccountsConfig())

            names = await make_login_users(accounts, max(LOGIN_CONCURRENCY))
            for concurrency in LOGIN_CONCURRENCY:
                report.login.append(
                    await measure_logins(accounts, names, concurrency, args.seconds)
                )

            ids = await seed(owner, args.users, args.events_per_user,
                             passwords.hash(PASSWORD))
            pool = await asyncpg.create_pool(db.owner_url, min_size=1, max_size=8)
            for label, sql in QUERIES.items():
                report.rls.append(await measure_rls(db, pool, ids, label, sql, args.seconds))
        finally:
            if pool is not None:
                await pool.close()
            if owner is not None:
                await owner.close()
            await db.close()
    return report


def show(report: Report) -> None:
    m = report.machine
    console.print(
        f"\n[bold]Retoone auth perf[/]: {m['cpu_count']} CPUs, Python {m['python']}, "
        f"PostgreSQL {m.get('postgres', '?')} ({m.get('database', '?')})"
    )
    if report.hash is not None:
        h = report.hash
        t = Table(title="argon2id at the production cost",
                  caption=f"t={h.time_cost}, m={h.memory_kib} KiB, p={h.parallelism}")
        t.add_column("operation")
        for col in ("n", "p50 ms", "p99 ms", "mean ms"):
            t.add_column(col, justify="right")
        for op, lat in (("hash", h.hash), ("verify", h.verify)):
            t.add_row(op, str(lat.n), f"{lat.p50_ms:.1f}", f"{lat.p99_ms:.1f}",
                      f"{lat.mean_ms:.1f}")
        console.print(t)
    if report.login:
        t = Table(title="login (accounts.auth.login)")
        for col in ("concurrency", "logins", "logins/s", "p50 ms", "p99 ms"):
            t.add_column(col, justify="right")
        for lr in report.login:
            t.add_row(str(lr.concurrency), str(lr.logins), f"{lr.per_second:.1f}",
                      f"{lr.latency.p50_ms:.1f}", f"{lr.latency.p99_ms:.1f}")
        console.print(t)
    if report.rls:
        t = Table(title="RLS (app role in as_user) vs owner (RLS bypassed)",
                  caption="ms per transaction: acquire, BEGIN, set_config, query, COMMIT")
        t.add_column("query", no_wrap=True)
        t.add_column("side", no_wrap=True)
        for col in ("n", "rows", "p50", "p99", "mean"):
            t.add_column(col, justify="right")
        for rr in report.rls:
            for side, lat in (("RLS", rr.rls), ("owner", rr.no_rls)):
                t.add_row(rr.query if side == "RLS" else "", side, str(lat.n),
                          f"{rr.rows_per_query:.0f}", f"{lat.p50_ms:.3f}", f"{lat.p99_ms:.3f}",
                          f"{lat.mean_ms:.3f}")
            t.add_row("", "[bold]RLS/owner[/]", "", "", f"[bold]{rr.ratio_p50:.2f}x[/]",
                      f"[bold]{rr.ratio_p99:.2f}x[/]",
                      f"[bold]{rr.rls.mean_ms / rr.no_rls.mean_ms:.2f}x[/]",
                      end_section=True)
        console.print(t)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.auth", description=__doc__.split("\n")[0]
                                     if __doc__ else None)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument("--seconds", type=float, default=5.0, metavar="N",
                        help="duration of each measured phase (default 5)")
    parser.add_argument("--users", type=int, default=50, help="seeded users (default 50)")
    parser.add_argument("--events-per-user", type=int, default=200,
                        help="seeded security events per user (default 200)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.users < 5 or args.events_per_user < 1:
        parser.error("--seconds must be positive, --users at least 5, --events-per-user >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
    show(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
