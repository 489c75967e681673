"""Tests run against real PostgreSQL and Redis (see README); these defaults match the dev machines."""
import os

os.environ.setdefault("DATABASE_URL", "postgres://127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("JOBS_HEARTBEAT_INTERVAL", "0.2")
os.environ.setdefault("JOBS_STALL_TIMEOUT", "2")
os.environ.setdefault("JOBS_CANCEL_GRACE", "1")
os.environ.setdefault("JOBS_SHUTDOWN_GRACE", "2")


def pytest_configure(config):
    """pytest-django imports the settings before this file runs, so the defaults above reach only
    subprocess workers; give the test process itself the same engine timings."""
    from django.conf import settings

    from config.env import read_env

    env = read_env()
    settings.JOBS_STALL_TIMEOUT = env.stall_timeout
    settings.JOBS_HEARTBEAT_INTERVAL = env.heartbeat_interval
    settings.JOBS_CANCEL_GRACE = env.cancel_grace
    settings.JOBS_SHUTDOWN_GRACE = env.shutdown_grace
    # Test accounts need no slow password hash: PBKDF2's 1M rounds cost ~0.3 s per user created or logged in.
    # PBKDF2 is still accepted, for accounts that a server in another process must also check (tests/browser).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Empty tables between transactional tests with DELETE, not TRUNCATE (tests/pgbackend);
        # the connection made while pytest-django loaded is dropped so the next one uses it.
        from django.db import connections

        settings.DATABASES["default"]["ENGINE"] = "tests.pgbackend"
        if "default" in connections:
            connections["default"].close()
            del connections["default"]
