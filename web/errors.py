"""The one error shape of the REST API: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accounts.errors import AccountError

_log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refused request: a stable ``code``, a human ``message`` and the HTTP status."""

    def __init__(
        self, code: str, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers


def error_response(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.code, exc.message, exc.status, exc.headers)


async def account_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccountError)
    return error_response(exc.code, exc.message, exc.status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(code, str(exc.detail), exc.status_code, exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response("internal_error", "the server failed; this is our fault", 500)


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    AccountError: account_error,
    HTTPException: http_error,
    Exception: internal_error,
}
