"""How a stage's output is shown to its reviewer and edited in place: the review kinds a stage declares.

A stage names its kind in its definition (`Stage(review="segments")`, pipelines.definitions); the live
project page renders the kind's template with `context()`, and an approval with edits goes through
`edited()`, which checks the reviewer's payload against the output and returns the output as edited.
Pure functions over plain JSON: no database, no requests.

| kind | shows | edits |
|---|---|---|
| `json` (default) | the output as indented JSON | none: approve or reject as it is |
| `segments` | timed segments, each with a play button over the source audio | each segment's text |
| `translation` | the input's and the output's segments side by side | each target segment's text |
"""
from __future__ import annotations

import copy
import json
import math
from typing import Any, ClassVar

from pipelines.exceptions import ReviewEditRefused

MAX_EDITS_CHARS = 1_000_000  # the raw JSON of one edit, as the console posts it
MAX_SEGMENT_CHARS = 5_000  # one segment's text; Whisper's segments are at most about 30 s of speech
JSON_PREVIEW_CHARS = 50_000  # of an output shown as JSON
TIME_TOLERANCE = 1e-6  # seconds: times come back through JSON exactly; this only absorbs float noise


def parse_edits(raw: str) -> Any:
    """The console's posted edits (JSON text) as data; ReviewEditRefused for text that is too long or not JSON."""
    if len(raw) > MAX_EDITS_CHARS:
        raise ReviewEditRefused("the edits are too large", extra={"output": [f"at most {MAX_EDITS_CHARS} characters"]})
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ReviewEditRefused("the edits are not valid JSON", extra={"output": [str(exc)]}) from None


def span(seconds: float) -> str:
    """A time as m:ss.s for the reviewer."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def _segments_of(data: Any) -> list[dict[str, Any]]:
    segments = data.get("segments") if isinstance(data, dict) else None
    return [s for s in segments if isinstance(s, dict)] if isinstance(segments, list) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class ReviewKind:
    """The default kind: the output as read-only JSON; approving takes it as it is."""

    name: ClassVar[str] = "json"
    editable: ClassVar[bool] = False  # whether the reviewer edits the output in place
    playable: ClassVar[bool] = False  # whether the panel plays spans of the project's source audio

    @property
    def template(self) -> str:
        """The panel template that shows this kind (admin/pipelines/review/<name>.html)."""
        return f"admin/pipelines/review/{self.name}.html"

    def context(self, *, output: Any, input: Any) -> dict[str, Any]:
        """What the kind's template shows of a run's output (and input)."""
        text = json.dumps(output, indent=2, ensure_ascii=False, sort_keys=True)
        return {"json": text[:JSON_PREVIEW_CHARS] + ("\n…" if len(text) > JSON_PREVIEW_CHARS else "")}

    def edited(self, output: Any, edits: Any) -> dict[str, Any]:
        """`output` as the reviewer edited it; ReviewEditRefused when the edits do not fit this kind or this output."""
        raise ReviewEditRefused(f"a {self.name} review is approved as it is; it takes no edits", extra={"output": ["not editable"]})


class SegmentsReview(ReviewKind):
    """Timed segments ({"segments": [{"start", "end", "text"}]}): the reviewer plays each span and corrects its text."""

    name = "segments"
    editable = True
    playable = True

    def context(self, *, output: Any, input: Any) -> dict[str, Any]:
        rows = []
        for index, segment in enumerate(_segments_of(output)):
            start, end = _number(segment.get("start")) or 0.0, _number(segment.get("end")) or 0.0
            rows.append({"index": index, "number": index + 1, "start": repr(start), "end": repr(end),
                         "span": f"{span(start)}–{span(end)}", "text": str(segment.get("text", ""))})
        return {"rows": rows}

    def edited(self, output: Any, edits: Any) -> dict[str, Any]:
        """The output with each segment's text replaced by the edit at the same index, times and count unchanged."""
        if not isinstance(output, dict):
            raise ReviewEditRefused("this output has no segments to edit", extra={"output": ["not a JSON object"]})
        original = _segments_of(output)
        proposed = edits.get("segments") if isinstance(edits, dict) else None
        if not isinstance(proposed, list):
            raise ReviewEditRefused("the edits have no list of segments", extra={"segments": ["a list of {start, end, text}, one per segment"]})
        if len(proposed) != len(original):
            raise ReviewEditRefused(f"the edits have {len(proposed)} segments; the output has {len(original)}",
                                    extra={"segments": [f"exactly {len(original)} segments, in order"]})
        problems: dict[str, list[str]] = {}
        for index, (was, now) in enumerate(zip(original, proposed)):
            problems.update(_segment_problems(index, was, now))
        if problems:
            raise ReviewEditRefused(f"{len(problems)} segment field(s) refused", extra=problems)
        result = copy.deepcopy(output)
        segments = _segments_of(result)
        for segment, now in zip(segments, proposed):
            segment["text"] = now["text"]
        if isinstance(result.get("text"), str):  # a transcript's whole text is its segments' (transcription.engine)
            result["text"] = " ".join(t for t in (str(s.get("text", "")).strip() for s in segments) if t)
        return result


def _segment_problems(index: int, was: dict[str, Any], now: Any) -> dict[str, list[str]]:
    """What is wrong with one edited segment: its times must be the output's, its text a string of bounded size."""
    where = f"segments.{index}"
    if not isinstance(now, dict):
        return {where: ["must be an object {start, end, text}"]}
    problems: dict[str, list[str]] = {}
    for field in ("start", "end"):
        given, expected = _number(now.get(field)), _number(was.get(field))
        if given is None or expected is None or not math.isclose(given, expected, abs_tol=TIME_TOLERANCE):
            problems[f"{where}.{field}"] = [f"must stay {was.get(field)!r}: times are not edited"]
    text = now.get("text")
    if not isinstance(text, str):
        problems[f"{where}.text"] = ["must be a string"]
    elif len(text) > MAX_SEGMENT_CHARS:
        problems[f"{where}.text"] = [f"at most {MAX_SEGMENT_CHARS} characters"]
    elif "\x00" in text:
        problems[f"{where}.text"] = ["must not contain NUL"]
    return problems


class TranslationReview(SegmentsReview):
    """A translation of segments: the input's (source) and the output's (target) texts side by side; the target is edited."""

    name = "translation"

    def context(self, *, output: Any, input: Any) -> dict[str, Any]:
        rows = super().context(output=output, input=input)["rows"]
        sources = _segments_of(input)
        for row in rows:
            source = sources[row["index"]] if row["index"] < len(sources) else {}
            row["source"] = str(source.get("text", ""))
        source_language = input.get("language", "") if isinstance(input, dict) else ""
        target_language = output.get("language", "") if isinstance(output, dict) else ""
        return {"rows": rows, "source_language": source_language, "target_language": target_language}


#: Every review kind by name; a stage's `review` must name one of them.
KINDS: dict[str, ReviewKind] = {kind.name: kind for kind in (ReviewKind(), SegmentsReview(), TranslationReview())}


def kind(name: str) -> ReviewKind:
    """The review kind called `name` (definitions check the names when a stage is declared)."""
    return KINDS[name]
