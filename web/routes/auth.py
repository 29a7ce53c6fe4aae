"""``/api/auth/*``: register, login, logout, password reset. Rate-limited per client."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accounts import auth, reset, users
from accounts.tokens import csrf_token
from web.routes.common import body, ok, principal, services
from web.security import clear_session_cookies, client_ip, set_session_cookies


def _limit(request: Request) -> None:
    services(request).rate_limiter.enforce(request)


async def register(request: Request) -> Response:
    _limit(request)
    b = await body(request)
    user = await users.register(
        services(request).accounts,
        b.text("username", max_len=64),
        b.text("email", max_len=320),
        b.text("password", max_len=1024),
        ip=client_ip(request),
    )
    return ok({"user": user.to_json()}, 201)


async def login(request: Request) -> Response:
    _limit(request)
    b = await body(request)
    svc = services(request)
    result = await auth.login(
        svc.accounts,
        b.text("login", max_len=320),
        b.text("password", max_len=1024),
        totp_code=b.opt_str("totp_code", max_len=16),
        recovery_code=b.opt_str("recovery_code", max_len=32),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    response = JSONResponse(
        {
            "token": result.token,
            "csrf_token": csrf_token(svc.accounts.secret_key, result.token),
            "expires_at": result.expires_at.isoformat(),
            "user": result.user.to_json(),
        }
    )
    set_session_cookies(response, svc.accounts, result,
                        secure=svc.settings.url.startswith("https://"))
    return response


async def logout(request: Request) -> Response:
    _limit(request)
    who = await principal(request)
    await auth.logout(services(request).accounts, who, ip=client_ip(request))
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


async def reset_request(request: Request) -> Response:
    _limit(request)
    b = await body(request)
    await reset.request_reset(
        services(request).accounts, b.text("login", max_len=320), ip=client_ip(request)
    )
    return ok({"status": "if that account exists, a reset message is on its way"}, 202)


async def reset_confirm(request: Request) -> Response:
    _limit(request)
    b = await body(request)
    await reset.confirm_reset(
        services(request).accounts,
        b.text("token", max_len=200),
        b.text("password", max_len=1024),
        ip=client_ip(request),
    )
    response = ok({"status": "password changed; log in again"})
    clear_session_cookies(response)
    return response


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/auth/password-reset", reset_request, methods=["POST"]),
    Route("/api/auth/password-reset/confirm", reset_confirm, methods=["POST"]),
]
