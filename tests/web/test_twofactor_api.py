"""Two-factor authentication over HTTP: enrolment, login with TOTP and recovery codes,
replay refusal, disabling and regenerating recovery codes.

TOTP codes are computed with pyotp for explicit time steps. A test confirms
with the current step ``c`` and then uses ``c + 1``: the server accepts one step
of drift either way, so both stay valid for at least 30 s whenever the step
boundary falls, and no test waits.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

import asyncpg
import httpx

from tests.conftest import STRONG_PASSWORD
from tests.web.api_helpers import (
    Account,
    assert_error,
    current_step,
    enable_totp,
    kinds,
    last_event,
    login,
    signup,
    totp_code,
)

RECOVERY_CODE_RE = re.compile(r"^[a-z2-9]{5}-[a-z2-9]{5}$")


def wrong_code(secret: str, around: int) -> str:
    """A well-formed six-digit code that matches no step the server could accept."""
    valid = {totp_code(secret, s) for s in range(around - 2, around + 3)}
    return next(c for c in ("000000", "111111", "222222", "123456") if c not in valid)


def login_body(account: Account, **extra: str) -> dict[str, str]:
    return {"login": account.username, "password": STRONG_PASSWORD, **extra}


async def test_enrol_returns_secret_uri_and_qr(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    r = await client.post("/api/me/2fa/enrol", headers=account.auth)
    assert r.status_code == 200, r.text
    data = r.json()
    assert re.fullmatch(r"[A-Z2-7]{32}", data["secret"])
    uri = data["otpauth_uri"]
    assert uri.startswith("otpauth://totp/")
    parsed = urlparse(uri)
    assert account.username in unquote(parsed.path)
    query = parse_qs(parsed.query)
    assert query["secret"] == [data["secret"]] and query["issuer"] == ["Retoone"]
    assert "<svg" in data["qr_svg"]
    # Pending until confirmed: two-factor is not on yet and login needs no code.
    me = (await client.get("/api/me", headers=account.auth)).json()["user"]
    assert me["totp_enabled"] is False
    await login(client, account.username)
    assert "2fa.enrol" in await kinds(owner, account.id)
    stored = await owner.fetchrow("SELECT totp_secret, totp_enabled FROM users WHERE id = $1",
                                  account.id)
    assert stored is not None
    assert stored["totp_secret"] == data["secret"] and stored["totp_enabled"] is False


async def test_confirm_returns_ten_recovery_codes(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    _, codes, _ = await enable_totp(client, account)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY_CODE_RE.match(c) for c in codes), codes
    me = (await client.get("/api/me", headers=account.auth)).json()["user"]
    assert me["totp_enabled"] is True
    assert await owner.fetchval("SELECT count(*) FROM recovery_codes WHERE user_id = $1",
                                account.id) == 10
    assert "2fa.enabled" in await kinds(owner, account.id)
    # A second enrolment while on is refused.
    assert_error(await client.post("/api/me/2fa/enrol", headers=account.auth), 409,
                 "totp_already_enabled")


async def test_confirm_with_a_wrong_code_is_refused(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    assert_error(await client.post("/api/me/2fa/confirm", headers=account.auth,
                                   json={"code": "123456"}), 409, "totp_not_enrolled")
    r = await client.post("/api/me/2fa/enrol", headers=account.auth)
    secret = r.json()["secret"]
    r = await client.post("/api/me/2fa/confirm", headers=account.auth,
                          json={"code": wrong_code(secret, current_step())})
    assert_error(r, 401, "totp_invalid")
    failed = await last_event(owner, account.id, "2fa.failed")
    assert failed["detail"] == {"during": "confirm"}
    me = (await client.get("/api/me", headers=account.auth)).json()["user"]
    assert me["totp_enabled"] is False


async def test_login_needs_the_second_factor(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    secret, _, step = await enable_totp(client, account)

    r = await client.post("/api/auth/login", json=login_body(account))
    assert_error(r, 401, "totp_required")
    assert "token" not in r.json()

    r = await client.post("/api/auth/login",
                          json=login_body(account, totp_code=wrong_code(secret, step)))
    assert_error(r, 401, "totp_invalid")
    failed = await last_event(owner, account.id, "2fa.failed")
    assert failed["detail"] == {"factor": "totp"}

    r = await client.post("/api/auth/login", json=login_body(account, totp_code="abcdef"))
    assert_error(r, 401, "totp_invalid")

    # A wrong password is refused as such before any second-factor talk.
    r = await client.post("/api/auth/login", json={
        "login": account.username, "password": "Wrong-Password-99",
        "totp_code": totp_code(secret, step + 1)})
    assert_error(r, 401, "invalid_credentials")

    body = await login(client, account.username, totp_code=totp_code(secret, step + 1))
    assert body["user"]["id"] == str(account.id) and body["user"]["totp_enabled"] is True
    client.cookies.clear()
    r = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert r.status_code == 200


async def test_totp_code_cannot_be_replayed(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    secret, _, step = await enable_totp(client, account)
    # The code used to confirm is spent already.
    r = await client.post("/api/auth/login",
                          json=login_body(account, totp_code=totp_code(secret, step)))
    assert_error(r, 401, "totp_invalid")
    code = totp_code(secret, step + 1)
    await login(client, account.username, totp_code=code)
    r = await client.post("/api/auth/login", json=login_body(account, totp_code=code))
    assert_error(r, 401, "totp_invalid")
    assert (await kinds(owner, account.id)).count("2fa.failed") == 2


async def test_recovery_code_works_once(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    _, codes, _ = await enable_totp(client, account)
    body = await login(client, account.username, recovery_code=codes[0])
    assert body["user"]["id"] == str(account.id)
    used = await last_event(owner, account.id, "2fa.recovery_used")
    assert used["detail"] == {"left": 9}

    r = await client.post("/api/auth/login", json=login_body(account, recovery_code=codes[0]))
    assert_error(r, 401, "recovery_code_used")
    failed = await last_event(owner, account.id, "2fa.failed")
    assert failed["detail"] == {"factor": "recovery", "reason": "used"}

    # Codes are read leniently (case, dash); unknown codes are just invalid.
    await login(client, account.username, recovery_code=codes[1].upper().replace("-", ""))
    r = await client.post("/api/auth/login",
                          json=login_body(account, recovery_code="zzzzz-zzzzz"))
    assert_error(r, 401, "totp_invalid")


async def test_disable_needs_password_and_code(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    secret, _, step = await enable_totp(client, account)
    url = "/api/me/2fa/disable"

    r = await client.post(url, headers=account.auth, json={
        "password": "Wrong-Password-99", "totp_code": totp_code(secret, step + 1)})
    assert_error(r, 401, "invalid_credentials")
    failed = await last_event(owner, account.id, "login.failed")
    assert failed["detail"] == {"during": "2fa_disable"}

    r = await client.post(url, headers=account.auth, json={"password": STRONG_PASSWORD})
    assert_error(r, 401, "totp_required")
    r = await client.post(url, headers=account.auth, json={
        "password": STRONG_PASSWORD, "totp_code": wrong_code(secret, step)})
    assert_error(r, 401, "totp_invalid")
    assert_error(await client.post(url, headers=account.auth, json={}), 422, "missing_field")
    me = (await client.get("/api/me", headers=account.auth)).json()["user"]
    assert me["totp_enabled"] is True

    r = await client.post(url, headers=account.auth, json={
        "password": STRONG_PASSWORD, "totp_code": totp_code(secret, step + 1)})
    assert r.status_code == 200, r.text
    assert r.json() == {"enabled": False}
    assert "2fa.disabled" in await kinds(owner, account.id)
    row = await owner.fetchrow("SELECT totp_enabled, totp_secret FROM users WHERE id = $1",
                               account.id)
    assert row is not None
    assert row["totp_enabled"] is False and row["totp_secret"] is None
    assert await owner.fetchval("SELECT count(*) FROM recovery_codes WHERE user_id = $1",
                                account.id) == 0
    await login(client, account.username)  # no code needed any more
    assert_error(await client.post(url, headers=account.auth,
                                   json={"password": STRONG_PASSWORD}), 409, "totp_not_enabled")


async def test_disable_with_a_recovery_code(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    _, codes, _ = await enable_totp(client, account)
    r = await client.post("/api/me/2fa/disable", headers=account.auth,
                          json={"password": STRONG_PASSWORD, "recovery_code": codes[3]})
    assert r.status_code == 200, r.text
    await login(client, account.username)


async def test_regenerate_recovery_codes_replaces_the_old_ones(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    secret, old, step = await enable_totp(client, account)
    url = "/api/me/2fa/recovery-codes"
    r = await client.post(url, headers=account.auth,
                          json={"totp_code": wrong_code(secret, step)})
    assert_error(r, 401, "totp_invalid")
    r = await client.post(url, headers=account.auth,
                          json={"totp_code": totp_code(secret, step + 1)})
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert "2fa.recovery_regenerated" in await kinds(owner, account.id)
    r = await client.post("/api/auth/login", json=login_body(account, recovery_code=old[0]))
    assert_error(r, 401, "totp_invalid")
    await login(client, account.username, recovery_code=new[0])


async def test_second_factor_failures_count_toward_lockout(
    client: httpx.AsyncClient, owner: asyncpg.Connection
) -> None:
    account = await signup(client)
    secret, _, step = await enable_totp(client, account)
    bad = wrong_code(secret, step)
    for _ in range(5):
        r = await client.post("/api/auth/login", json=login_body(account, totp_code=bad))
        assert_error(r, 401, "totp_invalid")
    r = await client.post("/api/auth/login",
                          json=login_body(account, totp_code=totp_code(secret, step + 1)))
    assert_error(r, 423, "account_locked")
    assert "login.locked" in await kinds(owner, account.id)
