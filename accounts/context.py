"""What every account operation needs: the database, the hasher, the secret, the policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from accounts.passwords import Passwords
from persistence.db import Database


@dataclass(frozen=True)
class AccountsConfig:
    """Account policy. Every number here is configurable from the server settings."""

    session_ttl: timedelta = timedelta(days=14)
    lockout_attempts: int = 5
    lockout_window: timedelta = timedelta(minutes=15)
    reset_ttl: timedelta = timedelta(minutes=30)
    recovery_codes: int = 10
    public_url: str = "http://127.0.0.1:8000"
    issuer: str = "Retoone"


@dataclass
class Accounts:
    """The accounts service's dependencies, handed to each operation."""

    db: Database
    secret_key: bytes
    passwords: Passwords = field(default_factory=Passwords)
    config: AccountsConfig = field(default_factory=AccountsConfig)
