"""Django settings. Every value that varies by deployment comes from config.env."""
from __future__ import annotations

from typing import Any

import dj_database_url

from config.env import BASE_DIR, VAR_DIR, Env, read_env
from jobs.engine.priority import carrier_names

ENV = read_env()

DEBUG = ENV.debug
SECRET_KEY = ENV.secret_key
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = [f"http://{h}:8000" for h in ("localhost", "127.0.0.1")]

INSTALLED_APPS = [
    # Before the admin: the console's admin/index.html extends the admin's own.
    "jobs.console",
    # django.contrib.admin, with the console's site (the engine's pages at /admin/jobs/queues/...).
    "jobs.console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "jobs",
    "transcription",
    "channels",
    # events before pipelines: their jobs hooks run in this order, so a stage's job_completed
    # reaches subscribers before the stage_ready_for_review that the pipelines hook publishes.
    "events",
    "pipelines",
    "files",
    "webhooks",
    "ai",
    "assistant",
    "launcher",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "jobs.api.middleware.RefuseNulPaths",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_db: dict[str, Any] = dict(dj_database_url.parse(ENV.database_url, conn_max_age=600))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # WAL lets the web server, workers and scheduler read while one of them writes.
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    _db["CONN_MAX_AGE"] = 0
elif ENV.database_pool:
    # A pool of at most DATABASE_POOL connections (the web server sets it: config/asgi.py says why);
    # Django's pool checks each connection as it is taken. Workers and the scheduler keep one
    # persistent connection each.
    _db["CONN_MAX_AGE"] = 0
    _db["CONN_HEALTH_CHECKS"] = True
    _db["OPTIONS"] = {**_db.get("OPTIONS", {}), "pool": {"min_size": 1, "max_size": ENV.database_pool, "timeout": 10}}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"

LOGIN_URL = "/admin/login/"


def build_storages(env: Env) -> dict[str, Any]:
    """Django's STORAGES for an environment: the local filesystem, or S3 through django-storages."""
    default: dict[str, Any] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if env.storage == "s3":
        from botocore.config import Config  # botocore only where S3 is configured

        options: dict[str, Any] = {
            "bucket_name": env.s3_bucket,
            "endpoint_url": env.s3_endpoint_url or None,
            "region_name": env.s3_region or None,
            "file_overwrite": True,  # result keys are rewritten on retry; upload keys are unique
            "querystring_auth": True,  # url() is a presigned GET
            # The timeouts bound each connect and read; botocore retries a few times on timeouts,
            # connection errors, 5xx and throttling, after which the read counts as TRANSIENT.
            "client_config": Config(
                connect_timeout=env.storage_timeout,
                read_timeout=env.storage_timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",  # presigned URLs too (botocore would sign them with SigV2 in us-east-1)
                # S3-compatible servers: path-style addressing, and no checksums they may not know.
                s3={"addressing_style": "path"} if env.s3_endpoint_url else None,
                request_checksum_calculation="when_required" if env.s3_endpoint_url else None,
                response_checksum_validation="when_required" if env.s3_endpoint_url else None,
            ),
        }
        if env.aws_access_key_id:
            # Unset: boto3's own chain (instance role, ~/.aws) supplies credentials.
            options["access_key"] = env.aws_access_key_id
            options["secret_key"] = env.aws_secret_access_key
        default = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    return {"default": default, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


# Files (uploaded audio, transcripts) go through Django's storage API; transcription.sources uses it.
STORAGES = build_storages(ENV)
MEDIA_ROOT = ENV.media_root
MEDIA_URL = "/media/"
STORAGE_TIMEOUT = ENV.storage_timeout
# Request bodies (jobs.api.bodylimit): an upload (multipart) up to the largest audio plus its form
# fields; any other body up to Django's in-memory limit (2.5 MB). Over a limit: 413 before reading.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
UPLOAD_BODY_MAX = max(ENV.transcription_max_bytes, ENV.files_max_bytes) + 1024 * 1024
# Seed 3's files: the largest upload (413 over it), and how old an object without a row must be
# before the sweep removes it (an upload or a compress in flight writes its object first).
FILES_MAX_BYTES = ENV.files_max_bytes
# Where upload-async keeps a file until its job stores it: None stages in storage (files/staging/,
# any worker can read it); a folder stages there, one local write, for workers on this machine.
FILES_STAGING_DIR = ENV.files_staging_dir
FILES_SWEEP_GRACE = 3600.0
TRANSCRIPTION_ALLOWED_HOSTS = ENV.transcription_allowed_hosts
TRANSCRIPTION_MODEL_DIR = ENV.transcription_model_dir
TRANSCRIPTION_MAX_BYTES = ENV.transcription_max_bytes
TRANSCRIPTION_DEVICE = ENV.transcription_device
PIPELINES_PROVIDER_URL = ENV.pipelines_provider_url
PIPELINES_PROVIDER_TIMEOUT = ENV.pipelines_provider_timeout

# Seed 4's AI jobs (ai app): text size, the translation provider, per-key limits, and cost in cents
# per 1,000 tokens (input and output, Whisper tiny.en's tokenizer), rounded up per job.
AI_MAX_TEXT_CHARS = ENV.ai_max_text_chars
AI_PROVIDER_URL = ENV.ai_provider_url
AI_PROVIDER_TIMEOUT = ENV.ai_provider_timeout
AI_RATE_LIMIT_PER_MINUTE = ENV.ai_rate_limit_per_minute
AI_MONTHLY_TOKEN_QUOTA = ENV.ai_monthly_token_quota
AI_COST_CENTS_PER_1K_TOKENS = {"SUMMARIZE": 0.2, "CLASSIFY": 0.1, "SENTIMENT": 0.05, "TRANSLATE": 0.3, "EXTRACT": 0.1}
# Seed 5's assistant (assistant app). Email goes out over SMTP when EMAIL_HOST is set (Django's
# EMAIL_* settings); without it, each message is written to a file under var/mail, so `make run`
# works offline. Inbox sync reads IMAP_*; calendar feeds may come from CALENDAR_ALLOWED_HOSTS
# (https, public names, as for transcription audio); tasks go to TASKS_PROVIDER_URL when set.
if ENV.email_host:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_HOST = ENV.email_host or "localhost"
EMAIL_PORT = ENV.email_port
EMAIL_USE_TLS = ENV.email_use_tls
EMAIL_USE_SSL = ENV.email_use_ssl
EMAIL_HOST_USER = ENV.email_host_user
EMAIL_HOST_PASSWORD = ENV.email_host_password
EMAIL_TIMEOUT = ENV.email_timeout
DEFAULT_FROM_EMAIL = ENV.default_from_email
ASSISTANT_IMAP = {
    "host": ENV.imap_host, "port": ENV.imap_port, "ssl": ENV.imap_use_ssl, "user": ENV.imap_user, "password": ENV.imap_password,
}
CALENDAR_ALLOWED_HOSTS = ENV.calendar_allowed_hosts
TASKS_PROVIDER_URL = ENV.tasks_provider_url
TASKS_PROVIDER_TOKEN = ENV.tasks_provider_token
TASKS_PROVIDER_TIMEOUT = ENV.tasks_provider_timeout
# Webhooks (webhooks app): where deliveries may go (https and public addresses unless these say) and how long one waits.
WEBHOOKS_ALLOW_HTTP = ENV.webhooks_allow_http
WEBHOOKS_ALLOWED_NETWORKS = ENV.webhooks_allowed_networks
WEBHOOKS_TIMEOUT = ENV.webhooks_timeout

REDIS_URL = ENV.redis_url


# Live events (events app): Channels groups on the same Redis as the engine.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 60},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "jobs.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "jobs.api.permissions.NotReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "jobs.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "jobs.api.errors.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "jobs.api.negotiation.DisregardUnacceptable",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # JSON bodies everywhere; the two upload endpoints add multipart (their views say so).
    "DEFAULT_PARSER_CLASSES": ["jobs.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "jobconsole API",
    "DESCRIPTION": "Jobs, queues and dead letters of the jobconsole engine.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, with write-only rules (minLength 1 for required text).
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "jobs.api.schema.path_parameters"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Queue definitions. Each key is a queue name; values are validated by jobs.engine.conf.
# retention: keep at most `count` jobs of that status and none older than `age` seconds.
JOBS_QUEUES: dict[str, dict[str, Any]] = {
    "default": {
        "attempts": 3,
        "backoff": {"delay": 2.0, "factor": 2.0},
        "timeout": 600,
        "retention": {"completed": {"count": 1000, "age": 24 * 3600}, "failed": {"count": 5000, "age": 7 * 24 * 3600}},
        "concurrency": 2,
        "group": "default",
    },
}
# Seed 1: one transcription per worker process (a model per process), long timeout; seed 5 runs 3
# at once and ranks them High (a job without a tier gets HIGH; seed 1's tiers set their own).
JOBS_QUEUES["transcription"] = {
    "attempts": 3,
    "backoff": {"delay": 5.0, "factor": 3.0},
    "timeout": 3600,
    "retention": {"completed": {"count": 1000, "age": 7 * 24 * 3600}, "failed": {"count": 5000, "age": 30 * 24 * 3600}},
    "concurrency": 3,
    "priority": "HIGH",
    "group": "transcription",
}
# Seed 2: one queue per dubbing stage, 3 attempts backing off 5 s, 15 s, 45 s.
for _name in ("stt", "mt", "tts", "muxing", "lip-sync"):
    JOBS_QUEUES[_name] = {
        "attempts": 3,
        "backoff": {"delay": 5.0, "factor": 3.0},
        "timeout": 3600,
        "retention": {"completed": {"count": 1000, "age": 7 * 24 * 3600}, "failed": {"count": 5000, "age": 30 * 24 * 3600}},
        "concurrency": 1,
        "group": "pipelines",
    }
# Seed 3: 3 attempts backing off 2 s, 4 s; keep the last 100 completed and 500 failed; 5 at once;
# at most 10 jobs a second across all workers of each queue.
for _name in ("file-upload", "file-process", "file-delete"):
    JOBS_QUEUES[_name] = {
        "attempts": 3,
        "backoff": {"delay": 2.0, "factor": 2.0},
        "timeout": 1800,
        "retention": {"completed": {"count": 100}, "failed": {"count": 500}},
        "rate_limit": {"max": 10, "duration": 1},
        "concurrency": 5,
        "group": "files",
    }
# Seed 4: ai-jobs 3 attempts backing off 2 s, 4 s; keep completed an hour, failed 7 days; 5 at once.
# The webhooks queue, for every product: 5 attempts (2 s, 4 s, 8 s, 16 s), then the dead letters;
# its own worker group, so that webhooks go out wherever AI workers run or not; I/O-bound, so one
# process of 10 threads.
JOBS_QUEUES["ai-jobs"] = {
    "attempts": 3,
    "backoff": {"delay": 2.0, "factor": 2.0},
    "timeout": 300,
    "retention": {"completed": {"age": 3600}, "failed": {"age": 7 * 24 * 3600}},
    "concurrency": 5,
    "group": "ai",
}
JOBS_QUEUES["webhooks"] = {
    "attempts": 5,
    "backoff": {"delay": 2.0, "factor": 2.0},
    "timeout": 60,
    "retention": {"completed": {"age": 24 * 3600}, "failed": {"age": 7 * 24 * 3600}},
    "concurrency": 10,
    "mode": "threads",
    "group": "webhooks",
}
# Seed 5, the voice assistant: 3 attempts backing off 2 s, 4 s; keep completed jobs an hour (the last
# 100), failed ones a day. Its numbered priorities (1 = Critical ... 4 = Low, lower first) become the
# engine's named levels (higher first). The I/O-bound queues share one threads-mode worker
# ("assistant": 20 threads, each queue capped at its concurrency); ai-processing is CPU-bound and
# runs with the ai-jobs processes; transcription is seed 1's queue above.
_ASSISTANT = {
    "attempts": 3,
    "backoff": {"delay": 2.0, "factor": 2.0},
    "retention": {"completed": {"age": 3600, "count": 100}, "failed": {"age": 24 * 3600}},
}
for _name, _priority, _concurrency, _timeout, _group, _mode in (
    ("voice-processing", "CRITICAL", 5, 60, "assistant", "threads"),
    ("ai-processing", "CRITICAL", 5, 120, "ai", "processes"),
    ("synthesis", "HIGH", 3, 120, "assistant", "threads"),
    ("email-processing", "NORMAL", 10, 60, "assistant", "threads"),
    ("calendar-sync", "NORMAL", 10, 120, "assistant", "threads"),
    ("task-processing", "LOW", 5, 60, "assistant", "threads"),
    ("notification", "LOW", 20, 30, "assistant", "threads"),
):
    JOBS_QUEUES[_name] = {
        **_ASSISTANT, "priority": _priority, "concurrency": _concurrency, "timeout": _timeout, "group": _group, "mode": _mode,
    }
for _name, _override in ENV.queues_override.items():
    JOBS_QUEUES[_name] = {**JOBS_QUEUES.get(_name, {}), **_override}

# django-rq's pages show the carrier: the RQ queues (one per queue and priority level, as the
# engine's workers read them) and the workers registered in Redis. Built from the declarations, so
# they list the same Redis lists that the engine pushes to and pops from.
RQ_QUEUES = {name: {"URL": REDIS_URL} for _queue in JOBS_QUEUES for name in carrier_names(_queue)}
# The engine writes no RQ job hashes (only ids travel): django-rq reads its lists through a queue
# class that lists the ids without removing them as RQ's own would.
RQ = {"QUEUE_CLASS": "jobs.engine.broker.CarrierQueue"}

# The worker's transition statements are prepared on their connection (server-side binding):
# PostgreSQL plans them once. Turn off behind a pooler that cannot keep prepared statements
# (PgBouncer before 1.21 in transaction mode).
JOBS_PREPARED_STATEMENTS = ENV.prepared_statements
# A process worker claims up to this many waiting jobs in one statement (and records their
# completions with the next batch's claims) while jobs run under 50 ms; 1: one job per claim.
JOBS_BATCH_SIZE = ENV.batch_size
JOBS_STALL_TIMEOUT = ENV.stall_timeout
JOBS_HEARTBEAT_INTERVAL = ENV.heartbeat_interval
JOBS_CANCEL_GRACE = ENV.cancel_grace
JOBS_SHUTDOWN_GRACE = ENV.shutdown_grace
# Jobs the scheduler enqueues once per period (jobs.engine.periodic): the files sweep removes
# objects under files/ that no row names, hourly.
JOBS_PERIODIC = {"files-sweep": {"type": "file-sweep", "every": 3600, "payload": {"remove": True}}}
JOBS_TASK_MODULES = ["jobs.samples", "transcription.tasks", "pipelines.tasks", "files.tasks", "webhooks.tasks", "ai.tasks", "assistant.tasks"]
METRICS_TOKEN = ENV.metrics_token
# Fault injection for the outbox's tests (tests/faults): a process exits where this names. Never set in production.
JOBS_FAULT_POINT = ENV.fault_point
# How long a worker retries a write while the database is unreachable (a restart), before giving up.
JOBS_DB_RETRY = ENV.db_retry
# Workers commit claims, completions and heartbeats without waiting for the disk (PostgreSQL's
# synchronous_commit off for their sessions); every enqueue still waits (jobs/engine/sql.py says
# what a crash can then cost: a job run once more).
JOBS_ASYNC_COMMIT = ENV.async_commit

# `make run` (launcher): the first admin (generated when not given) and the web server's port.
ADMIN_USERNAME = ENV.admin_username
ADMIN_PASSWORD = ENV.admin_password
SERVE_PORT = ENV.port
# Web server processes (`make run`): Django runs a process's synchronous views one at a time, so
# concurrent requests (uploads above all) wait for each other unless there are several.
WEB_PROCESSES = ENV.web_processes

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "jobs": {"handlers": ["console"], "level": "INFO"},
        "rq.worker": {"handlers": ["console"], "level": "WARNING"},
    },
}
