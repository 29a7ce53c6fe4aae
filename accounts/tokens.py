"""Random bearer secrets: session tokens, reset tokens, recovery codes, CSRF tokens.

Secrets are 256-bit random and stored only as SHA-256 hashes (a slow hash buys
nothing for secrets this long). Recovery codes are shorter, so they are keyed
with the server secret (HMAC) before storage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def hash_recovery_code(secret_key: bytes, code: str) -> bytes:
    normal = normalise_recovery_code(code).encode()
    return hmac.new(secret_key, b"recovery:" + normal, hashlib.sha256).digest()


def csrf_token(secret_key: bytes, session_token: str) -> str:
    """The CSRF token bound to a cookie session (double-submit, HMAC-keyed)."""
    mac = hmac.new(secret_key, b"csrf:" + session_token.encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_matches(secret_key: bytes, session_token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(secret_key, session_token), presented)
