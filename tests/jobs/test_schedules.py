"""Recurring jobs: schedules in the database, fired by the scheduler once per slot (jobs.engine.schedules)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection

from jobs import services
from jobs.engine import schedules
from jobs.exceptions import InvalidInput
from jobs.models import AuditEntry, Job, Lease, Schedule

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt_timezone.utc


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make(cron: str = "*/10 * * * * *", **options: Any) -> Schedule:
    schedule = services.create_schedule(name=options.pop("name", "tick"), job_type="noop", cron=cron, **options)
    return schedule


def test_a_bad_schedule_is_refused_naming_each_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        services.create_schedule(name="", job_type="nope", cron="61 * * *", timezone="Mars/Olympus", queue="nowhere", missed="later", grace=-1)
    assert set(caught.value.extra) == {"name", "job_type", "cron", "timezone", "queue", "missed", "grace"}
    assert Schedule.objects.count() == 0


def test_seconds_first_and_timezones_across_daylight_saving() -> None:
    assert schedules.cron_problems("0 */30 * * * *", "UTC") == {}  # seed 5's six fields, seconds first
    berlin = schedules.next_times("0 9 * * *", "Europe/Berlin", after=at(2026, 3, 27, 12), count=3)
    assert [t.astimezone(ZoneInfo("Europe/Berlin")).hour for t in berlin] == [9, 9, 9]  # 9:00 local either side of the change
    assert [t.astimezone(UTC).hour for t in berlin] == [8, 7, 7]
    half = schedules.next_times("0 */30 * * * *", "UTC", after=at(2026, 1, 1, 0, 10), count=2)
    assert half == [at(2026, 1, 1, 0, 30), at(2026, 1, 1, 1, 0)]


def test_each_slot_fires_once_with_two_schedulers_over_100_slots() -> None:
    """Two schedulers tick side by side (threads, each its own connection) over 100 ten-second slots of a fast
    clock; one of them also fires without leadership, as a scheduler whose lease ran out mid-tick would."""
    schedule = make("*/10 * * * * *")
    base = schedule.next_fire_at
    assert base is not None
    moments = [base + timedelta(seconds=10 * i, milliseconds=300) for i in range(100)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(holder: str, leader_only: bool) -> None:
        try:
            for now in moments:
                barrier.wait(timeout=30)
                if leader_only:
                    schedules.fire_due(holder=holder, now=now)
                else:
                    schedules.fire_all_due(now=now)  # ignores the lease: the idempotency key alone must hold
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=("a", True)), threading.Thread(target=run, args=("b", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    keys = list(Job.objects.filter(type="noop").values_list("idempotency_key", flat=True))
    assert len(keys) == 100 and len(set(keys)) == 100
    schedule.refresh_from_db()
    assert schedule.last_fired_at == base + timedelta(seconds=990) and schedule.next_fire_at == base + timedelta(seconds=1000)


def test_leadership_is_a_lease_that_expires() -> None:
    now = at(2026, 1, 1)
    assert schedules.take_lease("a", now=now) and schedules.take_lease("a", now=now + timedelta(seconds=5))
    assert not schedules.take_lease("b", now=now + timedelta(seconds=10))  # a renewed at +5 s: its lease lasts to +20 s
    assert schedules.take_lease("b", now=now + timedelta(seconds=21))
    assert Lease.objects.get(name=schedules.LEASE).holder == "b"


def _down_for_hours(missed: str, grace: float) -> tuple[Schedule, datetime]:
    schedule = make("0 * * * *", name=f"hourly-{missed}-{grace}", missed=missed, grace=grace)
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=at(2026, 1, 1, 8))  # due at 8:00; the schedulers come back at 10:30
    schedule.refresh_from_db()
    return schedule, at(2026, 1, 1, 10, 30)


@pytest.mark.parametrize(("missed", "grace", "fires"), [("skip", 3600, False), ("run_once", 3600, True), ("run_once", 600, False)])
def test_missed_slots_follow_the_schedules_policy(missed: str, grace: float, fires: bool) -> None:
    schedule, back = _down_for_hours(missed, grace)
    assert schedules.fire_due(holder="a", now=back) == int(fires)
    jobs = list(Job.objects.filter(type="noop"))
    schedule.refresh_from_db()
    # run_once: only the latest missed slot (10:00, 30 minutes late), never 8:00 and 9:00 as well
    assert [j.idempotency_key.split(":")[-1] for j in jobs] == ([str(int(at(2026, 1, 1, 10).timestamp()))] if fires else [])
    assert schedule.next_fire_at == at(2026, 1, 1, 11)
    assert schedules.fire_due(holder="a", now=back + timedelta(seconds=5)) == 0  # nothing more until 11:00


def test_edit_disable_enable_and_run_now_are_audited(settings: Any) -> None:
    schedule = make("*/15 * * * *", name="sync")
    services.update_schedule(schedule.pk, cron="0 * * * *")
    services.set_schedule_enabled(schedule.pk, enabled=False)
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.enabled, schedule.next_fire_at) == ("0 * * * *", False, None)
    assert schedules.fire_all_due(now=at(2100, 1, 1)) == 0  # disabled: never due
    job = services.run_schedule_now(schedule.pk)
    assert job.type == "noop" and Schedule.objects.get(pk=schedule.pk).last_job_id == job.id
    services.set_schedule_enabled(schedule.pk, enabled=True)
    assert Schedule.objects.get(pk=schedule.pk).next_fire_at is not None
    actions = list(AuditEntry.objects.order_by("at").values_list("action", flat=True))
    assert actions == ["schedule-create", "schedule-update", "schedule-update", "schedule-run", "schedule-update"]
    update = AuditEntry.objects.filter(action="schedule-update").order_by("at").first()
    assert update is not None and (update.detail["before"]["cron"], update.detail["after"]["cron"]) == ("*/15 * * * *", "0 * * * *")
    with pytest.raises(InvalidInput) as caught:
        services.update_schedule(schedule.pk, cron="every day")
    assert "cron" in caught.value.extra and Schedule.objects.get(pk=schedule.pk).cron == "0 * * * *"


def test_manage_py_schedules(capsys: Any) -> None:
    call_command("schedules", "add", "nightly", "noop", "0 3 * * *", "--timezone", "Europe/Berlin", "--payload", '{"n": 1}')
    call_command("schedules", "show", "nightly")
    call_command("schedules", "disable", "nightly")
    call_command("schedules", "run", "nightly")
    call_command("schedules", "list")
    out = capsys.readouterr().out
    assert "added nightly" in out and "T03:00:00+01:00" in out and "disabled nightly" in out and "enqueued job" in out
    assert "off nightly" in out
    assert Job.objects.get(type="noop").payload == {"n": 1}
    assert AuditEntry.objects.filter(action__startswith="schedule-", source="cli").count() == 3


def test_the_schedulers_tick_fires_due_schedules_and_only_its_leader_does() -> None:
    from jobs.engine.scheduler import Scheduler

    schedule = make("* * * * *", name="every-minute")
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=schedule.next_fire_at - timedelta(minutes=1))  # due now
    first, second = Scheduler(), Scheduler()
    first.tick()
    assert Job.objects.filter(type="noop").count() == 1
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=schedule.next_fire_at - timedelta(minutes=1))
    second.tick()  # the first still holds the lease: the second fires nothing
    assert Job.objects.filter(type="noop").count() == 1
    assert Lease.objects.get(name=schedules.LEASE).holder == first.name


# -- REST ----------------------------------------------------------------------------------------



def test_the_api_creates_shows_changes_runs_and_deletes_a_schedule(as_staff: Any, as_alice: Any) -> None:
    made = as_staff.post("/api/schedules", {"name": "email-sync", "jobType": "noop", "cron": "0 */30 * * * *", "priority": "LOW"}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["jobType"], body["priority"], body["enabled"], body["missed"]) == ("noop", 1, True, "skip")
    assert len(body["nextTimes"]) == 5 and body["nextTimes"][0].endswith(("00:00+00:00", "30:00+00:00"))
    sid = body["id"]
    bad = as_staff.patch(f"/api/schedules/{sid}", {"cron": "every 30 minutes", "timezone": "Nowhere"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"message", "extra"} and {"cron", "timezone"} <= set(bad.json()["extra"])
    changed = as_staff.patch(f"/api/schedules/{sid}", {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "enabled": False}, format="json")
    assert changed.status_code == 200 and changed.json()["nextTimes"] == [] and changed.json()["nextFireAt"] is None
    ran = as_staff.post(f"/api/schedules/{sid}/run")
    assert ran.status_code == 202 and ran.json()["type"] == "noop"
    shown = as_staff.get(f"/api/schedules/{sid}").json()
    assert (shown["lastJobId"], shown["lastJobStatus"]) == (ran.json()["id"], "waiting")
    assert [s["name"] for s in as_staff.get("/api/schedules").json()] == ["email-sync"]
    assert as_alice.get("/api/schedules").status_code == 403  # staff only
    assert as_staff.delete(f"/api/schedules/{sid}").status_code == 204
    assert as_staff.get(f"/api/schedules/{sid}").status_code == 404
    assert list(AuditEntry.objects.filter(source="api").order_by("at").values_list("action", flat=True)) == [
        "schedule-create", "schedule-update", "schedule-run", "schedule-delete",
    ]


def test_the_api_refuses_a_bad_new_schedule_with_every_field_named(as_staff: Any) -> None:
    response = as_staff.post("/api/schedules", {"name": "x", "jobType": "nope", "cron": "* *", "queue": "nowhere", "grace": -5}, format="json")
    assert response.status_code == 400
    assert {"grace"} <= set(response.json()["extra"])  # the body's own rule first
    response = as_staff.post("/api/schedules", {"name": "x", "jobType": "nope", "cron": "* *", "queue": "nowhere"}, format="json")
    assert response.status_code == 400 and {"job_type", "cron", "queue"} <= set(response.json()["extra"])
    assert Schedule.objects.count() == 0


# -- the admin's form ----------------------------------------------------------------------------


def test_the_admin_form_checks_the_expression_and_saves_through_the_services(admin_client: Any) -> None:
    url = "/admin/jobs/schedule/add/"
    fields = {"name": "nightly", "job_type": "noop", "payload": "{}", "queue": "", "priority": "NORMAL", "timezone": "UTC", "enabled": "on", "missed": "skip", "grace": "3600"}
    refused = admin_client.post(url, {**fields, "cron": "every night"})
    assert refused.status_code == 200 and "not a cron expression" in refused.content.decode()
    assert Schedule.objects.count() == 0
    saved = admin_client.post(url, {**fields, "cron": "0 3 * * *"})
    assert saved.status_code == 302
    schedule = Schedule.objects.get(name="nightly")
    assert schedule.next_fire_at is not None and AuditEntry.objects.filter(action="schedule-create", source="admin").exists()
    page = admin_client.get(f"/admin/jobs/schedule/{schedule.pk}/change/").content.decode()
    assert page.count("03:00:00 UTC") == 5  # the next 5 times


def test_an_expression_that_never_fires_and_a_taken_name_are_refused(as_staff: Any) -> None:
    never = as_staff.post("/api/schedules", {"name": "leap", "jobType": "noop", "cron": "0 0 30 2 *"}, format="json")
    assert never.status_code == 400 and "never fires" in never.json()["extra"]["cron"][0]
    assert as_staff.post("/api/schedules", {"name": "once", "jobType": "noop", "cron": "0 0 * * *"}, format="json").status_code == 201
    taken = as_staff.post("/api/schedules", {"name": "once", "jobType": "noop", "cron": "0 1 * * *"}, format="json")
    assert taken.status_code == 409 and taken.json()["extra"] == {"name": ["a schedule with this name exists"]}
    assert Schedule.objects.get().cron == "0 0 * * *"
