"""Seed 4's /v1 through the API and a real engine worker: every job type, tokens, cost, limits, auth, bad input."""
from __future__ import annotations

import math
from typing import Any, Callable

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from ai.models import AiJob, Usage, UsageDay
from ai.processors import tokens
from jobs.api.auth import create_api_key
from jobs.models import Job
from tests.clients import bearer
from tests.pipelines.conftest import provider  # noqa: F401 (a fixture: a real HTTP translation provider)

pytestmark = pytest.mark.django_db(transaction=True)

POSITIVE = "I absolutely love this product. The support team was wonderful and helpful, and everything works perfectly!"
NEGATIVE = "This is the worst service I have ever used. It crashed constantly, support was rude and useless, and I want a refund."
ARTICLE = (
    "The city council approved a new budget for public transport on Monday. "
    "The plan adds forty electric buses to the fleet over the next two years. "
    "Officials said the buses will cut emissions in the busiest districts. "
    "Ticket prices will stay the same until the end of next year. "
    "Critics argued that the money should have gone to repairing old tram lines. "
    "The mayor answered that the trams will be repaired from a separate fund. "
    "Construction of two new charging depots starts in the spring. "
    "The first electric buses are expected on the streets by autumn. "
    "Residents can comment on the new routes on the council's website until March."
)


@pytest.fixture
def key(alice: Any) -> tuple[Any, str]:
    return create_api_key(user=alice, name="ci")


@pytest.fixture
def client(key: tuple[Any, str]) -> APIClient:
    return bearer(key[1])


def create(client: APIClient, kind: str, **body: Any) -> Any:
    return client.post(f"/v1/jobs/{kind}", body, format="json")


def run(client: APIClient, drain: Callable[[], None], kind: str, **body: Any) -> dict[str, Any]:
    answer = create(client, kind, **body)
    assert answer.status_code == 201, answer.content
    assert answer.json()["status"] == "QUEUED"
    drain()
    done = client.get(f"/v1/jobs/{answer.json()['id']}")
    assert done.status_code == 200
    return dict(done.json())


def test_sentiment_end_to_end_with_seed_4s_shape_tokens_and_cost(client: APIClient, key: tuple[Any, str], drain_ai: Callable[[], None]) -> None:
    answer = create(client, "sentiment", text=POSITIVE)
    assert answer.status_code == 201
    body = answer.json()
    assert {"id", "status", "type", "input", "output", "tokenUsed", "costCents", "createdAt", "completedAt"} <= set(body)
    assert (body["status"], body["type"], body["input"], body["output"], body["completedAt"]) == ("QUEUED", "SENTIMENT", {"text": POSITIVE}, None, None)
    assert answer["X-RateLimit-Limit"] == str(settings.AI_RATE_LIMIT_PER_MINUTE)
    job = Job.objects.get(group_ref=body["id"])
    assert (job.queue, job.type, job.max_attempts) == ("ai-jobs", "ai-sentiment", 3)

    drain_ai()
    done = client.get(f"/v1/jobs/{body['id']}").json()
    assert done["status"] == "SUCCEEDED" and done["completedAt"]
    assert done["output"]["label"] == "positive" and done["output"]["score"] > 0.5
    assert done["tokensIn"] == tokens.count(POSITIVE) and done["tokensIn"] != math.ceil(len(POSITIVE) / 4)
    assert done["tokenUsed"] == done["tokensIn"] + done["tokensOut"] and done["tokensOut"] > 0
    assert done["costCents"] == math.ceil(settings.AI_COST_CENTS_PER_1K_TOKENS["SENTIMENT"] * done["tokenUsed"] / 1000)
    usage = Usage.objects.get(ai_job_id=body["id"])
    assert (usage.api_key_id, usage.tokens_in + usage.tokens_out, usage.cost_cents) == (key[0].pk, done["tokenUsed"], done["costCents"])
    day = UsageDay.objects.get(api_key=key[0], type="SENTIMENT")
    assert (day.jobs, day.tokens, day.cost_cents) == (1, done["tokenUsed"], done["costCents"])


