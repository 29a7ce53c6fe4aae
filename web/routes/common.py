"""Helpers every route module uses: the services, the caller, JSON replies."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from accounts.auth import Principal
from web.body import Body, read_json
from web.errors import ApiError
from web.security import require_principal
from web.services import Services


def services(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc


async def principal(request: Request) -> Principal:
    return await require_principal(request, services(request).accounts)


async def body(request: Request) -> Body:
    return await read_json(request, services(request).settings.max_body_bytes)


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status)


def path_uuid(request: Request, name: str) -> UUID:
    try:
        return UUID(request.path_params[name])
    except ValueError:
        raise ApiError("not_found", f"{name} is not a valid id", 404) from None


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("invalid_field", f"{name}: must be an integer", 422) from None
    if not lo <= value <= hi:
        raise ApiError("invalid_field", f"{name}: must be between {lo} and {hi}", 422)
    return value
