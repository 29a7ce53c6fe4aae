"""The security audit log: append-only rows in ``security_events`` under RLS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from persistence.db import Connection

# The event kinds, documented in docs/api.md.
LOGIN_OK = "login.ok"
LOGIN_FAILED = "login.failed"
LOGIN_LOCKED = "login.locked"
LOGIN_UNKNOWN = "login.unknown_user"
LOGIN_SUSPENDED = "login.suspended"
LOGOUT = "logout"
REGISTER = "register"
TOKEN_REJECTED = "token.rejected"  # noqa: S105 (an event name)
CSRF_FAILED = "csrf.failed"
TOTP_ENROLLED = "2fa.enrol"
TOTP_ENABLED = "2fa.enabled"
TOTP_DISABLED = "2fa.disabled"
TOTP_FAILED = "2fa.failed"
RECOVERY_USED = "2fa.recovery_used"
RECOVERY_REGENERATED = "2fa.recovery_regenerated"
RESET_REQUESTED = "password.reset_requested"
RESET_DONE = "password.reset"
RESET_REFUSED = "password.reset_refused"
PASSWORD_CHANGED = "password.changed"  # noqa: S105 (an event name)
ROLE_CHANGED = "admin.role_changed"
SUSPENDED = "admin.suspended"
REACTIVATED = "admin.reactivated"
PROFILE_UPDATED = "profile.updated"
EXPORTED = "account.exported"


@dataclass(frozen=True)
class Event:
    id: int
    user_id: UUID | None
    actor_id: UUID | None
    kind: str
    ip: str
    detail: dict[str, Any]
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": str(self.user_id) if self.user_id else None,
            "actor_id": str(self.actor_id) if self.actor_id else None,
            "kind": self.kind,
            "ip": self.ip,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }


async def record(
    conn: Connection,
    user_id: UUID | None,
    kind: str,
    *,
    ip: str = "",
    actor_id: UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event. Runs in the caller's transaction (and RLS context)."""
    await conn.execute(
        "INSERT INTO security_events (user_id, actor_id, kind, ip, detail) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        user_id,
        actor_id,
        kind,
        ip,
        json.dumps(detail or {}),
    )


async def list_events(
    conn: Connection, *, user_id: UUID | None = None, limit: int = 100, before: int | None = None
) -> list[Event]:
    """Events visible in this RLS context, newest first (optionally one user's)."""
    rows = await conn.fetch(
        "SELECT id, user_id, actor_id, kind, ip, detail, at FROM security_events "
        "WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::bigint IS NULL OR id < $2) "
        "ORDER BY id DESC LIMIT $3",
        user_id,
        before,
        limit,
    )
    return [
        Event(r["id"], r["user_id"], r["actor_id"], r["kind"], r["ip"], json.loads(r["detail"]),
              r["at"])
        for r in rows
    ]
