"""The Workers page (/admin/jobs/workers/), its JSON, `manage.py workers`, and the heartbeat fields they show
(mode, RSS) as real process and threads workers write them."""
from __future__ import annotations

import json
import os
import resource
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.engine.memory import rss_bytes
from jobs.engine.threads import ThreadsWorker
from jobs.models import Job, WorkerHeartbeat
from jobs.services import JobSpec

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = reverse("admin:jobs_workers")
DATA = reverse("admin:jobs_workers_data")
MB = 1024 * 1024


def beat(name: str, *, seen: timedelta = timedelta(0), stopped: bool = False, **fields: Any) -> WorkerHeartbeat:
    now = timezone.now()
    defaults: dict[str, Any] = dict(hostname="box-1", pid=100, queues=["default"], started_at=now - timedelta(minutes=10), last_seen=now - seen)
    return WorkerHeartbeat.objects.create(name=name, stopped_at=now - seen if stopped else None, **{**defaults, **fields})


@pytest.fixture
def fleet() -> Job:
    """An alive worker running a job at 40%, a threads slot, a stale one, a stopped one, and one stopped long ago."""
    job, _ = services.enqueue(JobSpec(type="sleep", payload={"seconds": 5}))
    Job.objects.filter(pk=job.pk).update(progress=40, progress_message="step 4/10")
    beat("w-busy", current_job_id=job.pk, jobs_done=7, rss=150 * MB)
    beat("w-io:t01", mode="threads", queues=["email", "webhooks"], rss=80 * MB, pid=101)
    beat("w-hung", seen=timedelta(minutes=5), rss=90 * MB, pid=102)
    beat("w-done", seen=timedelta(minutes=20), stopped=True, jobs_done=3, pid=103)
    beat("w-ancient", seen=timedelta(hours=3), stopped=True, pid=104)
    return job


def test_rss_is_the_resident_size_now_in_bytes() -> None:
    rss = rss_bytes()
    assert rss is not None
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert 10 * MB < rss <= peak_kb * 1024 * 1.1  # at most the peak (Linux reports it in KB)
    with open(f"/proc/{os.getpid()}/status") as status:
        vm_rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    assert abs(rss - vm_rss_kb * 1024) < 20 * MB  # what the kernel tells `ps`, give or take this test's own allocations


def test_a_process_worker_writes_its_mode_and_rss_on_start_and_on_each_heartbeat(burst: Any) -> None:
    services.enqueue(JobSpec(type="noop"))
    worker = burst()
    row = WorkerHeartbeat.objects.get(name=worker.name)
    assert row.mode == "processes" and row.rss is not None and row.rss > 10 * MB
    WorkerHeartbeat.objects.filter(name=worker.name).update(rss=None)
    worker._beat()  # the heartbeat thread's periodic write
    assert WorkerHeartbeat.objects.get(name=worker.name).rss > 10 * MB


def test_a_threads_worker_writes_mode_and_rss_on_every_slot(queues: Any) -> None:
    queues(io={"mode": "threads", "concurrency": 2, "timeout": 30})
    services.enqueue(JobSpec(type="echo", queue="io"))
    worker = ThreadsWorker(["io"], threads=2)
    assert worker.work(burst=True) == 0
    rows = list(WorkerHeartbeat.objects.filter(name__startswith=worker.name))
    assert len(rows) == 2 and all(r.mode == "threads" and r.rss and r.rss > 10 * MB for r in rows)
    WorkerHeartbeat.objects.filter(name__startswith=worker.name).update(rss=None)
    worker._beat()  # the watchdog's periodic write: one statement for every slot
    assert all(r.rss and r.rss > 10 * MB for r in WorkerHeartbeat.objects.filter(name__startswith=worker.name))


def test_workers_page_shows_each_worker_with_its_job_progress_memory_and_heartbeat(admin_client: Client, fleet: Job) -> None:
    response = admin_client.get(WORKERS)
    assert response.status_code == 200
    page = response.content.decode()
    alive, rest = page.split('id="workers-stale"')
    stale, stopped = rest.split('id="workers-stopped"')
    assert "w-busy" in alive and "w-io:t01" in alive and "w-hung" not in alive and "w-done" not in alive
    assert "w-hung" in stale and "w-done" in stopped and "w-ancient" not in page
    busy = alive.split('data-worker="w-busy"')[1].split("</tr>")[0]
    assert f'href="{reverse("admin:jobs_job_change", args=[fleet.pk])}"' in busy
    assert 'style="width:40%"' in busy and "step 4/10" in busy and "150.0\xa0MB" in busy and ">processes<" in busy
    assert "box-1" in busy and ">100<" in busy and ">7<" in busy and "s ago" in busy
    io = alive.split('data-worker="w-io:t01"')[1].split("</tr>")[0]
    assert ">threads<" in io and "email, webhooks" in io and "80.0\xa0MB" in io
    assert reverse("admin:jobs_queues") in page and f'data-url="{DATA}"' in page and "jobs/workers.js" in page


def test_workers_json_is_what_the_page_polls_in_two_queries(admin_client: Client, fleet: Job) -> None:
    admin_client.get(DATA)  # the session and user, cached past the first request
    with CaptureQueriesContext(connection) as queries:
        data = admin_client.get(DATA).json()
    engine = [q["sql"] for q in queries.captured_queries if "jobs_" in q["sql"]]
    assert len(engine) == 2, engine  # the heartbeats, then their current jobs
    assert {w["name"] for w in data["alive"]} == {"w-busy", "w-io:t01"}
    assert [w["name"] for w in data["stale"]] == ["w-hung"] and [w["name"] for w in data["stopped"]] == ["w-done"]
    busy = next(w for w in data["alive"] if w["name"] == "w-busy")
    assert busy["job"] == {"id": fleet.pk, "type": "sleep", "queue": "default", "status": "waiting", "progress": 40, "message": "step 4/10"}
    assert (busy["mode"], busy["rss"], busy["jobs_done"], busy["state"]) == ("processes", 150 * MB, 7, "alive")
    assert busy["age"] < 5 and busy["started_at"] and busy["last_seen"]


def test_the_index_and_the_queues_page_link_the_workers_page(admin_client: Client) -> None:
    assert WORKERS == "/admin/jobs/workers/"  # the address the README gives
    for url in (reverse("admin:index"), reverse("admin:app_list", args=["jobs"]), reverse("admin:jobs_queues")):
        assert f'href="{WORKERS}"' in admin_client.get(url).content.decode(), url


def test_anonymous_and_non_staff_are_sent_to_login(client: Client, django_user_model: Any) -> None:
    for url in (WORKERS, DATA):
        assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("plain"))
    assert "/admin/login/" in client.get(DATA)["Location"]


def test_manage_py_workers_prints_the_same_rows(fleet: Job) -> None:
    out = StringIO()
    call_command("workers", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("state") and "current job" in lines[0]
    busy = next(line for line in lines if f"{fleet.pk[:8]} sleep 40% step 4/10" in line)
    assert busy.startswith("alive") and "processes" in busy and "150.0 MB" in busy
    assert [line.split()[0] for line in lines[1:5]] == ["alive", "alive", "stale", "stopped"]
    assert "w-ancient" not in out.getvalue()

    out = StringIO()
    call_command("workers", "--json", "--state", "stale", stdout=out)
    assert [w["name"] for w in json.loads(out.getvalue())] == ["w-hung"]
