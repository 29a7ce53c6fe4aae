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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from accounts import auth, users
from accounts.context import Accounts, AccountsConfig
from accounts.passwords import HashCost, Passwords
from persistence.db import Database
from persistence.embedded import EmbeddedPostgres, with_database
from persistence.migrate import app_role_name, quote_ident

PASSWORD = "Violet-Harmonic-Tape-72"
SECRET = b"perf-secret-key-not-for-production"
LOGIN_CONCURRENCY = (1, 4)
ROUND_SIZE = 25  # queries per side per round in the RLS comparison

QUERIES: dict[str, str] = {
    "security_events, latest 50": (
        "SELECT id, user_id, actor_id, kind, ip, detail, at FROM security_events "
        "WHERE user_id = $1 ORDER BY id DESC LIMIT 50"
    ),
    "users, one by id": "SELECT * FROM users WHERE id = $1",
}

console = Console()


# -- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Summary of a sample of latencies, in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            raise ValueError("no samples")
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(
            n=len(ms),
            mean_ms=sum(ms) / len(ms),
            p50_ms=percentile(ms, 50),
            p99_ms=percentile(ms, 99),
            min_ms=ms[0],
            max_ms=ms[-1],
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sample."""
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


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


@dataclass(frozen=True)
class RlsResult:
    query: str
    sql: str
    rows_per_query: float
    rls: Latency
    no_rls: Latency
    ratio_p50: float
    ratio_p99: float
    plan_rls: list[str] = field(default_factory=list)
    plan_no_rls: list[str] = field(default_factory=list)


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


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


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


# -- (b) RLS against no RLS -----------------------------------------------------------------


async def seed(owner: asyncpg.Connection, users_n: int, events_per_user: int,
               password_hash: str) -> list[UUID]:
    """Users and their security events, written as the owner (RLS bypassed)."""
    ids = [uuid4() for _ in range(users_n)]
    kinds = ["login.ok", "login.failed", "logout", "profile.updated", "token.rejected"]
    base = datetime.now(UTC) - timedelta(days=30)
    rng = random.Random(7)
    with progress() as bar:
        user_task = bar.add_task("seeding users", total=users_n)
        event_task = bar.add_task("seeding security events", total=users_n * events_per_user)
        await owner.copy_records_to_table(
            "users",
            records=[(uid, f"seed{uid.hex[:12]}", f"seed{uid.hex[:12]}@example.com",
                      password_hash) for uid in ids],
            columns=["id", "username", "email", "password_hash"],
        )
        bar.update(user_task, completed=users_n)
        # Round-robin over users, so one user's rows are spread over the whole table.
        for i in range(events_per_user):
            records = [
                (uid, rng.choice(kinds), "127.0.0.1", json.dumps({"n": i}),
                 base + timedelta(seconds=i * users_n + j))
                for j, uid in enumerate(ids)
            ]
            await owner.copy_records_to_table(
                "security_events", records=records,
                columns=["user_id", "kind", "ip", "detail", "at"],
            )
            bar.advance(event_task, len(records))
    await owner.execute("ANALYZE")
    return ids


Runner = Callable[[UUID], Awaitable[int]]


def rls_runner(db: Database, sql: str) -> Runner:
    async def run(uid: UUID) -> int:
        async with db.as_user(uid) as conn:
            return len(await conn.fetch(sql, uid))

    return run


def owner_runner(pool: asyncpg.Pool, sql: str) -> Runner:
    async def run(uid: UUID) -> int:
        # The same shape as Database.as_user: acquire, BEGIN, set_config, query, COMMIT.
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('app.user_id', $1, true)", str(uid))
            return len(await conn.fetch(sql, uid))

    return run


async def explain(db: Database, pool: asyncpg.Pool, sql: str, uid: UUID) -> tuple[list[str],
                                                                                   list[str]]:
    query = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql
    async with db.as_user(uid) as conn:
        with_rls = [r[0] for r in await conn.fetch(query, uid)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.user_id', $1, true)", str(uid))
        without = [r[0] for r in await conn.fetch(query, uid)]
    return with_rls, without


async def measure_rls(
    db: Database, pool: asyncpg.Pool, ids: Sequence[UUID], label: str, sql: str, seconds: float
) -> RlsResult:
    with_rls, without = rls_runner(db, sql), owner_runner(pool, sql)
    rng = random.Random(11)
    for uid in ids[:5]:  # warm up (statement caches) and check both see the same rows
        a, b = await with_rls(uid), await without(uid)
        if a != b or a == 0:
            raise RuntimeError(f"{label}: RLS returned {a} rows, the owner {b}")
    samples: dict[str, list[float]] = {"rls": [], "no_rls": []}
    rows = 0
    with progress() as bar:
        task = bar.add_task(f"{label} (RLS vs owner)", total=None)
        deadline = time.perf_counter() + seconds
        rounds = 0
        while rounds < 2 or time.perf_counter() < deadline:
            batch = [rng.choice(ids) for _ in range(ROUND_SIZE)]
            sides = [("rls", with_rls), ("no_rls", without)]
            if rounds % 2:
                sides.reverse()  # A B, B A, A B, ...: drift does not favour either side
            for side, call in sides:
                for uid in batch:
                    t0 = time.perf_counter()
                    rows += await call(uid)
                    samples[side].append(time.perf_counter() - t0)
            rounds += 1
            bar.advance(task, 2 * ROUND_SIZE)
        bar.update(task, total=rounds * 2 * ROUND_SIZE)
    plan_rls, plan_no_rls = await explain(db, pool, sql, ids[0])
    rls, no_rls = Latency.of(samples["rls"]), Latency.of(samples["no_rls"])
    return RlsResult(
        query=label,
        sql=sql,
        rows_per_query=rows / (len(samples["rls"]) + len(samples["no_rls"])),
        rls=rls,
        no_rls=no_rls,
        ratio_p50=rls.p50_ms / no_rls.p50_ms,
        ratio_p99=rls.p99_ms / no_rls.p99_ms,
        plan_rls=plan_rls,
        plan_no_rls=plan_no_rls,
    )


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
