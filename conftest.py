"""Tests run against real PostgreSQL and Redis (see README); these defaults match the dev machines."""
import os

os.environ.setdefault("DATABASE_URL", "postgres://127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("JOBS_HEARTBEAT_INTERVAL", "0.2")
os.environ.setdefault("JOBS_STALL_TIMEOUT", "2")
os.environ.setdefault("JOBS_CANCEL_GRACE", "1")
os.environ.setdefault("JOBS_SHUTDOWN_GRACE", "2")
