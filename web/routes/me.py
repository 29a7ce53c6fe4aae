"""``/api/me*``: the caller's profile, password, two-factor, audit log, export, deletion."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts import audit, auth, twofactor, users
from web.routes.common import body, ok, principal, query_int, services
from web.security import clear_session_cookies, client_ip


async def me(request: Request) -> Response:
    who = await principal(request)
    return ok({"user": who.user.to_json()})


async def update_me(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    update = users.ProfileUpdate(
        display_name=b.opt_str("display_name", max_len=200),
        bio=b.opt_str("bio", max_len=5000),
        genres=b.opt_str_list("genres", max_items=100, max_len=100),
        privacy=b.opt_str("privacy", max_len=20),
    )
    user = await users.update_profile(services(request).accounts, who.user.id, update)
    return ok({"user": user.to_json()})


async def delete_me(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    await users.delete_account(services(request).accounts, who.user.id,
                               b.text("password", max_len=1024), ip=client_ip(request))
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


async def change_password(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    ended = await auth.change_password(
        services(request).accounts,
        who,
        b.text("current_password", max_len=1024),
        b.text("new_password", max_len=1024),
        ip=client_ip(request),
    )
    return ok({"status": "password changed", "sessions_ended": ended})


async def export(request: Request) -> Response:
    who = await principal(request)
    data = await users.export(services(request).accounts, who.user.id, ip=client_ip(request))
    return ok(data)


async def my_audit(request: Request) -> Response:
    who = await principal(request)
    limit = query_int(request, "limit", 100, 1, 1000)
    before = query_int(request, "before", 0, 0, 2**62) or None
    async with services(request).accounts.db.as_user(who.user.id) as conn:
        events = await audit.list_events(conn, user_id=who.user.id, limit=limit, before=before)
    return ok({"events": [e.to_json() for e in events]})


async def totp_enrol(request: Request) -> Response:
    who = await principal(request)
    e = await twofactor.enrol(services(request).accounts, who.user.id, ip=client_ip(request))
    return ok({"secret": e.secret, "otpauth_uri": e.otpauth_uri, "qr_svg": e.qr_svg})


async def totp_confirm(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    codes = await twofactor.confirm(services(request).accounts, who.user.id,
                                    b.text("code", max_len=16), ip=client_ip(request))
    return ok({"enabled": True, "recovery_codes": codes})


async def totp_disable(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    await twofactor.disable(
        services(request).accounts,
        who.user.id,
        b.text("password", max_len=1024),
        totp_code=b.opt_str("totp_code", max_len=16),
        recovery_code=b.opt_str("recovery_code", max_len=32),
        ip=client_ip(request),
    )
    return ok({"enabled": False})


async def totp_recovery_codes(request: Request) -> Response:
    who = await principal(request)
    b = await body(request)
    codes = await twofactor.regenerate_recovery_codes(
        services(request).accounts, who.user.id, b.text("totp_code", max_len=16),
        ip=client_ip(request),
    )
    return ok({"recovery_codes": codes})


routes = [
    Route("/api/me", me, methods=["GET"]),
    Route("/api/me", update_me, methods=["PATCH"]),
    Route("/api/me", delete_me, methods=["DELETE"]),
    Route("/api/me/password", change_password, methods=["POST"]),
    Route("/api/me/export", export, methods=["GET"]),
    Route("/api/me/audit", my_audit, methods=["GET"]),
    Route("/api/me/2fa/enrol", totp_enrol, methods=["POST"]),
    Route("/api/me/2fa/confirm", totp_confirm, methods=["POST"]),
    Route("/api/me/2fa/disable", totp_disable, methods=["POST"]),
    Route("/api/me/2fa/recovery-codes", totp_recovery_codes, methods=["POST"]),
]
