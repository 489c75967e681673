"""Sentence splitting and word tokenisation that need no downloaded data.

Sentences come from pysbd (rule-based; knows "Dr.", "e.g.", "U.S.", 3.5, quotes),
run on each paragraph (blocks separated by a blank line). Every sentence returned
is a verbatim, stripped substring of the input.
"""

from __future__ import annotations

import re

import pysbd

from ai.processors import ProcessorInputError

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
_WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\d+(?:[.,]\d+)*|\w+(?:['’-]\w+)*")


def require_text(text: object) -> str:
    """Return text unchanged, or raise ProcessorInputError if it is not a non-blank str."""
    if not isinstance(text, str):
        raise ProcessorInputError("text must be a string")
    if not text.strip():
        raise ProcessorInputError("text is empty")
    return text


def paragraphs(text: str) -> list[str]:
    """Split text at blank lines; return the non-blank blocks, stripped."""
    return [block.strip() for block in _PARAGRAPH_BREAK.split(text) if block.strip()]


def _segment(paragraph: str) -> list[str]:
    # A Segmenter keeps the text it works on as state, so each call gets its own.
    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)
    parts = [str(part).strip() for part in segmenter.segment(paragraph)]
    found = [part for part in parts if part]
    # pysbd leaves the text as it is with clean=False; fall back to the whole
    # paragraph if it ever returns something that is not a verbatim piece.
    if all(part in paragraph for part in found):
        return found
    return [paragraph]


def sentences(text: str) -> list[str]:
    """Split text into sentences, in order, each a stripped verbatim piece of text."""
    require_text(text)
    result: list[str] = []
    for paragraph in paragraphs(text):
        result.extend(_segment(paragraph))
    return result


def words(text: str) -> list[str]:
    """Split text into words, keeping U.S., 3.5, 1,200, don't and well-known whole."""
    require_text(text)
    return _WORD.findall(text)
