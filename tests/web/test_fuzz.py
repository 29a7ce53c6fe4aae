"""Fuzzing the JSON endpoints with malformed bodies: never a 5xx, always the error shape.

Every auth endpoint and every authenticated endpoint that reads a JSON body is
sent random bytes, invalid UTF-8, truncated JSON, JSON of the wrong top-level
type, objects with missing or mistyped fields, huge strings, NUL characters,
lone surrogates, huge numbers, deep nesting, oversized bodies and wrong or
absent Content-Types. The answer must be below 500, and any 4xx must carry
exactly ``{"error": {"code": str, "message": str}}``.

The authenticated requests use a Bearer token of an admin created for the test
(so ``/api/admin/users/{id}/role`` gets past the admin check to the body); the
admin and its target are deleted afterwards so other tests see no extra admin.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts import auth, twofactor, users
from accounts.context import Accounts
from persistence.db import Database
from tests.conftest import STRONG_PASSWORD, make_accounts, unique
from web.body import MAX_BODY_BYTES


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # may contain "{target}", the id of a second user
    fields: tuple[str, ...]  # the body fields the route reads
    auth: bool  # needs the Bearer token of the fuzz admin


ENDPOINTS = [
    Endpoint("POST", "/api/auth/register", ("username", "email", "password"), False),
    Endpoint("POST", "/api/auth/login",
             ("login", "password", "totp_code", "recovery_code"), False),
    # Logout ignores the body; each example gets a fresh session to end.
    Endpoint("POST", "/api/auth/logout", (), True),
    Endpoint("POST", "/api/auth/password-reset", ("login",), False),
    Endpoint("POST", "/api/auth/password-reset/confirm", ("token", "password"), False),
    Endpoint("PATCH", "/api/me", ("display_name", "bio", "genres", "privacy"), True),
    Endpoint("POST", "/api/me/password", ("current_password", "new_password"), True),
    Endpoint("POST", "/api/me/2fa/confirm", ("code",), True),
    Endpoint("POST", "/api/me/2fa/disable",
             ("password", "totp_code", "recovery_code"), True),
    Endpoint("POST", "/api/admin/users/{target}/role", ("role",), True),
]

EXAMPLES_PER_ENDPOINT = 120

CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
    "\u00e9/\u00e8",  # not ASCII: sent as latin-1 bytes
]

INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\x80",
    b"\xc3\x28",  # bad continuation byte
    b"\xe2\x82",  # truncated sequence
    b"\xed\xa0\x80",  # an encoded surrogate (forbidden in UTF-8)
    b"\xf8\x88\x80\x80\x80",  # 5-byte form
    b"\xc0\xaf",  # overlong "/"
]


# -- strategies -----------------------------------------------------------------------------

lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
nasty_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.sampled_from("\x00a\u00e9\u202e\ufeff\U0001f3b5 "), max_size=30),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), lone_surrogates,
              st.text(max_size=5)),
    st.integers(990, 6000).map(lambda n: "x" * n),  # around and far past every max_len
    st.sampled_from(["", " ", "\x00", "admin", "user", "public", "123456", STRONG_PASSWORD,
                     "a" * 1001, "Violet-Harmonic-Tape-73"]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    nasty_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=10), inner, max_size=5),
    ),
    max_leaves=20,
)


def encode(value: Any) -> bytes:
    """JSON-encode anything the strategies make; lone surrogates become \\uXXXX escapes."""
    return json.dumps(value).encode()


@st.composite
def objects_for(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, Any]:
    """An object with some of the endpoint's fields (any type) and maybe stray keys."""
    keys = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
    obj: dict[str, Any] = {k: draw(json_values) for k in keys}
    obj.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=3)))
    return obj


@st.composite
def well_typed_objects_for(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, Any]:
    """Every field a string (or list for genres): gets past the type checks into the logic."""
    obj: dict[str, Any] = {}
    for name in fields:
        if name == "genres":
            obj[name] = draw(st.lists(nasty_text, max_size=25))
        elif draw(st.booleans()) or name not in ("totp_code", "recovery_code"):
            obj[name] = draw(nasty_text)
    return obj


