"""Reading JSON request bodies: size-capped, must be an object, typed field access.

Every failure is an ``ApiError`` with a 4xx status, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from web.errors import ApiError

MAX_BODY_BYTES = 1024 * 1024


async def read_json(request: Request, max_bytes: int = MAX_BODY_BYTES) -> Body:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError("bad_request", "Content-Length is not a number", 400)
        if int(declared) > max_bytes:
            raise ApiError("body_too_large", f"bodies are limited to {max_bytes} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise ApiError("body_too_large", f"bodies are limited to {max_bytes} bytes", 413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError("bad_request", "the client went away mid-body", 400) from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError("malformed_json", "the body is empty; send a JSON object", 400)
    try:
        # Strict UTF-8 (RFC 8259; a BOM is tolerated): json.loads(bytes) would also take
        # UTF-16/32 and let encoded surrogates ("\xed\xa0\x80") through.
        data = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and the int() digit limit
        # ("1" * 5000); RecursionError is deep nesting ("[" * 100000).
        raise ApiError("malformed_json", f"the body is not valid JSON: {exc}", 400) from None
    if not isinstance(data, dict):
        raise ApiError("invalid_body", "the body must be a JSON object", 422)
    return Body(data)


def _encodable(text: str) -> bool:
    """False for strings with lone surrogates (JSON allows ``"\\ud800"``; UTF-8 does not)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Body:
    """Typed access to the fields of a JSON object body."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.data or self.data[name] is None:
            if required:
                raise ApiError("missing_field", f"{name}: this field is required", 422)
            return None
        return self.data[name]

    def text(self, name: str, *, max_len: int = 1000) -> str:
        value = self.opt_str(name, max_len=max_len, required=True)
        assert value is not None
        return value

    def opt_str(self, name: str, *, max_len: int = 1000, required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ApiError("invalid_field", f"{name}: must be a string", 422)
        if len(value) > max_len:
            raise ApiError("invalid_field", f"{name}: at most {max_len} characters", 422)
        if "\x00" in value:
            raise ApiError("invalid_field", f"{name}: must not contain NUL characters", 422)
        if not _encodable(value):
            raise ApiError("invalid_field", f"{name}: must not contain lone surrogates", 422)
        return value

    def opt_str_list(
        self, name: str, *, max_items: int = 100, max_len: int = 100
    ) -> list[str] | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > max_items:
            raise ApiError("invalid_field", f"{name}: must be a list of at most {max_items}", 422)
        for item in value:
            if (not isinstance(item, str) or len(item) > max_len or "\x00" in item
                    or not _encodable(item)):
                raise ApiError(
                    "invalid_field", f"{name}: items must be strings of at most {max_len}", 422
                )
        return value
