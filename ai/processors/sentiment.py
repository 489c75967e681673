"""Sentiment with VADER (lexicon and rules; the lexicon ships in the wheel).

The overall scores are VADER's for the whole text; each sentence is also scored.
Labels use VADER's standard thresholds: compound >= 0.05 positive,
compound <= -0.05 negative, otherwise neutral.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from ai.processors.text import require_text, sentences

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def label_for(compound: float) -> str:
    """Map a VADER compound score to positive, negative or neutral."""
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def _scores(text: str) -> dict[str, float]:
    raw = _analyzer().polarity_scores(text)
    return {key: float(raw[key]) for key in ("pos", "neu", "neg", "compound")}


def analyze(text: str) -> dict[str, Any]:
    """Score text: {label, score (compound, -1..1), scores, sentences: [{text, label, score}]}."""
    require_text(text)
    overall = _scores(text)
    per_sentence = []
    for sentence in sentences(text):
        compound = _scores(sentence)["compound"]
        per_sentence.append({"text": sentence, "label": label_for(compound), "score": compound})
    return {
        "label": label_for(overall["compound"]),
        "score": overall["compound"],
        "scores": overall,
        "sentences": per_sentence,
    }
