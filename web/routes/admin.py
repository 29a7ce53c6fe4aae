"""``/api/admin/*``: user list, suspend/reactivate, roles, the whole audit log."""

from __future__ import annotations

from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts import admin
from web.errors import ApiError
from web.routes.common import body, ok, path_uuid, principal, query_int, services
from web.security import client_ip


async def list_users(request: Request) -> Response:
    who = await principal(request)
    found = await admin.list_users(
        services(request).accounts,
        who,
        limit=query_int(request, "limit", 50, 1, 500),
        offset=query_int(request, "offset", 0, 0, 10**9),
        query=request.query_params.get("q", "")[:100],
    )
    return ok({"users": [u.to_json() for u in found]})


async def suspend(request: Request) -> Response:
    who = await principal(request)
    user = await admin.suspend(services(request).accounts, who, path_uuid(request, "user_id"),
                               ip=client_ip(request))
    return ok({"user": user.to_json()})


async def reactivate(request: Request) -> Response:
    who = await principal(request)
    user = await admin.reactivate(services(request).accounts, who,
                                  path_uuid(request, "user_id"), ip=client_ip(request))
    return ok({"user": user.to_json()})


async def set_role(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    user = await admin.set_role(services(request).accounts, who, path_uuid(request, "user_id"),
                                b.text("role", max_len=20), ip=client_ip(request))
    return ok({"user": user.to_json()})


async def audit_log(request: Request) -> Response:
    who = await principal(request)
    raw_user = request.query_params.get("user_id")
    try:
        user_id = UUID(raw_user) if raw_user else None
    except ValueError:
        raise ApiError("invalid_field", "user_id: not a valid id", 422) from None
    events = await admin.audit_log(
        services(request).accounts,
        who,
        user_id=user_id,
        limit=query_int(request, "limit", 100, 1, 1000),
        before=query_int(request, "before", 0, 0, 2**62) or None,
    )
    return ok({"events": [e.to_json() for e in events]})


routes = [
    Route("/api/admin/users", list_users, methods=["GET"]),
    Route("/api/admin/users/{user_id}/suspend", suspend, methods=["POST"]),
    Route("/api/admin/users/{user_id}/reactivate", reactivate, methods=["POST"]),
    Route("/api/admin/users/{user_id}/role", set_role, methods=["POST"]),
    Route("/api/admin/audit", audit_log, methods=["GET"]),
]
