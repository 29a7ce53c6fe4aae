"""Start and stop what the server runs on: database (embedded or external), bus, accounts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from accounts.context import Accounts, AccountsConfig
from accounts.passwords import Passwords
from persistence.db import Database
from persistence.embedded import EmbeddedPostgres
from session.bus import Bus
from transport.bus import make_bus
from web.security import RateLimiter
from web.settings import Settings

_log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    accounts: Accounts
    bus: Bus
    rate_limiter: RateLimiter
    embedded: EmbeddedPostgres | None = None
    owns_db: bool = field(default=True)

    async def close(self) -> None:
        await self.bus.close()
        if self.owns_db:
            await self.db.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def accounts_config(settings: Settings) -> AccountsConfig:
    return AccountsConfig(
        session_ttl=settings.session_ttl,
        lockout_attempts=settings.lockout_attempts,
        lockout_window=settings.lockout_window,
        public_url=settings.url,
    )


async def open_database(settings: Settings) -> tuple[Database, EmbeddedPostgres | None]:
    """Open (and migrate) the configured database, starting the embedded one if none is."""
    secret = settings.resolve_secret_key()
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        _log.info("starting embedded PostgreSQL in %s", embedded.pgdata)
        url = await asyncio.to_thread(embedded.start)
    try:
        db = await Database.open(url, secret)
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    return db, embedded


async def start_services(settings: Settings) -> Services:
    db, embedded = await open_database(settings)
    secret = settings.resolve_secret_key()
    accounts = Accounts(db, secret, Passwords(), accounts_config(settings))
    return Services(
        settings=settings,
        db=db,
        accounts=accounts,
        bus=make_bus(settings.redis_url),
        rate_limiter=RateLimiter(settings.auth_rate_limit),
        embedded=embedded,
    )
