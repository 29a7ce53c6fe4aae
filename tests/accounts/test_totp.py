from __future__ import annotations

import pyotp

from accounts.tokens import (
    csrf_matches,
    csrf_token,
    hash_recovery_code,
    hash_token,
    new_recovery_code,
    new_token,
)
from accounts.twofactor import STEP_SECONDS, match_totp_step

SECRET = pyotp.random_base32()
NOW = 1_800_000_000.0


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).at(step * STEP_SECONDS)


def test_current_and_adjacent_steps_match() -> None:
    step = int(NOW // STEP_SECONDS)
    assert match_totp_step(SECRET, code_at(step), 0, NOW) == step
    assert match_totp_step(SECRET, code_at(step - 1), 0, NOW) == step - 1
    assert match_totp_step(SECRET, code_at(step + 1), 0, NOW) == step + 1
    assert match_totp_step(SECRET, code_at(step - 2), 0, NOW) is None


def test_a_code_works_once() -> None:
    step = int(NOW // STEP_SECONDS)
    used = match_totp_step(SECRET, code_at(step), 0, NOW)
    assert used == step
    assert match_totp_step(SECRET, code_at(step), used, NOW) is None
    assert match_totp_step(SECRET, code_at(step - 1), used, NOW) is None


def test_malformed_codes_do_not_match() -> None:
    for code in ("", "12345", "1234567", "abcdef", "12 34 5x"):
        assert match_totp_step(SECRET, code, 0, NOW) is None
    spaced = code_at(int(NOW // STEP_SECONDS))
    assert match_totp_step(SECRET, spaced[:3] + " " + spaced[3:], 0, NOW) is not None


def test_tokens_and_codes() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43
    assert hash_token(a) != hash_token(b) and len(hash_token(a)) == 32
    code = new_recovery_code()
    assert len(code) == 11 and code[5] == "-"
    key = b"k" * 32
    assert hash_recovery_code(key, code) == hash_recovery_code(key, code.upper().replace("-", ""))
    assert hash_recovery_code(key, code) != hash_recovery_code(b"j" * 32, code)
    assert csrf_matches(key, a, csrf_token(key, a))
    assert not csrf_matches(key, b, csrf_token(key, a))
