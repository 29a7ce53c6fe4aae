"""Password hashing (argon2id) and the rules that reject obviously weak passwords."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from accounts.errors import AccountError

MIN_LENGTH = 10
MAX_LENGTH = 256


@dataclass(frozen=True)
class HashCost:
    """argon2id cost. Defaults: OWASP's argon2id baseline (19 MiB, t=2, p=1).

    RFC 9106's 64 MiB / t=3 took ~300 ms per login on a 2-core server
    (``python -m perf.auth``), which turns login into a CPU-exhaustion lever; this
    cost is ~4x cheaper and still memory-hard. Stored hashes carry their own
    parameters, and a login with an outdated cost rehashes the password.
    """

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1


class Passwords:
    """Hashes and verifies passwords with argon2id. Thread-safe; hashing blocks (tens of ms)."""

    def __init__(self, cost: HashCost = HashCost()) -> None:
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash("retoone-dummy-password-for-timing")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. With no hash, spends the same time and fails."""
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("accounts").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password_rules(password: str, *, username: str = "", email: str = "") -> None:
    """Raise ``AccountError("weak_password")`` when the password is obviously weak."""

    def weak(reason: str) -> AccountError:
        return AccountError("weak_password", f"password {reason}", 422)

    if len(password) < MIN_LENGTH:
        raise weak(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise weak(f"must be at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if len(set(lowered)) < 4:
        raise weak("uses too few different characters")
    if lowered in _common_passwords() or lowered.rstrip("0123456789!") in _common_passwords():
        raise weak("is on the list of commonly used passwords")
    if _is_sequence(lowered):
        raise weak("is a keyboard or alphabet sequence")
    for part in (username.lower(), email.lower().split("@")[0]):
        if len(part) >= 3 and part in lowered:
            raise weak("must not contain your username or email name")


_SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiopasdfghjklzxcvbnm")


def _is_sequence(text: str) -> bool:
    stripped = "".join(ch for ch in text if ch.isalnum())
    if len(stripped) < len(text) - 2:
        return False
    return any(stripped in seq or stripped in seq[::-1] for seq in _SEQUENCES)
