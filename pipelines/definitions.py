"""Pipelines declared as data: ordered stages, each a job type on its own queue, some stopping for review."""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.exceptions import PipelineInputError
from pipelines.review import KINDS as REVIEW_KINDS


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline: the job type that does it, its queue, and whether a person reviews its output.

    `review` names how the console shows that output and what the reviewer may edit in place (a kind of
    pipelines.review: "segments", "translation", or the default "json", shown read-only).
    """

    name: str
    queue: str
    task_type: str
    needs_review: bool = False
    premium_only: bool = False
    review: str = "json"

    def __post_init__(self) -> None:
        if self.review not in REVIEW_KINDS:
            raise ValueError(f"stage {self.name}: unknown review kind {self.review!r} (one of {sorted(REVIEW_KINDS)})")

    def applies(self, *, premium: bool) -> bool:
        """Whether a project with this premium flag runs this stage."""
        return premium or not self.premium_only


@dataclass(frozen=True)
class Pipeline:
    """A named, ordered list of stages."""

    name: str
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        """The stage called `name`; PipelineInputError for an unknown one."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise PipelineInputError(f"unknown stage {name!r}", extra={"stage": [f"must be one of {[s.name for s in self.stages]}"]})

    def applicable(self, *, premium: bool) -> tuple[Stage, ...]:
        """The stages a project with this premium flag runs, in order."""
        return tuple(s for s in self.stages if s.applies(premium=premium))

    def first(self, *, premium: bool) -> Stage:
        """The first stage a project runs."""
        return self.applicable(premium=premium)[0]

    def after(self, name: str, *, premium: bool) -> Stage | None:
        """The stage that follows `name` for such a project, or None after the last."""
        stages = self.applicable(premium=premium)
        names = [s.name for s in stages]
        index = names.index(self.stage(name).name)
        return stages[index + 1] if index + 1 < len(stages) else None

    def before(self, name: str, *, premium: bool) -> Stage | None:
        """The stage that precedes `name` for such a project, or None before the first."""
        stages = self.applicable(premium=premium)
        index = [s.name for s in stages].index(self.stage(name).name)
        return stages[index - 1] if index > 0 else None


_PIPELINES: dict[str, Pipeline] = {}


def register(pipeline: Pipeline) -> Pipeline:
    """Declare a pipeline; its stage job types must be registered with @task in pipelines.tasks (or another module)."""
    _PIPELINES[pipeline.name] = pipeline
    return pipeline


def get(name: str) -> Pipeline:
    """The pipeline called `name`."""
    try:
        return _PIPELINES[name]
    except KeyError:
        raise PipelineInputError(f"unknown pipeline {name!r}", extra={"pipeline": [f"must be one of {sorted(_PIPELINES)}"]}) from None


def all_pipelines() -> dict[str, Pipeline]:
    """Every declared pipeline by name."""
    return dict(_PIPELINES)


STT = Stage("STT", queue="stt", task_type="pipelines.stt", needs_review=True, review="segments")
MT = Stage("MT", queue="mt", task_type="pipelines.mt", needs_review=True, review="translation")
TTS = Stage("TTS", queue="tts", task_type="pipelines.tts")
MUXING = Stage("MUXING", queue="muxing", task_type="pipelines.muxing")
LIP_SYNC = Stage("LIP_SYNC", queue="lip-sync", task_type="pipelines.lip_sync", premium_only=True)

DUBBING = register(Pipeline("dubbing", (STT, MT, TTS, MUXING, LIP_SYNC)))
