"""Zero-shot topic classification with WordLlama static embeddings (no torch).

WordLlama (wordllama on PyPI) ships its model: a 32k x 256 token-embedding matrix and
its tokenizer, inside the wheel; nothing is downloaded. The text and each label are
embedded (mean of token vectors), centred on the mean of the vocabulary's vectors,
and compared by cosine similarity. Default labels get a few extra topic words from
data/labels.json; any other label is embedded as written.

Scores are a softmax of the similarities (temperature TEMPERATURE): they sum to 1
(up to rounding to 6 places) and rank the labels, but are not calibrated probabilities.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import wordllama
from wordllama import WordLlama

from ai.processors import ProcessorInputError, ProcessorModelError
from ai.processors.text import require_text

DEFAULT_LABELS = ["business", "technology", "sports", "politics", "entertainment", "science", "health"]
MAX_LABELS = 20
MAX_LABEL_LENGTH = 50
TEMPERATURE = 0.1

Vectors = npt.NDArray[np.float32]


@cache
def _model() -> Any:
    # wordllama looks for bundled files in <package>/tokenizer/ but ships them in
    # <package>/tokenizers/; as cache_dir, the package folder has both files.
    package_dir = Path(wordllama.__file__).parent
    try:
        return WordLlama.load(cache_dir=package_dir, disable_download=True)
    except FileNotFoundError as error:
        raise ProcessorModelError(f"WordLlama model files not found: {error}") from error


@cache
def _centre() -> Vectors:
    embedding: Vectors = _model().embedding
    centre: Vectors = embedding.mean(axis=0)
    return centre


@cache
def _lexicon() -> dict[str, str]:
    raw = resources.files("ai.processors").joinpath("data/labels.json").read_text("utf-8")
    data: dict[str, str] = json.loads(raw)
    return {key: value for key, value in data.items() if not key.startswith("_")}


def _embed(texts: list[str]) -> Vectors:
    vectors: Vectors = _model().embed(texts) - _centre()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Vectors = vectors / np.maximum(norms, 1e-12)
    return result


def check_labels(labels: object) -> list[str]:
    """Return the labels stripped, or raise ProcessorInputError."""
    if labels is None:
        return list(DEFAULT_LABELS)
    if not isinstance(labels, (list, tuple)) or not labels:
        raise ProcessorInputError("labels must be a non-empty list of strings")
    if len(labels) > MAX_LABELS:
        raise ProcessorInputError(f"at most {MAX_LABELS} labels")
    cleaned: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ProcessorInputError("each label must be a non-empty string")
        if len(label.strip()) > MAX_LABEL_LENGTH:
            raise ProcessorInputError(f"each label must be at most {MAX_LABEL_LENGTH} characters")
        cleaned.append(label.strip())
    if len({label.casefold() for label in cleaned}) != len(cleaned):
        raise ProcessorInputError("labels must be unique")
    return cleaned


def _label_text(label: str) -> str:
    extra = _lexicon().get(label.casefold(), "")
    return f"{label} {extra}".strip()


def _softmax(similarities: Vectors) -> Vectors:
    scaled = (similarities - similarities.max()) / TEMPERATURE
    weights = np.exp(scaled)
    result: Vectors = weights / weights.sum()
    return result


def classify(text: str, labels: list[str] | None = None) -> dict[str, Any]:
    """Score text against labels: {label: best, scores: {label: p}, labels: all, best first}."""
    require_text(text)
    chosen = check_labels(labels)
    vectors = _embed([text] + [_label_text(label) for label in chosen])
    probabilities = _softmax(vectors[1:] @ vectors[0])
    ranked = sorted(zip(chosen, probabilities.tolist()), key=lambda pair: -pair[1])
    return {
        "label": ranked[0][0],
        "scores": {label: round(score, 6) for label, score in ranked},
        "labels": [label for label, _ in ranked],
    }
