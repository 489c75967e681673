"""Extractive summaries: sumy's TextRank over our own sentence splitter.

sumy's default tokenizer needs NLTK's punkt data (not installed), so sumy gets
SumyTokenizer below. Stemming (Snowball) and English stop words ship with sumy/NLTK
code and need no download. The summary is made of verbatim sentences of the text,
kept in their original order.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
from sumy.nlp.stemmers import Stemmer
from sumy.summarizers.text_rank import TextRankSummarizer
from sumy.utils import get_stop_words

from ai.processors import ProcessorInputError
from ai.processors.text import paragraphs, require_text, sentences, words

MIN_SENTENCES = 1
MAX_SENTENCES = 20
LANGUAGE = "english"


class SumyTokenizer:
    """The tokenizer interface sumy duck-types, backed by ai.processors.text."""

    language = LANGUAGE

    def to_sentences(self, text: str) -> tuple[str, ...]:
        """Sentences of text (empty tuple for blank text)."""
        return tuple(sentences(text)) if text.strip() else ()

    def to_words(self, sentence: str) -> tuple[str, ...]:
        """Words of one sentence (empty tuple for blank text)."""
        return tuple(words(sentence)) if sentence.strip() else ()


@cache
def _summarizer() -> TextRankSummarizer:
    summarizer = TextRankSummarizer(Stemmer(LANGUAGE))
    summarizer.stop_words = get_stop_words(LANGUAGE)
    return summarizer


def _check_max_sentences(max_sentences: object) -> int:
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int):
        raise ProcessorInputError("max_sentences must be an integer")
    if not MIN_SENTENCES <= max_sentences <= MAX_SENTENCES:
        raise ProcessorInputError(
            f"max_sentences must be between {MIN_SENTENCES} and {MAX_SENTENCES}"
        )
    return max_sentences


def _document(text: str, tokenizer: SumyTokenizer) -> ObjectDocumentModel:
    return ObjectDocumentModel(
        [
            Paragraph([Sentence(s, tokenizer) for s in tokenizer.to_sentences(block)])
            for block in paragraphs(text)
        ]
    )


def _result(text: str, chosen: list[str], summary: str | None = None) -> dict[str, Any]:
    summary = " ".join(chosen) if summary is None else summary
    return {
        "summary": summary,
        "sentences": chosen,
        "originalLength": len(text),
        "summaryLength": len(summary),
    }


def summarize(text: str, max_sentences: int = 3) -> dict[str, Any]:
    """Pick at most max_sentences (1..20) key sentences of text, in text order.

    A text of max_sentences sentences or fewer is its own summary (stripped).
    """
    require_text(text)
    limit = _check_max_sentences(max_sentences)
    tokenizer = SumyTokenizer()
    document = _document(text, tokenizer)
    all_sentences = [str(s) for s in document.sentences]
    if len(all_sentences) <= limit:
        return _result(text, all_sentences, summary=text.strip())
    chosen = _summarizer()(document, limit)
    return _result(text, [str(s) for s in chosen])
