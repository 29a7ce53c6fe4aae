"""The bus a Room talks to. ``transport/`` provides the implementations (in-process, Redis).

Declared here so that ``session/`` never imports ``transport/`` (the layer rule,
checked by tests/test_layers.py): the web app factory picks one and hands it in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

Handler = Callable[[bytes], Awaitable[None]]


class Bus(Protocol):
    """Publish/subscribe between the rooms of all server processes."""

    @property
    def kind(self) -> str:
        """``"inproc"`` or ``"redis"``: what /healthz reports."""
        ...

    async def publish(self, channel: str, message: bytes) -> None: ...

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], Awaitable[None]]:
        """Call ``handler`` for each message on ``channel``; return an unsubscribe function."""
        ...

    async def ping(self) -> None:
        """Raise if the bus cannot carry messages now."""
        ...

    async def close(self) -> None: ...
