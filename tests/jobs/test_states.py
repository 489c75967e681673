"""A table of every allowed and forbidden job status change, checked by `can_move` and on real rows."""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from jobs.engine import states
from jobs.engine.states import Status
from jobs.exceptions import InvalidTransition
from jobs.models import Job, JobEvent
from tests.jobs.engine_support import lock_waiters

W, D, A, C, F, X = Status.WAITING, Status.DELAYED, Status.ACTIVE, Status.COMPLETED, Status.FAILED, Status.CANCELLED

#: Every move the engine may make, and why. Anything not listed is forbidden.
ALLOWED = {
    (None, W): "enqueued to run now",
    (None, D): "enqueued with a delay or run-at time",
    (W, A): "a worker claims it",
    (W, X): "cancelled before it ran",
    (W, F): "failed without running (e.g. it can no longer run)",
    (D, W): "due: the scheduler promotes it",
    (D, X): "cancelled while scheduled or backing off",
    (D, F): "failed while scheduled",
    (A, C): "the task returned",
    (A, F): "permanent error or attempts exhausted",
    (A, D): "retryable error: backing off before the next attempt",
    (A, X): "stopped on an operator's request",
    (A, W): "worker shut down: handed back without counting the attempt",
    (F, W): "an operator retries it",
    (X, W): "an operator retries it",
}
STATUSES = list(Status)
EVERY_MOVE = [(None, t) for t in STATUSES] + list(itertools.product(STATUSES, STATUSES))


def _id(move: tuple[Any, Any]) -> str:
    return f"{move[0] or 'new'}->{move[1]}"


def test_the_table_covers_every_pair_and_names_only_real_statuses() -> None:
    assert len(EVERY_MOVE) == 6 + 36
    assert set(ALLOWED) <= set(EVERY_MOVE)


@pytest.mark.parametrize("move", EVERY_MOVE, ids=_id)
def test_can_move(move: tuple[Any, Any]) -> None:
    current, target = move
    assert states.can_move(current, target) is (move in ALLOWED)


def test_final_statuses_only_leave_by_an_operator_retry() -> None:
    for final in states.FINAL:
        exits = {t for t in STATUSES if states.can_move(final, t)}
        assert exits == (set() if final == C else {W}), final


def test_can_move_rejects_unknown_statuses() -> None:
    with pytest.raises(ValueError):
        states.can_move("waiting", "exploded")
    with pytest.raises(ValueError):
        states.can_move("queued", "active")


def make_job(status: str, **fields: Any) -> Job:
    """A job row already in `status` (a test factory; the engine itself never writes status like this)."""
    return Job.objects.create(queue="default", type="noop", status=status, **fields)


@pytest.mark.django_db
@pytest.mark.parametrize("move", [m for m in EVERY_MOVE if m[0] is not None], ids=_id)
def test_transition_on_a_real_row(move: tuple[str, str]) -> None:
    current, target = move
    job = make_job(current)
    if move in ALLOWED:
        left = states.move(job.id, queue=job.queue, source=current, target=target, message="by the table").previous
        assert left == current
        job.refresh_from_db()
        assert job.status == target
        event = JobEvent.objects.get(job_id=job.id)
        assert (event.from_status, event.to_status, event.message, event.queue) == (current, target, "by the table", "default")
    else:
        with pytest.raises(InvalidTransition) as err:
            states.move(job.id, queue=job.queue, source=current, target=target).previous
        assert (err.value.current, err.value.target) == (current, target)
        job.refresh_from_db()
        assert job.status == current
        assert not JobEvent.objects.filter(job_id=job.id).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("move", [m for m in ALLOWED if m[0] is not None], ids=_id)
def test_an_allowed_move_from_a_status_the_row_is_not_in_is_refused(move: tuple[str, str]) -> None:
    current, target = move
    actual = next(s for s in STATUSES if s not in (current, target))
    job = make_job(actual)
    with pytest.raises(InvalidTransition) as err:
        states.move(job.id, queue=job.queue, source=current, target=target).previous
    assert err.value.current == actual  # the error reports what the row really holds
    job.refresh_from_db()
    assert job.status == actual
    assert not JobEvent.objects.filter(job_id=job.id).exists()


@pytest.mark.django_db
def test_several_sources_record_the_exact_status_left() -> None:
    waiting, delayed, active = make_job(W), make_job(D), make_job(A)
    for job in (waiting, delayed):
        assert states.move(job.id, queue="default", source=(W, D), target=X).previous == job.status
        assert JobEvent.objects.get(job_id=job.id).from_status == job.status
    with pytest.raises(InvalidTransition):
        states.move(active.id, queue="default", source=(W, D), target=X).previous
    assert Job.objects.get(pk=active.id).status == A


