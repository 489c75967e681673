"""Seed 4's AI text jobs: create behind an API key, run a processor on a worker, record usage, send webhooks.

An `AiJob` row is what `/v1/jobs` shows and outlives its engine job (the `ai-jobs` queue keeps
completed jobs an hour). The worker writes the output, the token counts, the cost, the `Usage` row
and its day's rollup in one transaction; a rerun after a crash finds the job done and records
nothing twice. The engine's hook moves the row through the other states and, once a job has
ended, queues its webhooks (at least once per change, and `webhooks.send` makes one delivery of it).
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from ai import metering, processors
from ai.processors import text as text_processing
from ai.exceptions import AiInputError
from ai.models import AiJob, Usage, UsageDay
from ai.processors import classify, extract, sentiment, summarize, tokens
from jobs import access
from jobs import services as job_services
from jobs.access import User, Viewer
from jobs.exceptions import ErrorKind, NotFound, PermanentError
from jobs.models import ApiKey
from jobs.services import JobChange, JobSpec
from jobs.tasks import JobContext
from pipelines import provider
from webhooks import services as webhooks

QUEUE = "ai-jobs"
Type = AiJob.Type
State = AiJob.Status
#: `/v1/jobs/<kind>` and the engine's job type of each kind.
KINDS: dict[str, str] = {t.value.lower(): t.value for t in Type}
FINAL = (State.SUCCEEDED, State.FAILED, State.CANCELLED)
#: Sentences in a summary when the request does not say.
SUMMARY_SENTENCES = 3


def engine_type(kind: str) -> str:
    return f"ai-{kind.lower()}"


# -- creating -----------------------------------------------------------------------------------


def create(*, owner: User, api_key: ApiKey | None, kind: str, data: dict[str, Any]) -> tuple[AiJob, bool]:
    """Check the request, then store the job and enqueue its engine job together; (job, created).

    `data` holds `text` and the kind's options (maxSentences, labels, targetLanguage,
    sourceLanguage), and `priority`, `idempotencyKey` and `webhookUrl`. The same idempotency key
    from the same owner returns the first job. Nothing is stored or enqueued for bad input (400) or
    an exhausted quota (402).
    """
    if kind not in KINDS:
        raise AiInputError(f"unknown job type {kind!r}", extra={"type": [f"one of {', '.join(KINDS)}"]})
    key = data.get("idempotencyKey")
    if key == "":
        raise AiInputError("idempotencyKey is empty", extra={"idempotencyKey": ["1 to 150 characters, or leave it out"]})
    if key is not None:
        found = AiJob.objects.filter(owner=owner, idempotency_key=key).first()
        if found is not None:
            return found, False
    job_input = _input(kind, data)
    webhook_url = webhooks.checked_url(data["webhookUrl"], field="webhookUrl") if data.get("webhookUrl") else ""
    tokens_in = tokens.count(job_input["text"])
    if api_key is not None:
        metering.check_quota(api_key, tokens_in)
    row = AiJob(owner=owner, api_key=api_key, type=KINDS[kind], input=job_input, tokens_in=tokens_in, idempotency_key=key, webhook_url=webhook_url)
    try:
        with transaction.atomic():
            row.save(force_insert=True)
            job, _ = job_services.enqueue(JobSpec(type=engine_type(kind), payload={"aiJobId": row.id}, owner=owner, priority=data.get("priority"), group_ref=row.id))
            AiJob.objects.filter(pk=row.pk).update(job_id=job.id)
    except IntegrityError:
        if key is None:
            raise
        return AiJob.objects.get(owner=owner, idempotency_key=key), False  # the same key sent twice at once
    row.job_id = job.id
    return row, True


def _input(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The job's input as stored and shown: the text and the options of its kind, checked by the processor's rules."""
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise AiInputError("text is required", extra={"text": ["a non-empty string"]})
    limit = settings.AI_MAX_TEXT_CHARS
    if len(text) > limit:
        raise AiInputError(f"text is {len(text)} characters, over the limit of {limit}", extra={"text": [f"at most {limit} characters"], "limit": limit})
    job_input: dict[str, Any] = {"text": text}
    if kind == "summarize":
        job_input["maxSentences"] = data.get("maxSentences") or SUMMARY_SENTENCES
    elif kind == "classify" and data.get("labels") is not None:
        labels = data["labels"]
        if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
            labels = _distinct(labels)
        try:
            job_input["labels"] = classify.check_labels(labels)
        except processors.ProcessorInputError as exc:
            raise AiInputError(str(exc), extra={"labels": [str(exc)]}) from None
    elif kind == "translate":
        target = data.get("targetLanguage")
        if not isinstance(target, str) or not target.strip():
            raise AiInputError("targetLanguage is required for translate", extra={"targetLanguage": ["a language code, e.g. de"]})
        job_input["targetLanguage"] = target.strip()
        if data.get("sourceLanguage"):
            job_input["sourceLanguage"] = str(data["sourceLanguage"]).strip()
    return job_input


