"""TOTP two-factor authentication (RFC 6238) with one-time recovery codes."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from uuid import UUID

import pyotp
import segno

from accounts import audit
from accounts.context import Accounts
from accounts.errors import AccountError
from accounts.lockout import confirm_password
from accounts.tokens import hash_recovery_code, new_recovery_code
from persistence.db import Connection

STEP_SECONDS = 30
DRIFT_STEPS = 1  # accept the previous and next 30 s window for clock drift


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str  # an SVG image of the otpauth URI, for scanning with an authenticator app


def match_totp_step(secret: str, code: str, last_step: int, now: float | None = None) -> int | None:
    """The time step that ``code`` belongs to, if it is valid and newer than ``last_step``.

    Codes are single use: a step at or before ``last_step`` is refused (replay).
    """
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


async def enrol(ctx: Accounts, user_id: UUID, *, ip: str = "") -> Enrolment:
    """Start enrolment: a fresh secret, pending until confirmed with a code."""
    secret = pyotp.random_base32()
    async with ctx.db.as_user(user_id) as conn:
        row = await conn.fetchrow(
            "SELECT username, totp_enabled FROM users WHERE id = $1", user_id
        )
        assert row is not None
        if row["totp_enabled"]:
            raise AccountError("totp_already_enabled", "two-factor is already on", 409)
        await conn.execute(
            "UPDATE users SET totp_secret = $2, totp_last_step = 0 WHERE id = $1",
            user_id,
            secret,
        )
        await audit.record(conn, user_id, audit.TOTP_ENROLLED, ip=ip)
    uri = pyotp.TOTP(secret).provisioning_uri(name=row["username"], issuer_name=ctx.config.issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return Enrolment(secret, uri, svg)


async def _new_recovery_codes(ctx: Accounts, conn: Connection, user_id: UUID) -> list[str]:
    codes = [new_recovery_code() for _ in range(ctx.config.recovery_codes)]
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
    await conn.executemany(
        "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
        [(user_id, hash_recovery_code(ctx.secret_key, c)) for c in codes],
    )
    return codes


async def confirm(ctx: Accounts, user_id: UUID, code: str, *, ip: str = "") -> list[str]:
    """Turn two-factor on with a first valid code; return the recovery codes (shown once)."""
    failure: AccountError | None = None
    codes: list[str] = []
    async with ctx.db.as_user(user_id) as conn:
        row = await conn.fetchrow(
            "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1", user_id
        )
        assert row is not None
        if row["totp_enabled"]:
            raise AccountError("totp_already_enabled", "two-factor is already on", 409)
        if not row["totp_secret"]:
            raise AccountError("totp_not_enrolled", "start enrolment first", 409)
        step = match_totp_step(row["totp_secret"], code, row["totp_last_step"])
        if step is None:
            await audit.record(
                conn, user_id, audit.TOTP_FAILED, ip=ip, detail={"during": "confirm"}
            )
            failure = AccountError("totp_invalid", "that code is not valid", 401)
        else:
            await conn.execute(
                "UPDATE users SET totp_enabled = true, totp_last_step = $2 WHERE id = $1",
                user_id,
                step,
            )
            codes = await _new_recovery_codes(ctx, conn, user_id)
            await audit.record(conn, user_id, audit.TOTP_ENABLED, ip=ip)
    if failure:
        raise failure
    return codes


async def check_second_factor(
    ctx: Accounts,
    conn: Connection,
    user_id: UUID,
    *,
    totp_code: str | None,
    recovery_code: str | None,
    ip: str,
) -> AccountError | None:
    """Check a TOTP or recovery code inside the caller's transaction.

    Returns the refusal (after recording it) instead of raising, so the caller's
    transaction still commits the audit row.
    """
    row = await conn.fetchrow(
        "SELECT totp_secret, totp_last_step FROM users WHERE id = $1 AND totp_enabled",
        user_id,
    )
    if row is None:
        return None
    if totp_code:
        step = match_totp_step(row["totp_secret"], totp_code, row["totp_last_step"])
        if step is not None:
            await conn.execute("UPDATE users SET totp_last_step = $2 WHERE id = $1", user_id, step)
            return None
        await audit.record(conn, user_id, audit.TOTP_FAILED, ip=ip, detail={"factor": "totp"})
        return AccountError("totp_invalid", "that two-factor code is not valid", 401)
    if recovery_code:
        code_hash = hash_recovery_code(ctx.secret_key, recovery_code)
        hit = await conn.fetchrow(
            "SELECT id, used_at FROM recovery_codes WHERE user_id = $1 AND code_hash = $2",
            user_id,
            code_hash,
        )
        if hit is not None and hit["used_at"] is None:
            await conn.execute("UPDATE recovery_codes SET used_at = now() WHERE id = $1", hit["id"])
            left = await conn.fetchval(
                "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                user_id,
            )
            await audit.record(conn, user_id, audit.RECOVERY_USED, ip=ip, detail={"left": left})
            return None
        reason = "used" if hit is not None else "unknown"
        await audit.record(
            conn, user_id, audit.TOTP_FAILED, ip=ip, detail={"factor": "recovery", "reason": reason}
        )
        if hit is not None:
            return AccountError("recovery_code_used", "that recovery code was already used", 401)
        return AccountError("totp_invalid", "that recovery code is not valid", 401)
    return AccountError("totp_required", "this account needs a two-factor code", 401)


async def disable(
    ctx: Accounts,
    user_id: UUID,
    password: str,
    *,
    totp_code: str | None = None,
    recovery_code: str | None = None,
    ip: str = "",
) -> None:
    """Turn two-factor off; needs the password and a current code."""
    await confirm_password(ctx, user_id, password, ip=ip, during="2fa_disable")
    async with ctx.db.as_user(user_id) as conn:
        enabled = await conn.fetchval("SELECT totp_enabled FROM users WHERE id = $1", user_id)
        if not enabled:
            raise AccountError("totp_not_enabled", "two-factor is not on", 409)
        failure = await check_second_factor(
            ctx, conn, user_id, totp_code=totp_code, recovery_code=recovery_code, ip=ip
        )
        if failure is None:
            await conn.execute(
                "UPDATE users SET totp_enabled = false, totp_secret = NULL WHERE id = $1", user_id
            )
            await conn.execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
            await audit.record(conn, user_id, audit.TOTP_DISABLED, ip=ip)
    if failure:
        raise failure


async def regenerate_recovery_codes(
    ctx: Accounts, user_id: UUID, totp_code: str, *, ip: str = ""
) -> list[str]:
    """Replace all recovery codes; needs a current TOTP code."""
    codes: list[str] = []
    async with ctx.db.as_user(user_id) as conn:
        enabled = await conn.fetchval("SELECT totp_enabled FROM users WHERE id = $1", user_id)
        if not enabled:
            raise AccountError("totp_not_enabled", "two-factor is not on", 409)
        failure = await check_second_factor(
            ctx, conn, user_id, totp_code=totp_code, recovery_code=None, ip=ip
        )
        if failure is None:
            codes = await _new_recovery_codes(ctx, conn, user_id)
            await audit.record(conn, user_id, audit.RECOVERY_REGENERATED, ip=ip)
    if failure:
        raise failure
    return codes
