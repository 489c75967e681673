from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.jobs.engine_support import drainer

FILE_QUEUES = ("file-upload", "file-process", "file-delete", "transcription")


@pytest.fixture
def local_storage(settings: Any, tmp_path: Path) -> Path:
    """Default storage on the local filesystem, in this test's own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def drain_files(burst: Callable[..., Any]) -> Callable[[], None]:
    """Run the file queues (and transcription, which transcribe hands work to) until nothing is pending."""
    return drainer(burst, FILE_QUEUES)