def raw_bodies(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    field = fields[0] if fields else "x"
    key = json.dumps(field).encode()
    objects = objects_for(fields)
    return st.one_of(
        # random bytes, including empty and whitespace-only
        st.binary(max_size=300),
        st.sampled_from([b"", b"   ", b"\n\t", b"\x00", b"\xef\xbb\xbf{}"]),
        # invalid UTF-8 inside an otherwise fine object
        st.builds(lambda bad: b"{" + key + b': "a' + bad + b'"}', st.sampled_from(INVALID_UTF8)),
        st.builds(lambda bad: bad + b"{}", st.sampled_from(INVALID_UTF8)),
        # truncated JSON
        st.builds(lambda obj, cut: encode(obj)[: max(cut % max(len(encode(obj)), 1), 1)],
                  objects, st.integers(0, 10_000)),
        # the wrong top-level type
        st.one_of(st.lists(json_values, max_size=4), st.integers(), st.floats(allow_nan=False),
                  nasty_text, st.none(), st.booleans()).map(encode),
        # objects with missing, mistyped or stray fields
        objects.map(encode),
        well_typed_objects_for(fields).map(encode),
        # what json.loads accepts but a strict reader might not
        st.sampled_from([b"NaN", b"-Infinity", b"{" + key + b": NaN}",
                         b"{" + key + b": 1e999}", b'{"a": 1, "a": 2}']),
        # numbers too long for int() (ValueError, not JSONDecodeError)
        st.integers(4301, 20_000).map(lambda n: b"{" + key + b": " + b"1" * n + b"}"),
        # deep nesting
        st.sampled_from([1_000, 10_000, 100_000]).flatmap(
            lambda n: st.sampled_from([b"[" * n, b"[" * n + b"]" * n, b'{"a":' * n,
                                       b"{" + key + b": " + b"[" * n + b"]" * n + b"}"])
        ),
        # just over the size cap
        st.just(b"{" + key + b': "' + b"x" * MAX_BODY_BYTES + b'"}'),
    )


# -- fixtures and checks --------------------------------------------------------------------


@dataclass
class FuzzUser:
    id: UUID
    token: str
    target: UUID
    username: str


@asynccontextmanager
async def admin_with_target(
    accounts: Accounts, owner: asyncpg.Connection
) -> AsyncIterator[FuzzUser]:
    """An admin with TOTP enrolment pending (so 2fa/confirm checks codes), plus a target."""
    name, other = unique("fuzz"), unique("fuzzt")
    admin = await users.register(accounts, name, f"{name}@example.com", STRONG_PASSWORD)
    target = await users.register(accounts, other, f"{other}@example.com", STRONG_PASSWORD)
    await owner.execute("UPDATE users SET role = 'admin' WHERE id = $1", admin.id)
    await twofactor.enrol(accounts, admin.id)
    login = await auth.login(accounts, name, STRONG_PASSWORD)
    try:
        yield FuzzUser(admin.id, login.token, target.id, name)
    finally:
        await owner.execute("DELETE FROM users WHERE id = ANY($1::uuid[])", [admin.id, target.id])


@pytest.fixture
async def fuzz_user(accounts: Accounts, owner: asyncpg.Connection) -> AsyncIterator[FuzzUser]:
    """A fresh one per fuzz test: the fuzzer may change its profile or even its password."""
    async with admin_with_target(accounts, owner) as user:
        yield user


@pytest.fixture(scope="module")
async def shared_user(db: Database) -> AsyncIterator[FuzzUser]:
    """One for the explicit cases below, whose bodies never get past validation."""
    owner = await asyncpg.connect(db.owner_url)
    try:
        async with admin_with_target(make_accounts(db), owner) as user:
            yield user
    finally:
        await owner.close()


def assert_error_shape(response: httpx.Response) -> None:
    assert response.headers.get("content-type", "").startswith("application/json"), response
    payload = response.json()
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, payload
    assert isinstance(error["code"], str) and error["code"], payload
    assert isinstance(error["message"], str), payload


def assert_sane(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    assert response.status_code >= 200, f"{what}: {response.status_code}"
    if 400 <= response.status_code < 500:
        assert_error_shape(response)


async def send(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    content: bytes,
    content_type: str | None,
    token: str | None,
    target: UUID,
) -> httpx.Response:
    headers: dict[str, bytes] = {}
    if content_type is not None:
        headers["content-type"] = content_type.encode("latin-1")
    if token is not None:
        headers["authorization"] = f"Bearer {token}".encode()
    return await client.request(endpoint.method, endpoint.path.format(target=target),
                                content=content, headers=headers)


# -- the fuzz test --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
@settings(
    max_examples=EXAMPLES_PER_ENDPOINT,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
@given(data=st.data(), content_type=st.sampled_from(CONTENT_TYPES))
async def test_malformed_bodies_never_5xx(
    client: httpx.AsyncClient,
    accounts: Accounts,
    fuzz_user: FuzzUser,
    endpoint: Endpoint,
    data: st.DataObject,
    content_type: str | None,
) -> None:
    content = data.draw(raw_bodies(endpoint.fields), label="body")
    token: str | None = None
    if endpoint.path == "/api/auth/logout":
        token = (await auth.login(accounts, fuzz_user.username, STRONG_PASSWORD)).token
    elif endpoint.auth:
        token = fuzz_user.token
    response = await send(client, endpoint, content, content_type, token, fuzz_user.target)
    assert_sane(response, f"{endpoint.method} {endpoint.path} {content[:200]!r}")
    if len(content) > MAX_BODY_BYTES and endpoint.fields:
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body_too_large"


# -- explicit regressions -------------------------------------------------------------------

BODY_ENDPOINTS = [e for e in ENDPOINTS if e.fields]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_deeply_nested_array_is_a_4xx(
    client: httpx.AsyncClient, shared_user: FuzzUser, endpoint: Endpoint
) -> None:
    token = shared_user.token if endpoint.auth else None
    response = await send(client, endpoint, b"[" * 100_000, "application/json", token,
                          shared_user.target)
    assert response.status_code == 400, response.text
    assert_error_shape(response)
    assert response.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_body_one_byte_over_the_cap_is_413(
    client: httpx.AsyncClient, shared_user: FuzzUser, endpoint: Endpoint
) -> None:
    token = shared_user.token if endpoint.auth else None
    content = b" " * (MAX_BODY_BYTES + 1)
    response = await send(client, endpoint, content, "application/json", token, shared_user.target)
    assert response.status_code == 413, response.text
    assert_error_shape(response)
    assert response.json()["error"]["code"] == "body_too_large"


async def test_streamed_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    """No Content-Length (chunked): the cap is enforced while reading the stream."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b" " * (64 * 1024)  # 17 x 64 KiB = 1 MiB + 64 KiB

    response = await client.post("/api/auth/login", content=chunks(),
                                 headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "body_too_large"


async def test_body_exactly_at_the_cap_is_read(client: httpx.AsyncClient) -> None:
    head = b'{"login": "nobody-at-all", "password": "x", "pad": "'
    content = head + b"x" * (MAX_BODY_BYTES - len(head) - 2) + b'"}'
    assert len(content) == MAX_BODY_BYTES
    response = await client.post("/api/auth/login", content=content)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_invalid_utf8_is_malformed_json(
    client: httpx.AsyncClient, shared_user: FuzzUser, endpoint: Endpoint
) -> None:
    token = shared_user.token if endpoint.auth else None
    for bad in INVALID_UTF8:
        content = b'{"' + endpoint.fields[0].encode() + b'": "a' + bad + b'"}'
        response = await send(client, endpoint, content, "application/json", token,
                              shared_user.target)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["code"] == "malformed_json", bad


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_lone_surrogate_in_a_string_field_is_a_4xx(
    client: httpx.AsyncClient, shared_user: FuzzUser, endpoint: Endpoint
) -> None:
    """``"\\ud800"`` is valid JSON but no valid Unicode: PostgreSQL and argon2 cannot encode it."""
    token = shared_user.token if endpoint.auth else None
    value: Any = ["\ud800"] if endpoint.fields[0] == "genres" else "a\ud800b"
    obj = {name: STRONG_PASSWORD for name in endpoint.fields if name != "genres"}
    obj[endpoint.fields[0]] = value
    response = await send(client, endpoint, encode(obj), "application/json", token,
                          shared_user.target)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_field"


async def test_huge_integer_is_a_4xx(client: httpx.AsyncClient) -> None:
    """Python refuses to parse integers of more than 4300 digits with a plain ValueError."""
    response = await client.post("/api/auth/login", content=b'{"login": ' + b"9" * 5000 + b"}")
    assert 400 <= response.status_code < 500, response.text
    assert_error_shape(response)


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_wrong_or_absent_content_type(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type.encode("latin-1")}
    response = await client.post("/api/auth/login", headers=headers,
                                 content=b'{"login": "nobody-at-all", "password": "x"}')
    assert 400 <= response.status_code < 500, response.text
    assert_error_shape(response)


async def test_logout_ignores_a_malformed_body(
    client: httpx.AsyncClient, accounts: Accounts, shared_user: FuzzUser
) -> None:
    token = (await auth.login(accounts, shared_user.username, STRONG_PASSWORD)).token
    response = await client.post("/api/auth/logout", content=b"\xff[[[",
                                 headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 204
