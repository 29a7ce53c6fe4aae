"""The Starlette application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from web.errors import EXCEPTION_HANDLERS
from web.routes import admin, auth, health, me
from web.services import Services, start_services
from web.settings import Settings


async def index(request: Request) -> Response:
    page = resources.files("web.static").joinpath("index.html").read_text("utf-8")
    return HTMLResponse(page)


def create_app(
    settings: Settings,
    services: Services | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """Build the app. With ``services`` given (tests) the lifespan neither starts nor stops them."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        started = await start_services(settings)
        app.state.services = started
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await started.close()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            *health.routes,
            *auth.routes,
            *me.routes,
            *admin.routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    return app
