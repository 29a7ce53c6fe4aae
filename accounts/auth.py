"""Logging in and out: credentials, lockout, session tokens, password changes.

A session token is 256 random bits handed to the client once; the database
keeps only its SHA-256. Tokens expire (``session_ttl``) and can be revoked
(logout, password change or reset, suspension). Every refusal is recorded in
the security audit log before it is raised.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from accounts import audit
from accounts.context import Accounts
from accounts.errors import AccountError
from accounts.lockout import confirm_password, locked_error, locked_until
from accounts.passwords import check_password_rules
from accounts.tokens import hash_token, new_token
from accounts.twofactor import check_second_factor
from accounts.users import User, fetch_user
from persistence.db import Connection

LAST_SEEN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class LoginResult:
    user: User
    token: str
    session_id: UUID
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """An authenticated request: who, and through which session."""

    user: User
    session_id: UUID
    token: str


def _invalid_credentials() -> AccountError:
    return AccountError("invalid_credentials", "wrong username, email or password", 401)


async def login(
    ctx: Accounts,
    login_name: str,
    password: str,
    *,
    totp_code: str | None = None,
    recovery_code: str | None = None,
    ip: str = "",
    user_agent: str = "",
) -> LoginResult:
    """Check credentials (and the second factor) and open a session."""
    async with ctx.db.anonymous() as conn:
        user_id: UUID | None = await conn.fetchval("SELECT auth_lookup_login($1)", login_name)
        if user_id is None:
            await audit.record(conn, None, audit.LOGIN_UNKNOWN, ip=ip,
                               detail={"login": login_name[:100]})
    if user_id is None:
        await asyncio.to_thread(ctx.passwords.verify, None, password)  # same time as a real check
        raise _invalid_credentials()

    async with ctx.db.as_user(user_id) as conn:
        until = await locked_until(ctx, conn, user_id)
        if until is not None:
            await audit.record(conn, user_id, audit.LOGIN_LOCKED, ip=ip)
        stored = await conn.fetchrow(
            "SELECT password_hash, status FROM users WHERE id = $1", user_id
        )
    if until is not None:
        raise locked_error(until)
    assert stored is not None
    ok = await asyncio.to_thread(ctx.passwords.verify, stored["password_hash"], password)

    failure: AccountError | None = None
    result: LoginResult | None = None
    async with ctx.db.as_user(user_id) as conn:
        if not ok:
            await audit.record(conn, user_id, audit.LOGIN_FAILED, ip=ip)
            failure = _invalid_credentials()
        elif stored["status"] != "active":
            await audit.record(conn, user_id, audit.LOGIN_SUSPENDED, ip=ip)
            failure = AccountError("account_suspended", "this account is suspended", 403)
        else:
            failure = await check_second_factor(
                ctx, conn, user_id, totp_code=totp_code, recovery_code=recovery_code, ip=ip
            )
        if failure is None:
            result = await _open_session(ctx, conn, user_id, ip=ip, user_agent=user_agent)
            await audit.record(conn, user_id, audit.LOGIN_OK, ip=ip,
                               detail={"session": str(result.session_id)})
    if failure is not None:
        raise failure
    assert result is not None
    if ctx.passwords.needs_rehash(stored["password_hash"]):
        new_hash = await asyncio.to_thread(ctx.passwords.hash, password)
        async with ctx.db.as_user(user_id) as conn:
            await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1",
                               user_id, new_hash)
    return result


async def _open_session(
    ctx: Accounts, conn: Connection, user_id: UUID, *, ip: str, user_agent: str
) -> LoginResult:
    token = new_token()
    session_id = uuid4()
    expires_at: datetime = await conn.fetchval(
        "INSERT INTO auth_sessions (id, user_id, token_hash, expires_at, ip, user_agent) "
        "VALUES ($1, $2, $3, now() + $4::interval, $5, $6) RETURNING expires_at",
        session_id,
        user_id,
        hash_token(token),
        ctx.config.session_ttl,
        ip,
        user_agent[:300],
    )
    user = await fetch_user(conn, user_id)
    assert user is not None
    return LoginResult(user, token, session_id, expires_at)


async def authenticate(ctx: Accounts, token: str, *, ip: str = "") -> Principal:
    """The principal behind a session token, or AccountError (401/403) saying why not."""
    if not token or len(token) > 200:
        raise AccountError("token_invalid", "the session token is not valid", 401)
    async with ctx.db.anonymous() as conn:
        row = await conn.fetchrow(
            "SELECT session_id, user_id, expires_at, revoked_at, user_status, now() AS now "
            "FROM auth_lookup_session($1)",
            hash_token(token),
        )
    if row is None:
        raise AccountError("token_invalid", "the session token is not valid", 401)
    user_id: UUID = row["user_id"]
    failure: AccountError | None = None
    if row["revoked_at"] is not None:
        failure = AccountError("token_revoked", "this session was ended; log in again", 401)
    elif row["expires_at"] <= row["now"]:
        failure = AccountError("token_expired", "this session has expired; log in again", 401)
    elif row["user_status"] != "active":
        failure = AccountError("account_suspended", "this account is suspended", 403)
    async with ctx.db.as_user(user_id) as conn:
        if failure is not None:
            await audit.record(conn, user_id, audit.TOKEN_REJECTED, ip=ip,
                               detail={"reason": failure.code})
        else:
            await conn.execute(
                "UPDATE auth_sessions SET last_seen_at = now() "
                "WHERE id = $1 AND last_seen_at < now() - $2::interval",
                row["session_id"],
                LAST_SEEN_EVERY,
            )
            user = await fetch_user(conn, user_id)
    if failure is not None:
        raise failure
    assert user is not None
    return Principal(user, row["session_id"], token)


async def logout(ctx: Accounts, principal: Principal, *, ip: str = "") -> None:
    async with ctx.db.as_user(principal.user.id) as conn:
        await conn.execute(
            "UPDATE auth_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            principal.session_id,
        )
        await audit.record(conn, principal.user.id, audit.LOGOUT, ip=ip)


async def revoke_sessions(conn: Connection, user_id: UUID, *, keep: UUID | None = None) -> int:
    """End every open session of the user but ``keep``; return how many ended."""
    status: str = await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() "
        "WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
        user_id,
        keep,
    )
    return int(status.split()[-1])


async def change_password(
    ctx: Accounts, principal: Principal, current: str, new: str, *, ip: str = ""
) -> int:
    """Change the password; other sessions end. Returns how many ended."""
    user = principal.user
    await confirm_password(ctx, user.id, current, ip=ip, during="password_change")
    check_password_rules(new, username=user.username, email=user.email)
    new_hash = await asyncio.to_thread(ctx.passwords.hash, new)
    async with ctx.db.as_user(user.id) as conn:
        await conn.execute(
            "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1",
            user.id,
            new_hash,
        )
        ended = await revoke_sessions(conn, user.id, keep=principal.session_id)
        await audit.record(conn, user.id, audit.PASSWORD_CHANGED, ip=ip,
                           detail={"sessions_ended": ended})
    return ended
