"""The ``retoone`` command line: serve, db migrate, user create, outbox, analyze, render, play."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence

import asyncpg
import uvicorn
from rich.console import Console

from accounts.context import Accounts
from accounts.errors import AccountError
from accounts.passwords import Passwords
from accounts.users import register
from persistence.migrate import MigrationError
from web import analyze_cmd, play_cmd, render_cmd
from web.app import create_app
from web.services import accounts_config, open_database
from web.settings import Settings, SettingsError

console = Console(stderr=True)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="where Retoone keeps its data (RETOONE_DATA_DIR)")
    p.add_argument("--database-url", help="external PostgreSQL URL (RETOONE_DATABASE_URL); "
                   "without it an embedded PostgreSQL runs in the data dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retoone", description="Retoone: real-time collaborative audio server"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the server")
    serve.add_argument("--host", help="address to listen on (RETOONE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (RETOONE_PORT, default 8000)")
    serve.add_argument("--redis-url", help="Redis URL for several nodes (RETOONE_REDIS_URL)")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])
    _add_common(serve)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="apply pending migrations")
    _add_common(migrate)

    user = sub.add_parser("user", help="user commands")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user (password from "
                                 "RETOONE_NEW_PASSWORD or a prompt)")
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--admin", action="store_true", help="give the user the admin role")
    _add_common(create)

    outbox = sub.add_parser("outbox", help="show messages waiting for delivery (no mail server)")
    outbox.add_argument("--limit", type=int, default=20)
    _add_common(outbox)
    analyze_cmd.add_parser(sub)
    render_cmd.add_parser(sub)
    play_cmd.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    return Settings.from_env(
        overrides={
            "data_dir": getattr(args, "data_dir", None),
            "database_url": getattr(args, "database_url", None),
            **extra,
        }
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args, host=args.host, port=args.port, redis_url=args.redis_url)

    def ready() -> None:
        db = "embedded PostgreSQL" if settings.database_url is None else "external PostgreSQL"
        bus = "Redis bus" if settings.redis_url else "in-process bus"
        print(f"Retoone is running at {settings.url}  ({db}, {bus}; data in {settings.data_dir})",
              flush=True)

    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=args.log_level, access_log=args.log_level == "debug")
    _Server(config, on_started=ready).run()
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server, announcing itself once the socket is bound (not before, as the
    app's lifespan would) and exiting with status 0 after a graceful SIGTERM/SIGINT stop
    (uvicorn re-raises the caught signal, which would kill the process with it)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


async def _migrate(settings: Settings) -> None:
    db, embedded = await open_database(settings)
    try:
        applied = db.applied_migrations
        if applied:
            console.print(f"applied migrations: {', '.join(f'{v:04d}' for v in applied)}")
        else:
            console.print("database is up to date")
    finally:
        await db.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> None:
    db, embedded = await open_database(settings)
    try:
        ctx = Accounts(db, settings.resolve_secret_key(), Passwords(), accounts_config(settings))
        user = await register(ctx, args.username, args.email, password)
        if args.admin:
            owner = await asyncpg.connect(db.owner_url)
            try:
                await owner.execute("UPDATE users SET role = 'admin' WHERE id = $1", user.id)
            finally:
                await owner.close()
        role = "admin" if args.admin else "user"
        console.print(f"created {role} {user.username} ({user.id})")
    finally:
        await db.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _outbox(settings: Settings, limit: int) -> None:
    db, embedded = await open_database(settings)
    try:
        owner = await asyncpg.connect(db.owner_url)
        try:
            rows = await owner.fetch(
                "SELECT created_at, recipient, subject, body FROM outbox "
                "WHERE sent_at IS NULL ORDER BY id DESC LIMIT $1", limit)
        finally:
            await owner.close()
        if not rows:
            console.print("the outbox is empty")
        for r in rows:
            console.rule(f"{r['created_at']:%Y-%m-%d %H:%M} to {r['recipient']}: {r['subject']}")
            print(r["body"])
    finally:
        await db.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "db":
            asyncio.run(_migrate(_settings(args)))
            return 0
        if args.command == "user":
            password = os.environ.get("RETOONE_NEW_PASSWORD") or getpass.getpass("password: ")
            asyncio.run(_create_user(_settings(args), args, password))
            return 0
        if args.command == "outbox":
            asyncio.run(_outbox(_settings(args), args.limit))
            return 0
        if args.command == "analyze":
            return analyze_cmd.run(args)
        if args.command == "render":
            return render_cmd.run(args)
        if args.command == "play":
            return play_cmd.run(args)
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        return 2
    except AccountError as exc:
        console.print(f"[red]{exc.code}:[/] {exc.message}")
        return 1
    except MigrationError as exc:
        console.print(f"[red]migration error:[/] {exc}")
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        console.print(f"[red]database error:[/] {type(exc).__name__}: {exc}")
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