@pytest.mark.django_db
def test_a_forbidden_source_is_refused_before_touching_the_row() -> None:
    job = make_job(C)
    with pytest.raises(InvalidTransition):
        states.move(job.id, queue="default", source=(A, C), target=C).previous  # C -> C is not a move
    assert Job.objects.get(pk=job.id).status == C


@pytest.mark.django_db
def test_only_if_guards_the_update() -> None:
    job = make_job(A, worker_name="w1")
    with pytest.raises(InvalidTransition):
        states.move(job.id, queue="default", source=A, target=C, only_if={"worker_name": "w2"}).previous
    assert Job.objects.get(pk=job.id).status == A
    states.move(job.id, queue="default", source=A, target=C, only_if={"worker_name": "w1"}, result={"ok": 1}).previous
    job.refresh_from_db()
    assert (job.status, job.result) == (C, {"ok": 1})


@pytest.mark.django_db
def test_an_unknown_job_is_an_invalid_transition() -> None:
    with pytest.raises(InvalidTransition) as err:
        states.move("nope", queue="default", source=W, target=A).previous
    assert err.value.current is None


@pytest.mark.django_db
def test_transition_many_moves_only_rows_still_in_the_source() -> None:
    due = [make_job(D) for _ in range(3)]
    gone = make_job(X)
    with transaction.atomic():
        moved = states.transition_many([(j.id, j.queue) for j in [*due, gone]], source=D, target=W, message="due")
    assert sorted(moved) == sorted(j.id for j in due)
    assert set(Job.objects.filter(pk__in=moved).values_list("status", flat=True)) == {W}
    assert Job.objects.get(pk=gone.id).status == X
    assert JobEvent.objects.filter(from_status=D, to_status=W).count() == 3
    with pytest.raises(InvalidTransition):
        states.transition_many([(gone.id, gone.queue)], source=C, target=W)


# -- races: two writers, one wins ---------------------------------------------------------------


def _wait(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"source": W, "target": A}, {"source": W, "target": A}),  # two workers claim the same job
        ({"source": W, "target": A}, {"source": (W, D), "target": X}),  # a claim and a cancel
        ({"source": A, "target": C}, {"source": A, "target": F}),  # complete and fail at once
    ],
    ids=["claim-claim", "claim-cancel", "complete-fail"],
)
def test_of_two_concurrent_writers_one_wins_and_the_other_gets_invalid_transition(first: dict[str, Any], second: dict[str, Any]) -> None:
    job = make_job(first["source"] if isinstance(first["source"], str) else W)
    holding = threading.Event()
    release = threading.Event()
    outcome: dict[str, Any] = {}

    def writer_one() -> None:
        try:
            with transaction.atomic():
                states.move(job.id, queue="default", **first).previous
                holding.set()
                release.wait(10)  # keep the row locked until the second writer is queued behind us
            outcome["one"] = "won"
        finally:
            connection.close()

    def writer_two() -> None:
        try:
            states.move(job.id, queue="default", **second).previous
            outcome["two"] = "won"
        except InvalidTransition as exc:
            outcome["two"] = exc
        finally:
            connection.close()

    t1 = threading.Thread(target=writer_one)
    t1.start()
    assert holding.wait(5)
    t2 = threading.Thread(target=writer_two)
    t2.start()
    _wait(lambda: lock_waiters() >= 1)  # the second writer is blocked on the row lock
    release.set()
    t1.join(10)
    t2.join(10)
    assert outcome["one"] == "won"
    assert isinstance(outcome["two"], InvalidTransition)
    assert outcome["two"].current == first["target"]
    job.refresh_from_db()
    assert job.status == first["target"]
    assert list(JobEvent.objects.filter(job_id=job.id).values_list("to_status", flat=True)) == [first["target"]]


@pytest.mark.django_db(transaction=True)
def test_many_workers_claiming_at_once_exactly_one_wins() -> None:
    job = make_job(W)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def claim(n: int) -> None:
        try:
            barrier.wait(5)
            states.move(job.id, queue="default", source=W, target=A, worker_name=f"w{n}").previous
            results.append(n)
        except InvalidTransition:
            results.append(None)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [r for r in results if r is not None]
    assert len(results) == 8 and len(winners) == 1
    job.refresh_from_db()
    assert (job.status, job.worker_name) == (A, f"w{winners[0]}")
    assert JobEvent.objects.filter(job_id=job.id).count() == 1
