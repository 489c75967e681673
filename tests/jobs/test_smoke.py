import pytest

from jobs import services
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_and_run(burst):
    job, created = services.enqueue(JobSpec(type="echo", payload={"a": 1}))
    assert created
    burst()
    job.refresh_from_db()
    assert job.status == "completed", (job.status, job.failed_reason, job.traceback)
    assert job.result == {"echo": {"a": 1}}
