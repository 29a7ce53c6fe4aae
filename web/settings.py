"""Server settings: command-line flags over ``RETOONE_*`` environment variables over defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import platformdirs

SECRET_FILE = "secret_key"  # noqa: S105 (a file name)


class SettingsError(Exception):
    """A setting has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    public_url: str | None = None
    session_ttl: timedelta = timedelta(days=14)
    lockout_attempts: int = 5
    lockout_window: timedelta = timedelta(minutes=15)
    auth_rate_limit: int = 30  # auth requests per client address per minute
    max_body_bytes: int = 1024 * 1024

    @property
    def url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host  # noqa: S104
        return self.public_url or f"http://{host}:{self.port}"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
    ) -> Settings:
        """Read ``RETOONE_*`` variables; keyword overrides (from flags) win when not None."""
        env = os.environ if env is None else env
        base = cls()
        values: dict[str, object] = {
            "host": env.get("RETOONE_HOST") or base.host,
            "port": _int(env, "RETOONE_PORT", base.port),
            "data_dir": Path(env["RETOONE_DATA_DIR"]) if env.get("RETOONE_DATA_DIR")
            else base.data_dir,
            "database_url": env.get("RETOONE_DATABASE_URL") or None,
            "redis_url": env.get("RETOONE_REDIS_URL") or None,
            "secret_key": env.get("RETOONE_SECRET_KEY") or None,
            "public_url": env.get("RETOONE_PUBLIC_URL") or None,
            "session_ttl": timedelta(
                hours=_int(env, "RETOONE_SESSION_TTL_HOURS", base.session_ttl // timedelta(hours=1))
            ),
            "lockout_attempts": _int(env, "RETOONE_LOCKOUT_ATTEMPTS", base.lockout_attempts),
            "lockout_window": timedelta(
                minutes=_int(
                    env, "RETOONE_LOCKOUT_MINUTES", base.lockout_window // timedelta(minutes=1)
                )
            ),
            "auth_rate_limit": _int(env, "RETOONE_AUTH_RATE_LIMIT", base.auth_rate_limit),
        }
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        if isinstance(values["data_dir"], str):
            values["data_dir"] = Path(values["data_dir"])
        settings = replace(base, **values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port {self.port} is not between 1 and 65535")
        if self.lockout_attempts < 1:
            raise SettingsError("RETOONE_LOCKOUT_ATTEMPTS must be at least 1")
        if self.database_url and not self.database_url.startswith(("postgres://", "postgresql://")):
            raise SettingsError("RETOONE_DATABASE_URL must be a postgresql:// URL")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("RETOONE_REDIS_URL must be a redis:// URL")

    def resolve_secret_key(self) -> bytes:
        """The secret key: from the setting, else from the data dir (created on first use)."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / SECRET_FILE
        if path.exists():
            return path.read_text().strip().encode()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip().encode()
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        return key.encode()


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("retoone", appauthor=False))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
