"""Read and validate the process environment once; the rest of the code reads settings."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


class ConfigError(ValueError):
    """An environment variable holds a value the project cannot use."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class Env:
    """The validated environment."""

    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    database_url: str
    redis_url: str
    queues_override: dict[str, Any] = field(default_factory=dict)
    stall_timeout: float = 30.0
    heartbeat_interval: float = 2.0
    cancel_grace: float = 10.0
    shutdown_grace: float = 25.0
    metrics_token: str = ""


def read_env(env: Mapping[str, str] | None = None) -> Env:
    """Parse and validate the variables the project reads."""
    env = os.environ if env is None else env
    debug = _bool(env, "DEBUG", True)
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if not debug:
            raise ConfigError("SECRET_KEY must be set when DEBUG is false")
        secret_key = "insecure-dev-key-change-me-" + "x" * 24
    database_url = env.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'jobconsole.sqlite3'}"
    if not database_url.split(":", 1)[0] in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigError(f"DATABASE_URL must be a sqlite:// or postgres:// URL, got {database_url!r}")
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got {redis_url!r}")
    queues_override: dict[str, Any] = {}
    raw_queues = env.get("JOBS_QUEUES")
    if raw_queues:
        try:
            text = Path(raw_queues).read_text() if not raw_queues.lstrip().startswith("{") else raw_queues
            queues_override = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"JOBS_QUEUES must be JSON or a path to a JSON file: {exc}") from exc
        if not isinstance(queues_override, dict):
            raise ConfigError("JOBS_QUEUES must be a JSON object keyed by queue name")
    return Env(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=_list(env, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"]),
        database_url=database_url,
        redis_url=redis_url,
        queues_override=queues_override,
        stall_timeout=_float(env, "JOBS_STALL_TIMEOUT", 30.0),
        heartbeat_interval=_float(env, "JOBS_HEARTBEAT_INTERVAL", 2.0),
        cancel_grace=_float(env, "JOBS_CANCEL_GRACE", 10.0),
        shutdown_grace=_float(env, "JOBS_SHUTDOWN_GRACE", 25.0),
        metrics_token=env.get("METRICS_TOKEN", ""),
    )
