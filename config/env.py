"""Read and validate the process environment once; the rest of the code reads settings."""
from __future__ import annotations

import ipaddress
import json
import os
import re
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


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be greater than zero, got {env.get(name)!r}")
    return value


_SIZE_UNITS = {"": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]B?)?\s*", raw.upper())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"{name} must be a positive number of bytes (suffix K, M or G allowed), got {raw!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2) or ""]


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    if not raw:
        return default
    path = Path(raw).expanduser()
    return path if path.is_absolute() else BASE_DIR / path


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _public_hosts(env: Mapping[str, str], name: str) -> list[str]:
    """Host names (never IP literals or localhost) that audio URLs may come from."""
    hosts = [h.lower().rstrip(".") for h in _list(env, name, [])]
    for host in hosts:
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            raise ConfigError(f"{name} takes host names, not IP addresses: {host!r}")
        labels = host.split(".")
        numeric = not re.search(r"[a-z]", labels[-1])  # 2130706433 or 127.1 would reach an address
        if host == "localhost" or host.endswith(".localhost") or numeric or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ConfigError(f"{name} takes public host names such as media.example.com, got {host!r}")
    return hosts


def _storage(env: Mapping[str, str]) -> dict[str, Any]:
    """STORAGE and the S3 variables, checked together."""
    bucket = env.get("S3_BUCKET", "").strip()
    storage = (env.get("STORAGE") or ("s3" if bucket else "local")).strip().lower()
    if storage not in {"local", "s3"}:
        raise ConfigError(f"STORAGE must be local or s3, got {env.get('STORAGE')!r}")
    if storage == "s3" and not bucket:
        raise ConfigError("STORAGE=s3 needs S3_BUCKET")
    if bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ConfigError(f"S3_BUCKET must be an S3 bucket name, got {bucket!r}")
    endpoint = env.get("S3_ENDPOINT_URL", "").strip()
    if endpoint and not re.fullmatch(r"https?://[^/\s]+/?", endpoint):
        raise ConfigError(f"S3_ENDPOINT_URL must be an http(s)://host[:port] URL, got {endpoint!r}")
    region = env.get("S3_REGION", "").strip()
    if region and not re.fullmatch(r"[a-z0-9-]+", region):
        raise ConfigError(f"S3_REGION must be a region name such as eu-west-1, got {region!r}")
    key_id, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if bool(key_id) != bool(secret):
        # Never echo either value: they are credentials.
        raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or neither, for boto3's own credential chain)")
    return dict(
        storage=storage,
        s3_bucket=bucket,
        s3_endpoint_url=endpoint.rstrip("/"),
        s3_region=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def _device(env: Mapping[str, str]) -> str:
    """TRANSCRIPTION_DEVICE: where a worker runs Whisper, cpu (int8) or cuda (float16) / cuda:N."""
    device = (env.get("TRANSCRIPTION_DEVICE") or "cpu").strip().lower()
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ConfigError(f"TRANSCRIPTION_DEVICE must be cpu, cuda or cuda:N, got {device!r}")
    return device


def _provider_url(env: Mapping[str, str], name: str = "PIPELINES_PROVIDER_URL") -> str:
    """PIPELINES_PROVIDER_URL (machine translation and lip-sync) or AI_PROVIDER_URL (translate jobs): an http(s) endpoint."""
    url = env.get(name, "").strip()
    if url and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s#]*)?", url):
        raise ConfigError(f"{name} must be an http(s):// URL, got {url!r}")
    return url


def _networks(env: Mapping[str, str], name: str) -> list[str]:
    """Comma-separated IP networks (e.g. 127.0.0.0/8)."""
    import ipaddress

    nets = []
    for net in _list(env, name, []):
        try:
            nets.append(str(ipaddress.ip_network(net, strict=False)))  # 10.1.2.3/8 is read as 10.0.0.0/8
        except ValueError:
            raise ConfigError(f"{name} must list IP networks such as 10.0.0.0/8, got {net!r}") from None
    return nets


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
    storage: str = "local"
    media_root: Path = VAR_DIR / "media"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    aws_access_key_id: str = field(default="", repr=False)
    aws_secret_access_key: str = field(default="", repr=False)
    storage_timeout: float = 30.0
    transcription_allowed_hosts: list[str] = field(default_factory=list)
    transcription_model_dir: Path = VAR_DIR / "models"
    transcription_max_bytes: int = 500 * 1024**2
    files_max_bytes: int = 100 * 1024**2
    files_staging_dir: Path | None = None
    transcription_device: str = "cpu"
    pipelines_provider_url: str = ""
    pipelines_provider_timeout: float = 60.0
    ai_provider_url: str = ""
    ai_provider_timeout: float = 60.0
    ai_max_text_chars: int = 100_000
    ai_rate_limit_per_minute: int = 60
    ai_monthly_token_quota: int = 0
    webhooks_allow_http: bool = False
    webhooks_allowed_networks: list[str] = field(default_factory=list)
    webhooks_timeout: float = 10.0
    admin_username: str = ""
    admin_password: str = field(default="", repr=False)
    port: int = 8000
    web_processes: int = 1
    database_pool: int = 0
    fault_point: str = ""
    db_retry: float = 30.0
    async_commit: bool = True
    prepared_statements: bool = True
    batch_size: int = 8
    # Seed 5's assistant: SMTP for email (unset EMAIL_HOST: mail is written to files under var/mail),
    # IMAP for inbox sync, the hosts calendar feeds may come from, the task provider.
    email_host: str = ""
    email_port: int = 25
    email_use_tls: bool = False
    email_use_ssl: bool = False
    email_host_user: str = ""
    email_host_password: str = field(default="", repr=False)
    email_timeout: float = 10.0
    default_from_email: str = "assistant@localhost"
    imap_host: str = ""
    imap_port: int = 993
    imap_use_ssl: bool = True
    imap_user: str = ""
    imap_password: str = field(default="", repr=False)
    calendar_allowed_hosts: list[str] = field(default_factory=list)
    tasks_provider_url: str = ""
    tasks_provider_token: str = field(default="", repr=False)
    tasks_provider_timeout: float = 10.0


def _processes(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole(env, name, default, low=1, high=64)


def _whole(env: Mapping[str, str], name: str, default: int, *, low: int = 0, high: int = 10**15) -> int:
    """A whole number from `low` to `high`; `default` when unset."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


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
        media_root=_path(env, "MEDIA_ROOT", VAR_DIR / "media"),
        storage_timeout=_positive(env, "STORAGE_TIMEOUT", 30.0),
        transcription_allowed_hosts=_public_hosts(env, "TRANSCRIPTION_ALLOWED_HOSTS"),
        transcription_model_dir=_path(env, "TRANSCRIPTION_MODEL_DIR", VAR_DIR / "models"),
        transcription_max_bytes=_size(env, "TRANSCRIPTION_MAX_BYTES", 500 * 1024**2),
        files_max_bytes=_size(env, "FILES_MAX_BYTES", 100 * 1024**2),
        files_staging_dir=_path(env, "FILES_STAGING_DIR", BASE_DIR) if env.get("FILES_STAGING_DIR", "").strip() else None,
        transcription_device=_device(env),
        pipelines_provider_url=_provider_url(env),
        pipelines_provider_timeout=_positive(env, "PIPELINES_PROVIDER_TIMEOUT", 60.0),
        ai_provider_url=_provider_url(env, "AI_PROVIDER_URL"),
        ai_provider_timeout=_positive(env, "AI_PROVIDER_TIMEOUT", 60.0),
        ai_max_text_chars=_whole(env, "AI_MAX_TEXT_CHARS", 100_000, low=1),
        ai_rate_limit_per_minute=_whole(env, "AI_RATE_LIMIT_PER_MINUTE", 60, low=1),
        ai_monthly_token_quota=_whole(env, "AI_MONTHLY_TOKEN_QUOTA", 0),
        webhooks_allow_http=_bool(env, "WEBHOOKS_ALLOW_HTTP", False),
        webhooks_allowed_networks=_networks(env, "WEBHOOKS_ALLOWED_NETWORKS"),
        webhooks_timeout=_positive(env, "WEBHOOKS_TIMEOUT", 10.0),
        admin_username=env.get("ADMIN_USERNAME", "").strip(),
        admin_password=env.get("ADMIN_PASSWORD", ""),
        port=_whole(env, "PORT", 8000, low=1, high=65535),
        web_processes=_processes(env, "WEB_PROCESSES", 1),
        database_pool=_whole(env, "DATABASE_POOL", 0, high=1000),
        fault_point=env.get("JOBS_FAULT_POINT", "").strip(),
        db_retry=_float(env, "JOBS_DB_RETRY", 30.0),
        async_commit=_bool(env, "JOBS_ASYNC_COMMIT", True),
        prepared_statements=_bool(env, "JOBS_PREPARED_STATEMENTS", True),
        batch_size=_whole(env, "JOBS_BATCH_SIZE", 8, low=1, high=100),
        **_storage(env),
        **_assistant(env),
    )


def _assistant(env: Mapping[str, str]) -> dict[str, Any]:
    """EMAIL_*, IMAP_*, CALENDAR_ALLOWED_HOSTS and TASKS_PROVIDER_* (seed 5's assistant)."""
    if _bool(env, "EMAIL_USE_TLS", False) and _bool(env, "EMAIL_USE_SSL", False):
        raise ConfigError("EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (implicit TLS) exclude each other: set one")
    return dict(
        email_host=env.get("EMAIL_HOST", "").strip(),
        email_port=_whole(env, "EMAIL_PORT", 25, low=1, high=65535),
        email_use_tls=_bool(env, "EMAIL_USE_TLS", False),
        email_use_ssl=_bool(env, "EMAIL_USE_SSL", False),
        email_host_user=env.get("EMAIL_HOST_USER", ""),
        email_host_password=env.get("EMAIL_HOST_PASSWORD", ""),
        email_timeout=_positive(env, "EMAIL_TIMEOUT", 10.0),
        default_from_email=env.get("DEFAULT_FROM_EMAIL", "").strip() or "assistant@localhost",
        imap_host=env.get("IMAP_HOST", "").strip(),
        imap_port=_whole(env, "IMAP_PORT", 993, low=1, high=65535),
        imap_use_ssl=_bool(env, "IMAP_USE_SSL", True),
        imap_user=env.get("IMAP_USER", ""),
        imap_password=env.get("IMAP_PASSWORD", ""),
        calendar_allowed_hosts=_public_hosts(env, "CALENDAR_ALLOWED_HOSTS"),
        tasks_provider_url=_provider_url(env, "TASKS_PROVIDER_URL"),
        tasks_provider_token=env.get("TASKS_PROVIDER_TOKEN", ""),
        tasks_provider_timeout=_positive(env, "TASKS_PROVIDER_TIMEOUT", 10.0),
    )
