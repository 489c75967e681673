"""The console's project page and review actions; pipelines as data; the provider setting."""
from __future__ import annotations

import pytest
from django.test import Client

from config.env import ConfigError, read_env
from jobs.models import AuditEntry
from pipelines import definitions
from pipelines.models import Project, StageReview


def test_the_dubbing_pipeline_is_data_and_a_second_one_can_be_declared() -> None:
    d = definitions.DUBBING
    assert [s.name for s in d.applicable(premium=False)] == ["STT", "MT", "TTS", "MUXING"]
    assert [s.name for s in d.applicable(premium=True)] == ["STT", "MT", "TTS", "MUXING", "LIP_SYNC"]
    assert [s.queue for s in d.stages] == ["stt", "mt", "tts", "muxing", "lip-sync"]
    assert [s.name for s in d.stages if s.needs_review] == ["STT", "MT"]
    assert d.after("MUXING", premium=False) is None and d.after("MUXING", premium=True) is definitions.LIP_SYNC

    subtitles = definitions.register(definitions.Pipeline("subtitles", (definitions.STT, definitions.MT)))
    try:
        assert definitions.get("subtitles").after("STT", premium=False) is definitions.MT
    finally:
        definitions._PIPELINES.pop(subtitles.name)


def test_the_provider_url_is_validated() -> None:
    assert read_env({"PIPELINES_PROVIDER_URL": "https://mt.example.com/v1"}).pipelines_provider_url == "https://mt.example.com/v1"
    assert read_env({}).pipelines_provider_url == ""
    with pytest.raises(ConfigError, match="PIPELINES_PROVIDER_URL"):
        read_env({"PIPELINES_PROVIDER_URL": "ftp://mt.example.com"})
    with pytest.raises(ConfigError, match="PIPELINES_PROVIDER_TIMEOUT"):
        read_env({"PIPELINES_PROVIDER_TIMEOUT": "0"})


@pytest.mark.django_db(transaction=True)
def test_the_console_shows_a_timeline_and_reviews_through_the_services(alice, staff, make_project, drain, provider) -> None:
    staff.is_superuser = True
    staff.save()
    project = make_project(alice)
    drain()
    console = Client()
    console.force_login(staff)

    page = console.get(f"/admin/pipelines/project/{project.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "STT" in html and f"/admin/jobs/job/{project.stage_runs.get().job_id}/change/" in html and "completed 100%" in html

    r = console.post("/admin/pipelines/project/", {"action": "reject_stage", "_selected_action": [project.id]})
    assert r.status_code == 302
    assert StageReview.objects.get().decision == "reject"
    drain()
    console.post("/admin/pipelines/project/", {"action": "approve_stage", "_selected_action": [project.id]})
    project = Project.objects.get(pk=project.id)
    assert (project.status, project.current_stage) == ("running", "MT")
    entries = list(AuditEntry.objects.filter(actor=staff, source="admin").order_by("at").values_list("action", flat=True))
    assert entries == ["stage_reject", "stage_approve"]


@pytest.mark.django_db
def test_a_refused_review_is_mapped_in_one_place_for_forms_and_for_fetch(alice, admin_client) -> None:
    """The console's error mapping (jobs.console.errors): a message and a redirect back, or {message, extra} for JSON."""
    from django.urls import reverse

    from pipelines.models import Project

    project = Project.objects.create(owner=alice, source_key="pipelines/x/in.mp4", source_language="en", target_language="fr")
    live = reverse("admin:pipelines_project_live", args=[project.pk])
    approve = reverse("admin:pipelines_project_live_approve", args=[project.pk])

    answer = admin_client.post(approve, HTTP_ACCEPT="application/json")
    assert answer.status_code == 409
    assert answer.json() == {"message": f"project {project.pk} is created, not awaiting review", "extra": {"projectId": project.pk, "status": "created"}}

    answer = admin_client.post(approve, HTTP_REFERER=f"http://testserver{live}", follow=True)
    assert answer.redirect_chain[-1][0].endswith(live)
    assert "is created, not awaiting review" in answer.content.decode()
    assert not project.stage_runs.exists()

    assert admin_client.get(reverse("admin:pipelines_project_live", args=["no-such-project"])).status_code == 404
