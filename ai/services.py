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
from django.db.models import F
from django.utils import timezone

from ai import metering, processors, selectors
from ai.processors import text as text_processing
from ai.exceptions import AiInputError, IdempotencyConflict
from ai.models import AiJob, Usage, UsageDay
from ai.processors import classify, extract, sentiment, summarize, tokens
from jobs import services as job_services
from jobs.access import User
from jobs.exceptions import ErrorKind, PermanentError
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
    sourceLanguage), and `priority`, `idempotencyKey` and `webhookUrl`. Nothing is stored or
    enqueued for bad input (400), an exhausted quota (402) or a key reused for another request
    (409); the same key with the same request returns the first job.
    """
    refuse_unknown(kind)
    key = data.get("idempotencyKey")
    if key == "":
        raise AiInputError("idempotencyKey is empty", extra={"idempotencyKey": ["1 to 150 characters, or leave it out"]})
    job_input = _input(kind, data)
    webhook_url = _webhook_url(owner, data.get("webhookUrl"))
    if key is not None and (found := AiJob.objects.filter(owner=owner, idempotency_key=key).first()) is not None:
        return _same_request(found, kind, job_input), False
    tokens_in = tokens.count(job_input["text"])
    row = AiJob(owner=owner, api_key=api_key, type=KINDS[kind], input=job_input, tokens_in=tokens_in, idempotency_key=key, webhook_url=webhook_url)
    try:
        with transaction.atomic():
            if api_key is not None:
                metering.check_quota(api_key, tokens_in)  # locks the key's row: one key's checks and inserts take turns
            row.save(force_insert=True)
            job, _ = job_services.enqueue(JobSpec(type=engine_type(kind), payload={"aiJobId": row.id}, owner=owner, priority=data.get("priority"), group_ref=row.id))
            AiJob.objects.filter(pk=row.pk).update(job_id=job.id)
    except IntegrityError:
        if key is None:
            raise
        return _same_request(AiJob.objects.get(owner=owner, idempotency_key=key), kind, job_input), False  # sent twice at once
    row.job_id = job.id
    return row, True


def refuse_unknown(kind: str) -> None:
    """AiInputError (400) naming the kinds, unless `kind` is one."""
    if kind not in KINDS:
        raise AiInputError(f"unknown job type {kind!r}", extra={"type": [f"one of {', '.join(KINDS)}"]})


def _same_request(found: AiJob, kind: str, job_input: dict[str, Any]) -> AiJob:
    if (found.type, found.input) != (KINDS[kind], job_input):
        raise IdempotencyConflict(
            "this idempotencyKey was used for another request", extra={"idempotencyKey": ["already used for a different type or input"], "jobId": found.id},
        )
    return found


def _webhook_url(owner: User, url: str | None) -> str:
    """A job's own webhookUrl, checked; it is signed with the owner's secret, which must exist (and so was shown)."""
    if not url:
        return ""
    webhooks.checked_url(url, field="webhookUrl")
    if not webhooks.has_secret(owner):
        raise AiInputError(
            "create your webhook signing secret first (POST /v1/webhooks/secret): deliveries to webhookUrl are signed with it",
            extra={"webhookUrl": ["no signing secret yet: POST /v1/webhooks/secret"]},
        )
    return url


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


# -- running (worker side) ----------------------------------------------------------------------


def run(ctx: JobContext, *, ai_job_id: str) -> dict[str, Any]:
    """Run the job's processor; store output, tokens, cost and usage in one transaction."""
    row = AiJob.objects.filter(pk=ai_job_id).first()
    if row is None:
        raise PermanentError(f"AI job {ai_job_id} no longer exists", kind=ErrorKind.VALIDATION)
    if row.status == State.SUCCEEDED:  # a rerun after the commit below
        return _result(row)
    now = timezone.now()
    AiJob.objects.filter(pk=row.pk).exclude(status=State.SUCCEEDED).update(status=State.PROCESSING, started_at=row.started_at or now)
    try:
        output = PROCESS[row.type](row.input)
    except processors.ProcessorInputError as exc:
        raise PermanentError(f"{row.type.lower()}: {exc}", kind=ErrorKind.VALIDATION) from exc
    ctx.progress(90, "recording usage")
    tokens_out = tokens.count(output_text(row.type, output))
    cost = cost_cents(row.type, row.tokens_in + tokens_out)
    ctx.check_cancelled()  # a cancel asked for while the processor ran: not billed
    with transaction.atomic():
        AiJob.objects.filter(pk=row.pk).exclude(status=State.SUCCEEDED).update(
            output=output, tokens_out=tokens_out, cost_cents=cost, status=State.SUCCEEDED, error="", started_at=row.started_at or now, completed_at=timezone.now(),
        )
        row.refresh_from_db()
        _record_usage(row, tokens_out=row.tokens_out, cost=row.cost_cents, at=row.completed_at or now)
    return _result(row)


def _result(row: AiJob) -> dict[str, Any]:
    """What the engine job keeps as its result: a pointer to the AI job, not its text again."""
    return {"aiJobId": row.id, "status": row.status, "tokenUsed": row.tokens, "costCents": row.cost_cents}


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


#: The webhook told when a job has ended, by the AI job's status (not the engine event: a job whose
#: output was committed before a late cancel or timeout is SUCCEEDED, billed, and told so).
WEBHOOK_EVENTS = {State.SUCCEEDED: "job.succeeded", State.FAILED: "job.failed", State.CANCELLED: "job.cancelled"}


def record_outcome(change: JobChange) -> None:
    """The engine's hook: the AI job's status follows the engine job that carries it; an ended job sends its webhooks."""
    if not change.type.startswith("ai-") or not change.group_ref:
        return
    rows = AiJob.objects.filter(pk=change.group_ref)
    if change.event in ("created", "retried"):  # a new engine job (a dead-letter retry) or a retried one carries it now
        rows.exclude(status=State.SUCCEEDED).update(job_id=change.job_id, status=State.QUEUED, error="", completed_at=None)
        return
    mine = rows.filter(job_id=change.job_id)  # a late change of an engine job that no longer carries it is ignored
    now = change.at or timezone.now()
    if change.event == "started":
        mine.filter(status=State.QUEUED).update(status=State.PROCESSING, started_at=now)
    elif change.event in ("retrying", "waiting"):
        mine.filter(status=State.PROCESSING).update(status=State.QUEUED)
    elif change.event == "failed":
        mine.exclude(status__in=FINAL).update(status=State.FAILED, error=str(change.data.get("error") or "failed")[:5000], completed_at=now)
    elif change.event == "cancelled":
        mine.exclude(status__in=FINAL).update(status=State.CANCELLED, completed_at=now)
    if change.event in ("completed", "failed", "cancelled"):
        row = mine.first()
        if row is not None and row.status in WEBHOOK_EVENTS:
            webhooks.send(
                event=WEBHOOK_EVENTS[State(row.status)], data=selectors.public(row), owner_id=row.owner_id, api_key_id=row.api_key_id,
                url=row.webhook_url or None, source=f"ai:{row.id}:{change.job_id}",
            )


__all__ = ["KINDS", "QUEUE", "cost_cents", "create", "engine_type", "output_text", "record_outcome", "refuse_unknown", "run"]
