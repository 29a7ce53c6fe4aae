"""Lockout after repeated failures, and password confirmation that respects it.

Failures (wrong password, wrong second factor) are rows in the audit log; the
account is locked while ``lockout_attempts`` of them fall within
``lockout_window`` after the last success, reset or admin reactivation. Every
place that checks a password (login, password change, 2FA disable, account
deletion) goes through here, so a stolen session cannot guess the password
without limit either.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

from accounts import audit
from accounts.context import Accounts
from accounts.errors import AccountError
from persistence.db import Connection

# Failures that count toward lockout, and events that start a fresh count.
FAILURE_KINDS = [audit.LOGIN_FAILED, audit.TOTP_FAILED]
RESET_KINDS = [audit.LOGIN_OK, audit.REACTIVATED, audit.RESET_DONE]


def locked_error(until: datetime) -> AccountError:
    return AccountError(
        "account_locked",
        f"too many failed attempts; try again after {until.isoformat(timespec='seconds')}",
        423,
    )


async def locked_until(ctx: Accounts, conn: Connection, user_id: UUID) -> datetime | None:
    """When the account's lockout ends, or None if it is not locked."""
    limit = ctx.config.lockout_attempts
    rows = await conn.fetch(
        "SELECT at, now() AS now FROM security_events "
        "WHERE user_id = $1 AND kind = ANY($2::text[]) AND at > now() - $3::interval "
        "AND at > coalesce((SELECT max(at) FROM security_events "
        "                   WHERE user_id = $1 AND kind = ANY($4::text[])), '-infinity') "
        "ORDER BY at DESC LIMIT $5",
        user_id,
        FAILURE_KINDS,
        ctx.config.lockout_window,
        RESET_KINDS,
        limit,
    )
    if len(rows) < limit:
        return None
    until: datetime = rows[-1]["at"] + ctx.config.lockout_window
    return until if until > rows[0]["now"] else None


async def confirm_password(
    ctx: Accounts, user_id: UUID, password: str, *, ip: str, during: str
) -> None:
    """Raise unless ``password`` is the user's and the account is not locked.

    A wrong password is recorded as a failure (``detail.during`` says where) and
    counts toward lockout.
    """
    async with ctx.db.as_user(user_id) as conn:
        until = await locked_until(ctx, conn, user_id)
        if until is not None:
            await audit.record(conn, user_id, audit.LOGIN_LOCKED, ip=ip, detail={"during": during})
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    if until is not None:
        raise locked_error(until)
    if not await asyncio.to_thread(ctx.passwords.verify, stored, password):
        async with ctx.db.as_user(user_id) as conn:
            await audit.record(conn, user_id, audit.LOGIN_FAILED, ip=ip, detail={"during": during})
        raise AccountError("invalid_credentials", "the password is wrong", 401)