def test_negative_sentiment(client: APIClient, drain_ai: Callable[[], None]) -> None:
    done = run(client, drain_ai, "sentiment", text=NEGATIVE)
    assert done["output"]["label"] == "negative" and done["output"]["score"] < -0.5


def test_summarize_is_shorter_and_made_of_the_texts_sentences(client: APIClient, drain_ai: Callable[[], None]) -> None:
    done = run(client, drain_ai, "summarize", text=ARTICLE, maxSentences=2)
    out = done["output"]
    assert out["originalLength"] == len(ARTICLE) and out["summaryLength"] == len(out["summary"]) < len(ARTICLE)
    assert 1 <= len(out["sentences"]) <= 2 and all(s in ARTICLE for s in out["sentences"])
    assert done["tokensOut"] == tokens.count(out["summary"])


def test_extract_finds_keywords_in_the_text_and_entities(client: APIClient, drain_ai: Callable[[], None]) -> None:
    text = ARTICLE + " Write to transport@city.example.org or see https://city.example.org/buses before 2027-03-31. The budget is $4,500,000."
    out = run(client, drain_ai, "extract", text=text)["output"]
    assert out["keywords"] and all(k["text"].lower() in text.lower() for k in out["keywords"])
    assert "transport@city.example.org" in out["emails"] and "https://city.example.org/buses" in out["urls"]
    assert any("2027-03-31" in d for d in out["dates"]) and any("4,500,000" in a for a in out["amounts"])


def test_classify_picks_the_label_among_the_callers(client: APIClient, drain_ai: Callable[[], None]) -> None:
    done = run(client, drain_ai, "classify", text="The striker scored twice and the team won the championship final.", labels=["sports", "politics", "Sports ", "technology"])
    assert done["input"]["labels"] == ["sports", "politics", "technology"]  # the same label twice counts once
    out = done["output"]
    assert out["label"] == "sports" and set(out["scores"]) == {"sports", "politics", "technology"}


def test_translate_goes_through_the_provider(client: APIClient, drain_ai: Callable[[], None], provider: Any, settings: Any) -> None:  # noqa: F811
    settings.AI_PROVIDER_URL = provider.url
    done = run(client, drain_ai, "translate", text="Good morning. See you soon.", targetLanguage="de")
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["translation"] == "GOOD MORNING. SEE YOU SOON."  # the test provider answers in capitals
    sent = provider.requests[-1]
    assert (sent["task"], sent["target"], [s["text"] for s in sent["segments"]]) == ("translate", "de", ["Good morning.", "See you soon."])


def test_translate_without_a_provider_fails_once_as_validation_naming_the_setting(client: APIClient, drain_ai: Callable[[], None], settings: Any) -> None:
    settings.AI_PROVIDER_URL = ""
    done = run(client, drain_ai, "translate", text="Hello.", targetLanguage="fr")
    assert done["status"] == "FAILED" and "AI_PROVIDER_URL" in done["error"]
    job = Job.objects.get(group_ref=done["id"])
    assert (job.status, job.error_kind, job.attempts_made) == ("failed", "VALIDATION", 1)
    assert not Usage.objects.filter(ai_job_id=done["id"]).exists()


