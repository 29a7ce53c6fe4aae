"""Admin operations: list users, suspend and reactivate them, change roles, read the audit log.

The database enforces the same rules (RLS policies and the ``users_guard``
trigger); these checks give clear errors first.
"""

from __future__ import annotations

from uuid import UUID

from accounts import audit
from accounts.auth import Principal
from accounts.context import Accounts
from accounts.errors import AccountError
from accounts.users import USER_COLUMNS, User, fetch_user

ROLES = ("user", "admin")


def require_admin(principal: Principal) -> None:
    if not principal.user.is_admin:
        raise AccountError("forbidden", "this needs an admin account", 403)


async def list_users(
    ctx: Accounts, principal: Principal, *, limit: int = 50, offset: int = 0, query: str = ""
) -> list[User]:
    require_admin(principal)
    async with ctx.db.as_user(principal.user.id) as conn:
        rows = await conn.fetch(
            f"SELECT {USER_COLUMNS} FROM users "
            "WHERE $1 = '' OR username ILIKE '%' || $1 || '%' ESCAPE '\\' "
            "OR email ILIKE '%' || $1 || '%' ESCAPE '\\' "
            "ORDER BY created_at, id LIMIT $2 OFFSET $3",
            query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"),
            limit,
            offset,
        )
    return [User.from_row(r) for r in rows]


async def _change(
    ctx: Accounts, principal: Principal, target: UUID, column: str, value: str, kind: str,
    *, ip: str,
) -> User:
    require_admin(principal)
    if target == principal.user.id:
        raise AccountError("forbidden", "admins cannot change their own role or status", 403)
    async with ctx.db.as_user(principal.user.id) as conn:
        before = await fetch_user(conn, target)
        if before is None:
            raise AccountError("not_found", "no such user", 404)
        await conn.execute(f"UPDATE users SET {column} = $2 WHERE id = $1", target, value)
        detail: dict[str, object] = {column: value, "was": getattr(before, column)}
        if column == "status" and value == "suspended":
            detail["sessions_ended"] = await conn.fetchval(
                "SELECT admin_revoke_sessions($1)", target
            )
        await audit.record(conn, target, kind, ip=ip, actor_id=principal.user.id, detail=detail)
        after = await fetch_user(conn, target)
    assert after is not None
    return after


async def suspend(ctx: Accounts, principal: Principal, target: UUID, *, ip: str = "") -> User:
    """Suspend an account: its sessions end, and it cannot log in until reactivated."""
    return await _change(ctx, principal, target, "status", "suspended", audit.SUSPENDED, ip=ip)


async def reactivate(ctx: Accounts, principal: Principal, target: UUID, *, ip: str = "") -> User:
    """Reactivate an account; this also clears a login lockout."""
    return await _change(ctx, principal, target, "status", "active", audit.REACTIVATED, ip=ip)


async def set_role(
    ctx: Accounts, principal: Principal, target: UUID, role: str, *, ip: str = ""
) -> User:
    if role not in ROLES:
        raise AccountError("invalid_field", f"role: one of {', '.join(ROLES)}", 422)
    return await _change(ctx, principal, target, "role", role, audit.ROLE_CHANGED, ip=ip)


async def audit_log(
    ctx: Accounts, principal: Principal, *, user_id: UUID | None = None, limit: int = 100,
    before: int | None = None,
) -> list[audit.Event]:
    require_admin(principal)
    async with ctx.db.as_user(principal.user.id) as conn:
        return await audit.list_events(conn, user_id=user_id, limit=limit, before=before)
