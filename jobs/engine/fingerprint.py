"""A failure's fingerprint, as Sentry groups issues: which dead letters are the same error.

Pure (no Django): the exception class, its message with the parts that vary between occurrences
replaced by placeholders (numbers, ids, quoted values, e-mail addresses, URLs' paths, file paths,
timestamps), and the innermost frame of the job's own code (file basename and function, no line
number, so an edit elsewhere in the file keeps the group). The digest is what rows are grouped by;
the signature is what an operator reads: `ValueError: bad row <n> @ tasks.py in parse`.

Changing a rule here changes the digests of new letters only: letters already stored keep theirs
(0007_deadletter_fingerprint computed them once), so a change splits groups until those are resolved.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable

#: Hex characters of a digest: 64 bits, plenty for the few hundred groups a platform has open.
DIGEST_LENGTH = 16
#: Longest message part of a signature (the digest covers the whole normalised message).
SIGNATURE_MESSAGE = 200
#: Longest signature (DeadLetter.signature's length).
SIGNATURE_LENGTH = 300
#: Characters of a message read at all: a message holding a whole document groups by its start.
MESSAGE_READ = 4000


def _url(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}{'/<path>' if match[3] else ''}"


# Applied in order: an earlier rule's placeholder is not taken apart by a later one.
_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # Quoted values ('user_42', "a.wav"): the opening quote must not follow a letter (can't, don't).
    (re.compile(r"""(?<![\w'"])(['"])[^'"\n]{0,500}?\1(?![\w'"])"""), "'<v>'"),
    # Timestamps before numbers: 2024-05-01T12:00:00.123+02:00 is one value, not six.
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"), "<ts>"),
    # A URL keeps its scheme and host (which service failed matters), not its path, query or credentials.
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/\s:@]+(?::[^/\s@]*)?@)?([^/\s:?#'\"]+)(?::\d+)?([^\s'\"<>)]*)"), _url),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<id>"),
    # File paths: absolute (/x, ~/x, ./x, C:\x), or relative with at least two separators (files/<id>/a.wav).
    (re.compile(r"(?<![\w/<>.~-])(?:[A-Za-z]:\\|~/|\.{1,2}/|/)[\w.@+-]+(?:[/\\][\w.@+-]+)*/?"), "<path>"),
    (re.compile(r"(?<![\w/<>.-])[\w.@+-]+(?:/[\w.@+<>-]+){2,}"), "<path>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<ip>"),
    # Hex ids (job ids, hashes, 0x addresses) and long tokens mixing letters and digits (ch_3Lk9x...).
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<id>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<id>"),
    (re.compile(r"\b(?=(?:\w*?\d){3})(?=\w*[A-Za-z])\w{16,}\b"), "<id>"),
    # Numbers not glued to a letter before them (sha256 and h264 stay as they are; worker-12 is worker-<n>).
    (re.compile(r"(?<![A-Za-z\d])\d+(?:[.,:]\d+)*"), "<n>"),
]
_SPACES = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[/\\]")
#: `  File "/srv/app/files/tasks.py", line 42, in parse`
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+, in (?P<func>\S+)', re.MULTILINE)
_TRACEBACK_START = "Traceback (most recent call last):"
#: Frames that are not the job's own code: the standard library, installed packages, the engine's machinery.
_NOT_OWN = re.compile(r"(^<)|[/\\](site|dist)-packages[/\\]|[/\\]lib[/\\]python\d[\d.]*[/\\]|[/\\]jobs[/\\]engine[/\\]")


@dataclass(frozen=True)
class Fingerprint:
    """What groups a failure (`digest`, short hex) and how an operator reads it (`signature`)."""

    digest: str
    signature: str


def normalise(message: str) -> str:
    """The message with what varies between occurrences replaced by placeholders, whitespace collapsed."""
    text = _SPACES.sub(" ", message[:MESSAGE_READ]).strip()
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def top_frame(traceback: str) -> str:
    """`tasks.py in parse`: the innermost frame of the job's own code in the last traceback of `traceback`
    (of a chain, the exception that was raised), else its innermost frame; "" without one."""
    start = traceback.rfind(_TRACEBACK_START)
    frames = [(m["path"], m["func"]) for m in _FRAME.finditer(traceback[start if start >= 0 else 0:])]
    if not frames:
        return ""
    own = [f for f in frames if not _NOT_OWN.search(f[0])]
    path, func = (own or frames)[-1]
    return f"{_SEPARATORS.split(path)[-1]} in {func}"


def class_name(error_class: str) -> str:
    """`ValueError` of `builtins.ValueError`; "Error" when none was recorded."""
    return error_class.rsplit(".", 1)[-1] or "Error"


def fingerprint(*, error_class: str, message: str, traceback: str = "") -> Fingerprint:
    """The fingerprint of a failure from what a job stores of it: class path, message and traceback text."""
    text = normalise(message)
    frame = top_frame(traceback)
    key = "\x1f".join((error_class or "", text, frame))
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_LENGTH]
    shown = text if len(text) <= SIGNATURE_MESSAGE else text[: SIGNATURE_MESSAGE - 1] + "…"
    signature = f"{class_name(error_class)}: {shown}" if shown else class_name(error_class)
    signature = f"{signature} @ {frame}" if frame else signature
    return Fingerprint(digest=digest, signature=signature if len(signature) <= SIGNATURE_LENGTH else signature[: SIGNATURE_LENGTH - 1] + "…")
