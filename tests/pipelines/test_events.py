"""A project's events reach its owner's WebSocket in order; others are refused the project topic."""
from __future__ import annotations

from typing import Any

import pytest

from events import broadcast
from tests.events.test_events import connected, events_until, key_for, run, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.media]


def test_the_owner_sees_the_stt_stage_run_and_wait_for_review(alice, bob, make_project, burst) -> None:
    project = make_project(alice)
    alice_key, bob_key = key_for(alice), key_for(bob)

    async def refused() -> None:
        comm = await connected(f"?api_key={bob_key}")
        answer = await subscribe(comm, "project", project.pk)
        assert answer["type"] == "error"
        await comm.disconnect()

    run(refused)

    async def watch() -> list[dict[str, Any]]:
        from asgiref.sync import sync_to_async

        comm = await connected(f"?api_key={alice_key}")
        assert (await subscribe(comm, "project", project.pk))["type"] == "subscribed"
        await sync_to_async(burst)("stt")
        await sync_to_async(broadcast.flush)()
        got = await events_until(comm, "stage_ready_for_review", timeout=60)
        await comm.disconnect()
        return got

    events = run(watch)
    types = [e["type"] for e in events]
    assert types[0] == "job_started" and "job_completed" in types and types[-1] == "stage_ready_for_review"
    assert types.index("job_completed") < types.index("stage_ready_for_review")
    assert all(e["projectId"] == project.pk for e in events)
    assert events[-1]["stage"] == "STT"
