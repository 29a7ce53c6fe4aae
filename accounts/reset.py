"""Password reset by single-use, expiring tokens delivered through the outbox."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from accounts import audit
from accounts.auth import revoke_sessions
from accounts.context import Accounts
from accounts.errors import AccountError
from accounts.passwords import check_password_rules
from accounts.tokens import hash_token, new_token


async def request_reset(ctx: Accounts, login_or_email: str, *, ip: str = "") -> str | None:
    """Queue a reset message if the account exists. Callers answer the same either way.

    Returns the token (for the CLI and tests, which read it from the outbox in
    production); the HTTP route never reveals it.
    """
    async with ctx.db.anonymous() as conn:
        user_id: UUID | None = await conn.fetchval("SELECT auth_lookup_login($1)", login_or_email)
        if user_id is None:
            await audit.record(conn, None, audit.RESET_REQUESTED, ip=ip,
                               detail={"login": login_or_email[:100], "matched": False})
            return None
    token = new_token()
    minutes = int(ctx.config.reset_ttl.total_seconds() // 60)
    link = f"{ctx.config.public_url.rstrip('/')}/reset#token={token}"
    async with ctx.db.as_user(user_id) as conn:
        email = await conn.fetchval("SELECT email FROM users WHERE id = $1", user_id)
        await conn.execute(
            "INSERT INTO password_resets (id, user_id, token_hash, expires_at) "
            "VALUES ($1, $2, $3, now() + $4::interval)",
            uuid4(),
            user_id,
            hash_token(token),
            ctx.config.reset_ttl,
        )
        await conn.execute(
            "INSERT INTO outbox (user_id, kind, recipient, subject, body) "
            "VALUES ($1, 'password_reset', $2, $3, $4)",
            user_id,
            email,
            "Reset your Retoone password",
            f"Someone asked to reset your Retoone password. If it was you, open\n\n  {link}\n\n"
            f"or use this token: {token}\n\nIt works once and expires in {minutes} minutes. "
            "If it was not you, ignore this message.",
        )
        await audit.record(conn, user_id, audit.RESET_REQUESTED, ip=ip, detail={"matched": True})
    return token


async def confirm_reset(ctx: Accounts, token: str, new_password: str, *, ip: str = "") -> None:
    """Set a new password with a reset token; the token is spent and all sessions end."""
    digest = hash_token(token)
    async with ctx.db.anonymous() as conn:
        user_id: UUID | None = await conn.fetchval("SELECT auth_lookup_reset($1)", digest)
    if user_id is None:
        raise AccountError("reset_token_invalid", "that reset token is not valid", 400)
    async with ctx.db.as_user(user_id) as conn:
        row = await conn.fetchrow(
            "SELECT r.id, r.used_at, r.expires_at <= now() AS expired, u.username, u.email "
            "FROM password_resets r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
            digest,
        )
        assert row is not None
        failure: AccountError | None = None
        if row["used_at"] is not None:
            failure = AccountError("reset_token_used", "that reset token was already used", 400)
        elif row["expired"]:
            failure = AccountError("reset_token_expired", "that reset token has expired", 400)
        if failure is not None:
            await audit.record(conn, user_id, audit.RESET_REFUSED, ip=ip,
                               detail={"reason": failure.code})
    if failure is not None:
        raise failure
    check_password_rules(new_password, username=row["username"], email=row["email"])
    new_hash = await asyncio.to_thread(ctx.passwords.hash, new_password)
    async with ctx.db.as_user(user_id) as conn:
        spent = await conn.execute(
            "UPDATE password_resets SET used_at = now() WHERE id = $1 AND used_at IS NULL",
            row["id"],
        )
        if spent.endswith(" 0"):  # raced with another use of the same token
            raise AccountError("reset_token_used", "that reset token was already used", 400)
        await conn.execute(
            "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1",
            user_id,
            new_hash,
        )
        ended = await revoke_sessions(conn, user_id)
        await audit.record(conn, user_id, audit.RESET_DONE, ip=ip, detail={"sessions_ended": ended})
