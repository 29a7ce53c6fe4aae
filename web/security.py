"""Request authentication (Bearer header or cookie), CSRF for cookies, auth rate limits.

Tokens arrive as ``Authorization: Bearer <token>`` (API clients), as the
HttpOnly ``retoone_session`` cookie (browsers) or, for WebSocket handshakes
only, as a ``token`` query parameter. A state-changing request authenticated
by cookie must carry the CSRF token in ``X-CSRF-Token``; Bearer requests are
exempt because browsers never attach them on their own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Literal

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from accounts import audit
from accounts.auth import LoginResult, Principal, authenticate
from accounts.context import Accounts
from accounts.tokens import csrf_matches, csrf_token
from web.errors import ApiError

SESSION_COOKIE = "retoone_session"
CSRF_COOKIE = "retoone_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

TokenSource = Literal["bearer", "cookie", "query"]


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


def find_token(conn: HTTPConnection) -> tuple[str, TokenSource] | None:
    header = conn.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError("token_invalid", "Authorization must be 'Bearer <token>'", 401)
        return value.strip(), "bearer"
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, "cookie"
    if conn.scope["type"] == "websocket" and conn.query_params.get("token"):
        return conn.query_params["token"], "query"
    return None


async def require_principal(request: HTTPConnection, accounts: Accounts) -> Principal:
    """The authenticated principal, or an error saying what is missing or wrong."""
    found = find_token(request)
    if found is None:
        raise ApiError("not_authenticated", "log in first (Bearer token or session cookie)", 401)
    token, source = found
    principal = await authenticate(accounts, token, ip=client_ip(request))
    method = request.scope.get("method", "GET")
    if source == "cookie" and method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER, "")
        if not presented or not csrf_matches(accounts.secret_key, token, presented):
            async with accounts.db.as_user(principal.user.id) as conn:
                await audit.record(conn, principal.user.id, audit.CSRF_FAILED,
                                   ip=client_ip(request), detail={"path": request.url.path})
            raise ApiError(
                "csrf_failed",
                f"cookie-authenticated {method} requests need the {CSRF_HEADER} header",
                403,
            )
    return principal


def set_session_cookies(
    response: Response, accounts: Accounts, login: LoginResult, *, secure: bool
) -> None:
    max_age = int(accounts.config.session_ttl.total_seconds())
    response.set_cookie(SESSION_COOKIE, login.token, max_age=max_age, httponly=True,
                        samesite="lax", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf_token(accounts.secret_key, login.token),
                        max_age=max_age, httponly=False, samesite="lax", secure=secure, path="/")


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests, bursting to the same.

    Thread: event loop only. Memory is bounded: the least recently seen
    addresses are forgotten past ``max_clients``.
    """

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.capacity = float(max(per_minute, 1))
        self.rate = self.capacity / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> float:
        """Take one token; return 0 if allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def enforce(self, request: Request) -> None:
        wait = self.check(client_ip(request))
        if wait > 0:
            raise ApiError(
                "rate_limited",
                "too many authentication requests; slow down",
                429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
