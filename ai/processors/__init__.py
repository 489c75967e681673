"""Django-free text processors for AI text jobs.

Each submodule (sentiment, summarize, extract, classify, tokens) exposes one
function that takes plain text and returns a JSON-serialisable dict (or int).
Submodules are imported on demand so that loading one does not load every model.
"""

from __future__ import annotations


class ProcessorError(ValueError):
    """Base class of every error raised by the text processors."""


class ProcessorInputError(ProcessorError):
    """The input is unusable: empty text, bad labels, an out-of-range option."""


class ProcessorModelError(ProcessorError):
    """A bundled model or data file could not be found or loaded."""


__all__ = ["ProcessorError", "ProcessorInputError", "ProcessorModelError"]
