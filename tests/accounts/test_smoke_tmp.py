from accounts import auth, users
from tests.conftest import STRONG_PASSWORD, unique


async def test_register_login(accounts):
    name = unique()
    u = await users.register(accounts, name, f"{name}@example.com", STRONG_PASSWORD)
    r = await auth.login(accounts, name, STRONG_PASSWORD)
    p = await auth.authenticate(accounts, r.token)
    assert p.user.id == u.id
