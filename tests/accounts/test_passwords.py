from __future__ import annotations

import pytest
from argon2 import extract_parameters

from accounts.errors import AccountError
from accounts.passwords import HashCost, Passwords, check_password_rules
from tests.conftest import TEST_COST


def test_default_hash_is_argon2id_with_owasp_cost() -> None:
    stored = Passwords().hash("Violet-Harmonic-Tape-72")
    assert stored.startswith("$argon2id$")
    params = extract_parameters(stored)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (2, 19456, 1)


def test_verify_and_rehash() -> None:
    cheap = Passwords(TEST_COST)
    stored = cheap.hash("Violet-Harmonic-Tape-72")
    assert cheap.verify(stored, "Violet-Harmonic-Tape-72")
    assert not cheap.verify(stored, "violet-harmonic-tape-72")
    assert not cheap.verify(None, "Violet-Harmonic-Tape-72")
    assert not cheap.verify("not-a-hash", "x")
    assert Passwords(HashCost(time_cost=2, memory_kib=8 * 1024, parallelism=1)).needs_rehash(stored)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 10"),
        ("aaaaaaaaaaaa", "too few different"),
        ("password123", "commonly used"),
        ("Password2024!", "commonly used"),
        ("qwertyuiop", "commonly used"),
        ("abcdefghijk", "sequence"),
        ("9876543210", "sequence"),
        ("melodymaker-77", "username"),
        ("x" * 300, "at most 256"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    with pytest.raises(AccountError) as info:
        check_password_rules(password, username="melodymaker", email="mm@example.com")
    assert info.value.code == "weak_password"
    assert reason in info.value.message


@pytest.mark.parametrize(
    "password", ["Violet-Harmonic-Tape-72", "correct horse staple 9", "ÄÖÜ-ßèé-ŋđ-42"]
)
def test_reasonable_passwords_pass(password: str) -> None:
    check_password_rules(password, username="melodymaker", email="mm@example.com")


def test_email_name_is_refused() -> None:
    with pytest.raises(AccountError):
        check_password_rules("ZZ-basslines-ZZ", username="ann", email="basslines@example.com")