def test_list_is_the_callers_newest_first_and_other_keys_jobs_are_404(client: APIClient, bob: Any, alice: Any) -> None:
    first = create(client, "sentiment", text="one").json()
    second = create(client, "extract", text="two").json()
    page = client.get("/v1/jobs?limit=10&offset=0").json()
    assert [j["id"] for j in page["results"]] == [second["id"], first["id"]]
    as_bob = bearer(create_api_key(user=bob)[1])
    assert as_bob.get(f"/v1/jobs/{first['id']}").status_code == 404
    assert as_bob.get("/v1/jobs").json()["results"] == []
    assert APIClient().get("/v1/jobs").status_code == 401
    assert APIClient().post("/v1/jobs/sentiment", {"text": "x"}, format="json").status_code == 401
    assert bearer("jc_not-a-key").get("/v1/jobs").status_code == 401
    browser = APIClient()
    browser.force_login(alice)
    assert browser.get("/v1/jobs").status_code == 403 and "API key" in browser.get("/v1/jobs").json()["message"]  # a session is not a key
    another_key_of_alice = bearer(create_api_key(user=alice)[1])
    assert another_key_of_alice.get(f"/v1/jobs/{first['id']}").status_code == 200  # the owner's, whichever key


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("sentiment", {}, "text"),
        ("sentiment", {"text": ""}, "text"),
        ("sentiment", {"text": "   "}, "text"),
        ("sentiment", {"text": 42}, "text"),
        ("summarize", {"text": "x", "maxSentences": 0}, "maxSentences"),
        ("classify", {"text": "x", "labels": "sports"}, "labels"),
        ("classify", {"text": "x", "labels": [1, 2]}, "labels.0"),
        ("classify", {"text": "x", "labels": []}, "labels"),
        ("translate", {"text": "x"}, "targetLanguage"),
        ("sentiment", {"text": "x", "priority": "URGENT"}, "priority"),
        ("sentiment", {"text": "x", "idempotencyKey": ""}, "idempotencyKey"),
        ("classify", {"text": "x", "labels": ["  "]}, "labels.0"),
        ("sentiment", {"text": "x", "webhookUrl": "ftp://example.org/hook"}, "webhookUrl"),
        ("sentiment", {"text": "x", "webhookUrl": "http://10.0.0.8/hook"}, "webhookUrl"),
    ],
)
def test_bad_input_is_400_and_nothing_is_stored(client: APIClient, kind: str, body: dict[str, Any], field: str) -> None:
    answer = create(client, kind, **body)
    assert answer.status_code == 400, answer.content
    assert set(answer.json()) == {"message", "extra"} and field in answer.json()["extra"], answer.json()
    assert not AiJob.objects.exists() and not Job.objects.exists()


def test_text_over_the_limit_and_an_unknown_type(client: APIClient, settings: Any) -> None:
    settings.AI_MAX_TEXT_CHARS = 100
    answer = create(client, "sentiment", text="x" * 101)
    assert answer.status_code == 400 and answer.json()["extra"]["limit"] == 100
    unknown = create(client, "poetry", text="x")
    assert unknown.status_code == 400 and "summarize" in unknown.json()["extra"]["type"][0]
    assert not AiJob.objects.exists()


def test_idempotency_key_returns_the_first_job(client: APIClient) -> None:
    first = create(client, "sentiment", text="hello", idempotencyKey="order-1")
    again = create(client, "sentiment", text="hello", idempotencyKey="order-1")
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    assert AiJob.objects.count() == 1 and Job.objects.count() == 1


