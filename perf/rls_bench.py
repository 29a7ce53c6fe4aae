"""Row-level-security cost, part of the auth benchmark (``python -m perf.auth``).

The latency of RLS-guarded queries on an app-role connection inside ``db.as_user(uid)``
against the same queries on an owner (superuser, RLS bypassed) connection with the same
transaction shape (BEGIN, set_config, query, COMMIT), interleaved in alternating rounds so
drift hits both alike, on users and security events seeded for the purpose.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from perf.auth_common import Latency, progress
from persistence.db import Database

ROUND_SIZE = 25  # queries per side per round in the RLS comparison

QUERIES: dict[str, str] = {
    "security_events, latest 50": (
        "SELECT id, user_id, actor_id, kind, ip, detail, at FROM security_events "
        "WHERE user_id = $1 ORDER BY id DESC LIMIT 50"
    ),
    "users, one by id": "SELECT * FROM users WHERE id = $1",
}


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


# -- the measurement ------------------------------------------------------------------------


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
