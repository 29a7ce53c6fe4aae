"""The embedded PostgreSQL default: a private server from the ``pgserver`` package.

With no database URL configured, Retoone keeps its own PostgreSQL cluster in
``<data dir>/pgdata``. It listens only on a Unix socket, is started on demand,
reused by the next start (and by concurrent CLI commands on the same data dir),
and stopped when the last process that uses it lets go.

Thread: every method blocks (initdb, pg_ctl); call them from a worker thread
(``asyncio.to_thread``) when inside an event loop.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

# pgserver asks platformdirs for a runtime dir at import; on servers without
# XDG_RUNTIME_DIR that warns and falls back to /tmp/runtime-UID, which is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
from pgserver.postgres_server import PostgresServer, get_server  # noqa: E402

_log = logging.getLogger(__name__)

DATABASE_NAME = "retoone"


class EmbeddedPostgres:
    """A private PostgreSQL cluster living in ``data_dir / "pgdata"``."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or attach to) the cluster; return an owner URL for the Retoone database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
            _log.info("created database %s in %s", DATABASE_NAME, self.pgdata)
        return with_database(self._server.get_uri(), DATABASE_NAME)

    def stop(self) -> None:
        """Let go of the cluster; it stops if no other process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` instead of its own database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database)))
