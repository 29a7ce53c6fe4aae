"""Bus implementations: in-process (one node) and Redis pub/sub (several nodes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from session.bus import Bus, Handler

_log = logging.getLogger(__name__)


class InProcessBus:
    """Delivers messages to subscribers in this process. Thread: event loop only."""

    kind = "inproc"

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def publish(self, channel: str, message: bytes) -> None:
        for handler in list(self._handlers.get(channel, ())):
            await handler(message)

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], Awaitable[None]]:
        self._handlers[channel].append(handler)

        async def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._handlers[channel].remove(handler)

        return unsubscribe

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()


class RedisBus:
    """Redis pub/sub across server processes. Thread: event loop only."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pubsubs: set[aioredis.client.PubSub] = set()

    async def publish(self, channel: str, message: bytes) -> None:
        await self._redis.publish(channel, message)

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], Awaitable[None]]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(channel)
        # Wait for Redis to confirm, so a message published right after we return
        # is not lost to a subscription still in flight.
        while True:
            confirm = await pubsub.get_message(timeout=5.0)
            if confirm is None:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise ConnectionError(f"Redis did not confirm the subscription to {channel}")
            if confirm.get("type") == "subscribe":
                break
        self._pubsubs.add(pubsub)

        async def pump() -> None:
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    try:
                        await handler(item["data"])
                    except Exception:
                        _log.exception("bus handler for %s failed", channel)

        task = asyncio.create_task(pump())
        self._tasks.add(task)

        async def unsubscribe() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._tasks.discard(task)
            if pubsub in self._pubsubs:
                self._pubsubs.discard(pubsub)
                await pubsub.unsubscribe(channel)
                await pubsub.aclose()  # type: ignore[no-untyped-call]

        return unsubscribe

    async def ping(self) -> None:
        await asyncio.wait_for(self._redis.ping(), timeout=2)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pubsub in list(self._pubsubs):
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        self._pubsubs.clear()
        await self._redis.aclose()


def make_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
