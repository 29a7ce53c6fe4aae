"""Settings: ``RETOONE_*`` variables over defaults, flags over variables, a stable secret key."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from web.settings import SECRET_FILE, Settings, SettingsError

FULL_ENV = {
    "RETOONE_HOST": "10.1.2.3",
    "RETOONE_PORT": "9123",
    "RETOONE_DATA_DIR": "/srv/retoone",
    "RETOONE_DATABASE_URL": "postgresql://retoone@db.internal:5432/retoone",
    "RETOONE_REDIS_URL": "redis://cache.internal:6379/2",
    "RETOONE_SECRET_KEY": "from-the-environment",
    "RETOONE_PUBLIC_URL": "https://studio.example.com",
    "RETOONE_SESSION_TTL_HOURS": "48",
    "RETOONE_LOCKOUT_ATTEMPTS": "7",
    "RETOONE_LOCKOUT_MINUTES": "30",
    "RETOONE_AUTH_RATE_LIMIT": "12",
}


def test_defaults_without_variables() -> None:
    s = Settings.from_env({})
    assert s.host == "127.0.0.1"
    assert s.port == 8000
    assert s.database_url is None
    assert s.redis_url is None
    assert s.secret_key is None
    assert s.session_ttl == timedelta(days=14)
    assert s.lockout_attempts == 5
    assert s.lockout_window == timedelta(minutes=15)
    assert s.auth_rate_limit == 30
    assert s.data_dir.name == "retoone"
    assert s.url == "http://localhost:8000"


def test_reads_every_variable() -> None:
    s = Settings.from_env(FULL_ENV)
    assert s.host == "10.1.2.3"
    assert s.port == 9123
    assert s.data_dir == Path("/srv/retoone")
    assert s.database_url == "postgresql://retoone@db.internal:5432/retoone"
    assert s.redis_url == "redis://cache.internal:6379/2"
    assert s.secret_key == "from-the-environment"
    assert s.public_url == "https://studio.example.com"
    assert s.session_ttl == timedelta(hours=48)
    assert s.lockout_attempts == 7
    assert s.lockout_window == timedelta(minutes=30)
    assert s.auth_rate_limit == 12
    assert s.url == "https://studio.example.com"


def test_empty_variables_mean_default() -> None:
    s = Settings.from_env({name: "" for name in FULL_ENV})
    assert s == Settings.from_env({})


def test_flags_win_over_variables() -> None:
    s = Settings.from_env(
        FULL_ENV,
        {
            "host": "127.0.0.2",
            "port": 8443,
            "data_dir": "/tmp/flag-dir",
            "database_url": "postgres://other/db",
            "redis_url": "rediss://other:6380/0",
        },
    )
    assert s.host == "127.0.0.2"
    assert s.port == 8443
    assert s.data_dir == Path("/tmp/flag-dir")  # a str flag becomes a Path
    assert s.database_url == "postgres://other/db"
    assert s.redis_url == "rediss://other:6380/0"
    assert s.secret_key == "from-the-environment"  # no flag: the variable stays


def test_flags_left_unset_do_not_override() -> None:
    unset = dict.fromkeys(["host", "port", "data_dir", "database_url", "redis_url"])
    s = Settings.from_env(FULL_ENV, unset)
    assert s == Settings.from_env(FULL_ENV)


def test_url_names_localhost_for_wildcard_and_loopback_hosts() -> None:
    assert Settings(host="0.0.0.0", port=81).url == "http://localhost:81"  # noqa: S104
    assert Settings(host="::", port=82).url == "http://localhost:82"
    assert Settings(host="studio.lan", port=83).url == "http://studio.lan:83"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RETOONE_PORT": "eighty"}, "RETOONE_PORT must be an integer"),
        ({"RETOONE_PORT": "0"}, "between 1 and 65535"),
        ({"RETOONE_PORT": "65536"}, "between 1 and 65535"),
        ({"RETOONE_SESSION_TTL_HOURS": "1.5"}, "RETOONE_SESSION_TTL_HOURS must be an integer"),
        ({"RETOONE_LOCKOUT_ATTEMPTS": "0"}, "RETOONE_LOCKOUT_ATTEMPTS must be at least 1"),
        ({"RETOONE_LOCKOUT_MINUTES": "x"}, "RETOONE_LOCKOUT_MINUTES must be an integer"),
        ({"RETOONE_AUTH_RATE_LIMIT": "many"}, "RETOONE_AUTH_RATE_LIMIT must be an integer"),
        ({"RETOONE_DATABASE_URL": "mysql://db/retoone"}, "postgresql:// URL"),
        ({"RETOONE_REDIS_URL": "http://cache:6379"}, "redis:// URL"),
    ],
)
def test_bad_values_raise(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"port": 70000}, "between 1 and 65535"),
        ({"database_url": "sqlite:///x.db"}, "postgresql:// URL"),
        ({"redis_url": "memcached://x"}, "redis:// URL"),
    ],
)
def test_bad_flag_values_raise(flags: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({}, flags)


def test_secret_key_is_generated_once_with_private_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-yet-there"
    settings = Settings.from_env({}, {"data_dir": data_dir})
    key = settings.resolve_secret_key()
    path = data_dir / SECRET_FILE
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64
    int(key, 16)  # hex
    assert path.read_text() == key.decode() + "\n"

    assert settings.resolve_secret_key() == key
    # A later process (a fresh Settings on the same data dir) reuses it.
    assert Settings.from_env({"RETOONE_DATA_DIR": str(data_dir)}).resolve_secret_key() == key
    assert path.read_text() == key.decode() + "\n"


def test_different_data_dirs_get_different_keys(tmp_path: Path) -> None:
    a = Settings(data_dir=tmp_path / "a").resolve_secret_key()
    b = Settings(data_dir=tmp_path / "b").resolve_secret_key()
    assert a != b


def test_configured_secret_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    settings = Settings.from_env({"RETOONE_SECRET_KEY": "configured-key"},
                                {"data_dir": tmp_path})
    assert settings.resolve_secret_key() == b"configured-key"
    assert not (tmp_path / SECRET_FILE).exists()


def test_existing_secret_file_is_used(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("  handwritten-key\n")
    assert Settings(data_dir=tmp_path).resolve_secret_key() == b"handwritten-key"
