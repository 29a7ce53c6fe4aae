"""``GET /healthz``: is the server able to serve? Names the failing part when not."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from web.routes.common import services

TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    svc = services(request)
    report: dict[str, object] = {"status": "ok", "db": "ok", "bus": svc.bus.kind}
    failing: dict[str, str] = {}
    try:
        await asyncio.wait_for(svc.db.ping(), TIMEOUT_S)
    except Exception as exc:
        report["db"] = "down"
        failing["db"] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        await asyncio.wait_for(svc.bus.ping(), TIMEOUT_S)
    except Exception as exc:
        failing["bus"] = f"{svc.bus.kind}: {type(exc).__name__}: {exc}"[:300]
    if failing:
        report["status"] = "unavailable"
        report["failing"] = failing
        return JSONResponse(report, 503)
    return JSONResponse(report)


routes = [Route("/healthz", healthz, methods=["GET"])]
