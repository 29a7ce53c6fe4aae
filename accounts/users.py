"""Users: registration, the profile, data export and account deletion."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from accounts import audit
from accounts.context import Accounts
from accounts.errors import AccountError, invalid
from accounts.lockout import confirm_password
from accounts.passwords import check_password_rules
from persistence.db import Connection

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PRIVACY = ("public", "followers", "private")
MAX_GENRES = 20

USER_COLUMNS = (
    "id, username, email, role, status, display_name, bio, genres, privacy, "
    "totp_enabled, created_at"
)


@dataclass(frozen=True)
class User:
    id: UUID
    username: str
    email: str
    role: str
    status: str
    display_name: str
    bio: str
    genres: list[str]
    privacy: str
    totp_enabled: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.status == "active"

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            email=row["email"],
            role=row["role"],
            status=row["status"],
            display_name=row["display_name"],
            bio=row["bio"],
            genres=list(row["genres"]),
            privacy=row["privacy"],
            totp_enabled=row["totp_enabled"],
            created_at=row["created_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "email": self.email,
            "role": self.role,
            "status": self.status,
            "display_name": self.display_name,
            "bio": self.bio,
            "genres": self.genres,
            "privacy": self.privacy,
            "totp_enabled": self.totp_enabled,
            "created_at": self.created_at.isoformat(),
        }


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise invalid("username", "3-32 characters: letters, digits, '_', '.', '-'")
    return username


def validate_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise invalid("email", "not a valid email address")
    return email


async def fetch_user(conn: Connection, user_id: UUID) -> User | None:
    row = await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return User.from_row(row) if row else None


async def register(
    ctx: Accounts, username: str, email: str, password: str, *, ip: str = ""
) -> User:
    """Create an account; the caller logs in separately."""
    validate_username(username)
    email = validate_email(email)
    check_password_rules(password, username=username, email=email)
    password_hash = await asyncio.to_thread(ctx.passwords.hash, password)
    user_id = uuid4()
    try:
        async with ctx.db.as_user(user_id) as conn:
            await conn.execute(
                "INSERT INTO users (id, username, email, password_hash, display_name) "
                "VALUES ($1, $2, $3, $4, $2)",
                user_id,
                username,
                email,
                password_hash,
            )
            await audit.record(conn, user_id, audit.REGISTER, ip=ip)
            user = await fetch_user(conn, user_id)
    except asyncpg.UniqueViolationError as exc:
        which = "username" if "username" in (exc.constraint_name or "") else "email"
        raise AccountError(f"{which}_taken", f"that {which} is already registered", 409) from None
    assert user is not None
    return user


@dataclass(frozen=True)
class ProfileUpdate:
    display_name: str | None = None
    bio: str | None = None
    genres: list[str] | None = None
    privacy: str | None = None

    def validate(self) -> None:
        if self.display_name is not None and len(self.display_name) > 64:
            raise invalid("display_name", "at most 64 characters")
        if self.bio is not None and len(self.bio) > 2000:
            raise invalid("bio", "at most 2000 characters")
        if self.genres is not None:
            if len(self.genres) > MAX_GENRES:
                raise invalid("genres", f"at most {MAX_GENRES} genres")
            if any(not g.strip() or len(g) > 40 for g in self.genres):
                raise invalid("genres", "each genre is 1-40 characters")
        if self.privacy is not None and self.privacy not in PRIVACY:
            raise invalid("privacy", f"one of {', '.join(PRIVACY)}")


async def update_profile(ctx: Accounts, user_id: UUID, update: ProfileUpdate) -> User:
    update.validate()
    async with ctx.db.as_user(user_id) as conn:
        await conn.execute(
            "UPDATE users SET display_name = coalesce($2, display_name), "
            "bio = coalesce($3, bio), genres = coalesce($4, genres), "
            "privacy = coalesce($5, privacy) WHERE id = $1",
            user_id,
            update.display_name,
            update.bio,
            [g.strip() for g in update.genres] if update.genres is not None else None,
            update.privacy,
        )
        changed = [k for k, v in update.__dict__.items() if v is not None]
        await audit.record(conn, user_id, audit.PROFILE_UPDATED, detail={"fields": changed})
        user = await fetch_user(conn, user_id)
    assert user is not None
    return user


# Each user-data table and the columns an export shows (secrets and hashes left out).
EXPORT_TABLES: dict[str, tuple[str, str]] = {
    "users": (USER_COLUMNS + ", password_changed_at, updated_at", "id"),
    "auth_sessions": ("id, created_at, expires_at, revoked_at, last_seen_at, ip, user_agent",
                      "user_id"),
    "recovery_codes": ("id, created_at, used_at", "user_id"),
    "password_resets": ("id, created_at, expires_at, used_at", "user_id"),
    # Not the body: a password-reset message holds a live reset token, which would let a
    # stolen session set a new password without knowing the current one.
    "outbox": ("id, kind, recipient, subject, created_at, sent_at", "user_id"),
    "security_events": ("id, actor_id, kind, ip, detail, at", "user_id"),
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


async def export(ctx: Accounts, user_id: UUID, *, ip: str = "") -> dict[str, Any]:
    """Every row of the user's data, as JSON-ready dicts keyed by table."""
    out: dict[str, Any] = {}
    async with ctx.db.as_user(user_id) as conn:
        await audit.record(conn, user_id, audit.EXPORTED, ip=ip)
        for table, (columns, owner) in EXPORT_TABLES.items():
            rows = await conn.fetch(
                f"SELECT {columns} FROM {table} WHERE {owner} = $1 ORDER BY 1", user_id
            )
            out[table] = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
    for event in out["security_events"]:
        if isinstance(event["detail"], str):
            event["detail"] = json.loads(event["detail"])
    return out


async def delete_account(
    ctx: Accounts, user_id: UUID, password: str, *, ip: str = ""
) -> None:
    """Remove the user and (by cascade) every row of theirs. Needs the password."""
    await confirm_password(ctx, user_id, password, ip=ip, during="account_delete")
    async with ctx.db.as_user(user_id) as conn:
        await conn.execute("DELETE FROM users WHERE id = $1", user_id)
