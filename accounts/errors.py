"""Errors the accounts service raises; each names its code, message and HTTP status."""

from __future__ import annotations


class AccountError(Exception):
    """A refused account operation. ``code`` is stable and documented in docs/api.md."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"AccountError({self.code!r}, {self.message!r}, {self.status})"


def invalid(field: str, message: str) -> AccountError:
    return AccountError("invalid_field", f"{field}: {message}", 422)