def _distinct(labels: list[str]) -> list[str]:
    """The labels in order, each once (compared without case and surrounding spaces)."""
    seen: set[str] = set()
    return [x for x in labels if not (x.strip().casefold() in seen or seen.add(x.strip().casefold()))]  # type: ignore[func-returns-value]


# -- reading ------------------------------------------------------------------------------------


def jobs_of(*, user: Viewer) -> QuerySet[AiJob]:
    """The caller's AI jobs (an operator: everyone's), newest first."""
    return access.visible(AiJob.objects.all(), user).order_by("-created_at", "-id")


def get(job_id: str, *, user: Viewer) -> AiJob:
    found = jobs_of(user=user).filter(pk=job_id).first()
    if found is None:
        raise NotFound(f"job {job_id} not found")
    return found


def public(row: AiJob) -> dict[str, Any]:
    """Seed 4's job body: {id, status, type, input, output, tokenUsed, costCents, createdAt, completedAt} and a few more."""
    return {
        "id": row.id, "status": row.status, "type": row.type, "input": row.input, "output": row.output,
        "tokenUsed": row.tokens, "tokensIn": row.tokens_in, "tokensOut": row.tokens_out, "costCents": row.cost_cents,
        "error": row.error or None, "createdAt": _iso(row.created_at), "startedAt": _iso(row.started_at), "completedAt": _iso(row.completed_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def usage(*, api_key: ApiKey, start: datetime, end: datetime) -> dict[str, Any]:
    """A key's usage between `start` and `end`: totals, per type and per day (from the rollups)."""
    days = UsageDay.objects.filter(api_key=api_key, day__gte=start.date(), day__lte=end.date())
    per_day: dict[str, dict[str, int]] = {}
    per_type: dict[str, dict[str, int]] = {}
    for d in days.order_by("day", "type"):
        for bucket in (per_day.setdefault(d.day.isoformat(), _zero()), per_type.setdefault(d.type, _zero())):
            bucket["jobs"] += d.jobs
            bucket["tokens"] += d.tokens
            bucket["costCents"] += d.cost_cents
    total = days.aggregate(jobs=Sum("jobs"), tokens=Sum("tokens"), cost=Sum("cost_cents"))
    return {
        "from": start.date().isoformat(), "to": end.date().isoformat(),
        "jobs": total["jobs"] or 0, "tokens": total["tokens"] or 0, "costCents": total["cost"] or 0,
        "byType": per_type, "byDay": [{"day": day, **v} for day, v in per_day.items()],
        "monthTokens": metering.tokens_this_month(api_key),
        "monthlyQuota": metering.policy(api_key).monthly_token_quota or settings.AI_MONTHLY_TOKEN_QUOTA or None,
    }


def _zero() -> dict[str, int]:
    return {"jobs": 0, "tokens": 0, "costCents": 0}


# -- running (worker side) ----------------------------------------------------------------------


def run(ctx: JobContext, *, ai_job_id: str) -> dict[str, Any]:
    """Run the job's processor; store output, tokens, cost and usage in one transaction."""
    row = AiJob.objects.filter(pk=ai_job_id).first()
    if row is None:
        raise PermanentError(f"AI job {ai_job_id} no longer exists", kind=ErrorKind.VALIDATION)
    if row.status == State.SUCCEEDED:  # a rerun after the commit below
        return public(row)
    now = timezone.now()
    AiJob.objects.filter(pk=row.pk).update(status=State.PROCESSING, started_at=row.started_at or now)
    try:
        output = PROCESS[row.type](row.input)
    except processors.ProcessorInputError as exc:
        raise PermanentError(f"{row.type.lower()}: {exc}", kind=ErrorKind.VALIDATION) from exc
    ctx.progress(90, "recording usage")
    tokens_out = tokens.count(output_text(row.type, output))
    cost = cost_cents(row.type, row.tokens_in + tokens_out)
    done = timezone.now()
    with transaction.atomic():
        AiJob.objects.filter(pk=row.pk).update(
            output=output, tokens_out=tokens_out, cost_cents=cost, status=State.SUCCEEDED, error="", started_at=row.started_at or now, completed_at=done,
        )
        _record_usage(row, tokens_out=tokens_out, cost=cost, at=done)
    row.refresh_from_db()
    return public(row)


def _translate(job_input: dict[str, Any]) -> dict[str, Any]:
    """Through the provider (AI_PROVIDER_URL), sentence by sentence, in the pipelines' MT contract."""
    if not settings.AI_PROVIDER_URL:
        raise PermanentError("no translation provider configured: set AI_PROVIDER_URL to an http(s) endpoint", kind=ErrorKind.VALIDATION)
    parts = text_processing.sentences(job_input["text"])
    body = {"segments": [{"index": i, "text": s} for i, s in enumerate(parts)], "source": job_input.get("sourceLanguage", "auto"), "target": job_input["targetLanguage"]}
    answer = provider.post(settings.AI_PROVIDER_URL, {"task": "translate", **body}, timeout=settings.AI_PROVIDER_TIMEOUT, task="translate", setting="AI_PROVIDER_URL")
    segments = answer.get("segments")
    if not isinstance(segments, list) or len(segments) != len(parts) or not all(isinstance(s, dict) and isinstance(s.get("text"), str) for s in segments):
        raise PermanentError(f"the provider's translation does not have {len(parts)} segments with text")
    translation = " ".join(s["text"].strip() for s in segments)
    return {"translation": translation, "targetLanguage": job_input["targetLanguage"], "sourceLanguage": answer.get("source") or job_input.get("sourceLanguage")}


PROCESS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    Type.SUMMARIZE: lambda i: summarize.summarize(i["text"], max_sentences=int(i.get("maxSentences") or SUMMARY_SENTENCES)),
    Type.CLASSIFY: lambda i: classify.classify(i["text"], i.get("labels")),
    Type.SENTIMENT: lambda i: sentiment.analyze(i["text"]),
    Type.EXTRACT: lambda i: extract.extract(i["text"]),
    Type.TRANSLATE: _translate,
}


def output_text(kind: str, output: dict[str, Any]) -> str:
    """What output tokens are counted on: the summary or translation text, else the compact JSON of the output."""
    if kind == Type.SUMMARIZE:
        return str(output.get("summary", ""))
    if kind == Type.TRANSLATE:
        return str(output.get("translation", ""))
    return json.dumps(output, separators=(",", ":"), ensure_ascii=False)


def cost_cents(kind: str, n_tokens: int) -> int:
    """Cents for `n_tokens` of a kind, at AI_COST_CENTS_PER_1K_TOKENS, rounded up to a whole cent."""
    rate = Decimal(str(settings.AI_COST_CENTS_PER_1K_TOKENS.get(kind, 0)))
    return int(math.ceil(rate * n_tokens / 1000))


def _record_usage(row: AiJob, *, tokens_out: int, cost: int, at: datetime) -> None:
    _, created = Usage.objects.get_or_create(
        ai_job=row, defaults=dict(owner_id=row.owner_id, api_key_id=row.api_key_id, type=row.type, tokens_in=row.tokens_in, tokens_out=tokens_out, cost_cents=cost, at=at),
    )
    if not created or row.api_key_id is None:
        return
    day = at.astimezone(dt_timezone.utc).date()
    n = row.tokens_in + tokens_out
    rollup = UsageDay.objects.filter(api_key_id=row.api_key_id, day=day, type=row.type)
    if rollup.update(jobs=F("jobs") + 1, tokens=F("tokens") + n, cost_cents=F("cost_cents") + cost):
        return
    try:
        with transaction.atomic():
            UsageDay.objects.create(api_key_id=row.api_key_id, owner_id=row.owner_id, day=day, type=row.type, jobs=1, tokens=n, cost_cents=cost)
    except IntegrityError:  # another worker made the day's row first
        rollup.update(jobs=F("jobs") + 1, tokens=F("tokens") + n, cost_cents=F("cost_cents") + cost)


# -- following the engine job -------------------------------------------------------------------


WEBHOOK_EVENTS = {"completed": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}


def record_outcome(change: JobChange) -> None:
    """The engine's hook: the AI job's status follows its engine job; an ended job sends its webhooks."""
    if not change.type.startswith("ai-") or not change.group_ref:
        return
    rows = AiJob.objects.filter(pk=change.group_ref)
    now = change.at or timezone.now()
    if change.event == "started":
        rows.filter(status=State.QUEUED).update(status=State.PROCESSING, started_at=now)
    elif change.event == "retrying":
        rows.filter(status=State.PROCESSING).update(status=State.QUEUED)
    elif change.event in ("created", "retried", "waiting"):
        rows.exclude(status=State.SUCCEEDED).update(status=State.QUEUED, error="", completed_at=None)
    elif change.event == "failed":
        rows.exclude(status__in=FINAL).update(status=State.FAILED, error=str(change.data.get("error") or "failed")[:5000], completed_at=now)
    elif change.event == "cancelled":
        rows.exclude(status__in=FINAL).update(status=State.CANCELLED, completed_at=now)
    if change.event in WEBHOOK_EVENTS:
        row = rows.first()
        if row is not None:
            webhooks.send(
                event=WEBHOOK_EVENTS[change.event], data=public(row), owner_id=row.owner_id, api_key_id=row.api_key_id, url=row.webhook_url or None,
                source=f"ai:{row.id}:{change.event_id or change.job_id + ':' + change.event}",
            )


__all__ = ["KINDS", "QUEUE", "cost_cents", "create", "engine_type", "get", "jobs_of", "output_text", "public", "record_outcome", "run", "usage"]