def test_rate_limit_answers_429_with_retry_after_then_lets_through(client: APIClient, key: tuple[Any, str], settings: Any) -> None:
    settings.AI_RATE_LIMIT_PER_MINUTE = 3
    answers = [client.get("/v1/jobs") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    limited = answers[3]
    assert 1 <= int(limited["Retry-After"]) <= 60 and limited["X-RateLimit-Limit"] == "3"
    assert set(limited.json()) == {"message", "extra"} and limited.json()["extra"]["retryAfter"] == int(limited["Retry-After"])
    assert create(client, "sentiment", text="still limited").status_code == 429 and not AiJob.objects.exists()
    other = bearer(create_api_key(user=key[0].user)[1])
    assert other.get("/v1/jobs").status_code == 200  # per key, not per account


def test_a_keys_own_policy_and_the_monthly_quota(client: APIClient, key: tuple[Any, str], drain_ai: Callable[[], None]) -> None:
    from ai.models import KeyPolicy

    done = run(client, drain_ai, "sentiment", text=POSITIVE)
    KeyPolicy.objects.create(api_key=key[0], monthly_token_quota=done["tokenUsed"] + tokens.count("ok") - 1)
    refused = create(client, "sentiment", text="ok")
    assert refused.status_code == 402, refused.content
    assert refused.json()["extra"]["used"] == done["tokenUsed"] and "quota" in refused.json()["message"]
    assert AiJob.objects.count() == 1
    usage = client.get("/v1/usage").json()
    assert (usage["jobs"], usage["tokens"], usage["costCents"], usage["monthTokens"]) == (1, done["tokenUsed"], done["costCents"], done["tokenUsed"])
    assert usage["byType"]["SENTIMENT"]["jobs"] == 1 and len(usage["byDay"]) == 1
    assert client.get("/v1/usage?from=2020-01-01&to=2020-01-31").json()["jobs"] == 0
    assert client.get("/v1/usage?from=2020-02-01&to=2020-01-01").json()["jobs"] == 0  # an empty period
    assert client.get("/v1/usage?to=").status_code == 400 and client.get("/v1/usage?from=yesterday").status_code == 400


def test_a_worker_rerun_after_success_records_usage_once(client: APIClient, drain_ai: Callable[[], None]) -> None:
    from ai import services

    done = run(client, drain_ai, "sentiment", text=POSITIVE)
    services.run(None, ai_job_id=done["id"])  # type: ignore[arg-type]  # as a rerun after a crash would
    assert Usage.objects.count() == 1 and UsageDay.objects.get().jobs == 1


def test_metrics_all_shows_both_seed_4_queues(staff: Any) -> None:
    client = APIClient()
    client.force_authenticate(staff)
    body = client.get("/v1/admin/queue/metrics/all").json()
    assert body["aiJobs"]["queue"] == "ai-jobs" and body["webhooks"]["queue"] == "webhooks"


def test_an_idempotency_key_reused_for_another_request_is_409(client: APIClient) -> None:
    first = create(client, "sentiment", text="hello", idempotencyKey="k-1")
    assert create(client, "summarize", text="hello", idempotencyKey="k-1").status_code == 409
    conflict = create(client, "sentiment", text="hello there", idempotencyKey="k-1")
    assert conflict.status_code == 409 and conflict.json()["extra"]["jobId"] == first.json()["id"]
    assert create(client, "sentiment", text="", idempotencyKey="k-1").status_code == 400  # bad input is refused, key or not
    assert AiJob.objects.count() == 1


def test_the_quota_counts_jobs_not_yet_run(client: APIClient, key: tuple[Any, str]) -> None:
    from ai.models import KeyPolicy

    KeyPolicy.objects.create(api_key=key[0], monthly_token_quota=tokens.count(POSITIVE) * 2)
    assert [create(client, "sentiment", text=POSITIVE).status_code for _ in range(3)] == [201, 201, 402]  # two queued ones hold it all


def test_a_job_webhook_url_needs_the_owners_secret_first(client: APIClient, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    refused = create(client, "sentiment", text="x", webhookUrl="http://127.0.0.1:9/hook")
    assert refused.status_code == 400 and "POST /v1/webhooks/secret" in refused.json()["message"] and not AiJob.objects.exists()
    client.post("/v1/webhooks/secret")
    assert create(client, "sentiment", text="x", webhookUrl="http://127.0.0.1:9/hook").status_code == 201


def test_an_operators_key_sees_its_own_jobs_on_v1(client: APIClient, staff: Any) -> None:
    mine = create(client, "sentiment", text="alice's").json()
    as_staff = bearer(create_api_key(user=staff)[1])
    assert as_staff.get("/v1/jobs").json()["results"] == [] and as_staff.get(f"/v1/jobs/{mine['id']}").status_code == 404


def test_usage_dates_at_the_edge_of_the_calendar(client: APIClient) -> None:
    assert client.get("/v1/usage?to=0001-01-05").json()["from"] == "0001-01-01"
    assert client.get("/v1/usage?from=9999-12-01&to=9999-12-31").json()["jobs"] == 0


def test_redis_down_lets_v1_through_unmetered(client: APIClient, settings: Any) -> None:
    from ai import metering

    metering._limiter.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        answer = client.get("/v1/jobs")
    finally:
        metering._limiter.cache_clear()
    assert answer.status_code == 200 and "X-RateLimit-Limit" not in answer
