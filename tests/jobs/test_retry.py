"""The retry policy is pure: no database, no Redis, only the decision and the delay."""
from __future__ import annotations

import pytest

from jobs.engine.retry import Backoff, Decision, decide
from jobs.exceptions import ErrorKind, JobError, PermanentError

SEED2 = Backoff(delay=5, factor=3)  # seed 2: 5 s, then 15, then 45
SEED345 = Backoff(delay=2, factor=2)  # seeds 3/4/5: 2 s, 4, 8


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [(SEED2, [5, 15, 45, 135]), (SEED345, [2, 4, 8, 16])],
    ids=["base5-factor3", "base2-factor2"],
)
def test_backoff_grows_exponentially_from_the_base_delay(backoff: Backoff, expected: list[float]) -> None:
    assert [backoff.seconds(n) for n in range(1, len(expected) + 1)] == expected


def test_backoff_is_capped_by_max_delay() -> None:
    capped = Backoff(delay=5, factor=3, max_delay=20)
    assert [capped.seconds(n) for n in range(1, 6)] == [5, 15, 20, 20, 20]


def test_backoff_cap_holds_for_huge_retry_numbers() -> None:
    assert Backoff(delay=2, factor=2, max_delay=3600).seconds(500) == 3600


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        SEED2.seconds(0)


@pytest.mark.parametrize(("attempt", "delay"), [(1, 5), (2, 15), (3, 45)])
def test_a_retryable_failure_with_attempts_left_is_retried_after_the_backoff(attempt: int, delay: float) -> None:
    decision = decide(attempts_made=attempt, max_attempts=4, kind=ErrorKind.TRANSIENT, retryable=True, backoff=SEED2)
    assert decision == Decision(retry=True, delay=delay)


@pytest.mark.parametrize("kind", [ErrorKind.PERMANENT, ErrorKind.VALIDATION])
def test_permanent_errors_are_never_retried_even_with_attempts_left(kind: ErrorKind) -> None:
    decision = decide(attempts_made=1, max_attempts=10, kind=kind, retryable=False, backoff=SEED2)
    assert not decision.retry
    assert decision.delay == 0
    assert kind.value in decision.reason


@pytest.mark.parametrize(("attempt", "max_attempts"), [(3, 3), (1, 1), (5, 3)])
def test_exhausted_attempts_are_not_retried(attempt: int, max_attempts: int) -> None:
    decision = decide(attempts_made=attempt, max_attempts=max_attempts, kind=ErrorKind.TRANSIENT, retryable=True, backoff=SEED345)
    assert not decision.retry
    assert "exhausted" in decision.reason


def test_the_last_allowed_attempt_is_still_retried_before_it() -> None:
    assert decide(attempts_made=2, max_attempts=3, kind=ErrorKind.RESOURCE, retryable=True, backoff=SEED345) == Decision(retry=True, delay=4)


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (JobError("x"), ErrorKind.TRANSIENT, True),
        (JobError("x", kind="RESOURCE"), ErrorKind.RESOURCE, True),
        (JobError("x", kind=ErrorKind.TIMEOUT), ErrorKind.TIMEOUT, True),
        (JobError("x", kind=ErrorKind.VALIDATION), ErrorKind.VALIDATION, False),
        (JobError("x", kind=ErrorKind.PERMANENT), ErrorKind.PERMANENT, False),
        (JobError("x", kind=ErrorKind.TRANSIENT, retryable=False), ErrorKind.TRANSIENT, False),
        (JobError("x", kind=ErrorKind.PERMANENT, retryable=True), ErrorKind.PERMANENT, True),
        (PermanentError("x"), ErrorKind.PERMANENT, False),
        (PermanentError("x", kind=ErrorKind.VALIDATION), ErrorKind.VALIDATION, False),
    ],
)
def test_job_errors_carry_their_kind_and_retryability(error: JobError, kind: ErrorKind, retryable: bool) -> None:
    assert (error.kind, error.retryable) == (kind, retryable)


def test_unknown_exceptions_are_retryable_transient_errors() -> None:
    from jobs.engine.lifecycle import describe

    kind, retryable, cls_path, message = describe(RuntimeError("boom"))
    assert (kind, retryable, cls_path, message) == (ErrorKind.TRANSIENT, True, "builtins.RuntimeError", "boom")
