"""The error fingerprint (jobs.engine.fingerprint): pure, no database. Occurrences of one error share it; another
class, message or top frame does not."""
from __future__ import annotations

import pytest

from jobs.engine.fingerprint import DIGEST_LENGTH, fingerprint, normalise, top_frame

TRACE = '''Traceback (most recent call last):
  File "/srv/app/jobs/engine/runner.py", line 140, in run
    result = func(ctx, payload)
  File "/srv/app/files/tasks.py", line {line}, in {func}
    rows = read(payload["key"])
  File "/usr/lib/python3.11/csv.py", line 110, in __next__
    row = next(self.reader)
  File "/srv/app/.venv/lib/python3.11/site-packages/pandas/io.py", line 7, in parse_row
    raise ValueError(msg)
ValueError: {message}
'''


def trace(message: str = "bad row 17", *, line: int = 42, func: str = "parse") -> str:
    return TRACE.format(line=line, func=func, message=message)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("bad row 17 of 200", "bad row 9 of 31"),
        ("job 3f2c9a0e5b7d4c1e8f6a2b3c4d5e6f70 not found", "job 00aa11bb22cc33dd44ee55ff66aa77bb not found"),
        ("memo 0b7e2a52-1d7e-4f61-9a43-6c3c7e0c7a11 gone", "memo 9a1b2c3d-0000-4f61-9a43-6c3c7e0c7a11 gone"),
        ("no such file: /var/data/alice/memo.wav", "no such file: /srv/tmp/bob/b.ogg"),
        ("storage key files/5/a.wav missing", "storage key files/77/b-2.wav missing"),
        ("KeyError: 'email'", 'KeyError: "name"'),
        ("mail to alice@example.com bounced", "mail to bob.smith+x@corp.example.org bounced"),
        ("GET https://api.example.com/v1/users/42?token=abc failed: 503", "GET https://api.example.com/v2/teams/7 failed: 502"),
        ("timed out after 30.5 s at 2024-05-01T12:00:00Z", "timed out after 2 s at 2025-01-31T23:59:59.120+02:00"),
        ("object at 0x7f3a2b1c has no attribute", "object at 0x10ff00 has no attribute"),
        ("host 10.0.0.12 refused  the\nconnection", "host 192.168.1.1 refused the connection"),
    ],
)
def test_messages_that_differ_only_in_what_varies_share_a_fingerprint(first: str, second: str) -> None:
    assert normalise(first) == normalise(second)
    one = fingerprint(error_class="builtins.ValueError", message=first, traceback=trace(first))
    two = fingerprint(error_class="builtins.ValueError", message=second, traceback=trace(second, line=99))
    assert one == two
    assert len(one.digest) == DIGEST_LENGTH and int(one.digest, 16) >= 0


def test_what_is_kept_reads_well() -> None:
    assert normalise("bad row 17 in batch 3") == "bad row <n> in batch <n>"
    assert normalise("GET https://api.example.com:8443/v1/x?y=1 failed") == "GET https://api.example.com/<path> failed"
    assert normalise("connect to https://example.com failed") == "connect to https://example.com failed"
    assert normalise("can't open /tmp/x/y.wav: sha256 mismatch") == "can't open <path>: sha256 mismatch"  # an apostrophe is no quote
    assert normalise("user 'alice' and/or job abc") == "user '<v>' and/or job abc"


def test_another_class_message_or_top_frame_is_another_group() -> None:
    base = fingerprint(error_class="builtins.ValueError", message="bad row 17", traceback=trace())
    assert fingerprint(error_class="builtins.KeyError", message="bad row 17", traceback=trace()) != base
    assert fingerprint(error_class="builtins.ValueError", message="bad column 17", traceback=trace()) != base
    assert fingerprint(error_class="builtins.ValueError", message="bad row 17", traceback=trace(func="load")) != base
    # The line number is not part of it: an edit elsewhere in the file keeps the group.
    assert fingerprint(error_class="builtins.ValueError", message="bad row 3", traceback=trace(line=7)) == base


def test_the_signature_names_class_message_and_the_jobs_own_innermost_frame() -> None:
    found = fingerprint(error_class="builtins.ValueError", message="bad row 17", traceback=trace())
    assert found.signature == "ValueError: bad row <n> @ tasks.py in parse"  # not csv.py (stdlib) nor pandas (installed)
    assert fingerprint(error_class="jobs.exceptions.JobError", message="worker lost").signature == "JobError: worker lost"


def test_top_frame_of_a_chain_is_the_raised_exceptions_and_falls_back_to_the_innermost() -> None:
    chained = trace() + "\nDuring handling of the above exception, another exception occurred:\n\n" + trace(func="save")
    assert top_frame(chained) == "tasks.py in save"
    only_library = 'Traceback (most recent call last):\n  File "/usr/lib/python3.11/json/decoder.py", line 3, in decode\nValueError: x\n'
    assert top_frame(only_library) == "decoder.py in decode"
    assert top_frame("") == "" and top_frame("no traceback at all") == ""


def test_a_huge_message_gives_a_bounded_signature() -> None:
    found = fingerprint(error_class="x.Boom", message="word " * 10_000, traceback=trace())
    assert len(found.signature) <= 300 and found.signature.endswith("@ tasks.py in parse")
