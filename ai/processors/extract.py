"""Keywords (YAKE) and regex entities: emails, URLs, dates and money amounts.

Keyword "score" is a relevance in (0, 1], higher is more relevant. YAKE's own
score is lower-is-better and unbounded; we report 1 / (1 + yake_score), which
keeps YAKE's order. Entities are returned verbatim as they appear in the text,
in order of first appearance, without duplicates.
"""

from __future__ import annotations

import re
from typing import Any

import yake

from ai.processors import ProcessorInputError
from ai.processors.text import require_text

MAX_KEYWORDS = 50
MAX_NGRAM = 3

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?"
    r"|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1\d{3}|2\d{3})"
_DATE = re.compile(
    rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b"  # 2026-11-30
    rf"|\b{_DAY}\s+(?:of\s+)?{_MONTH}\.?,?\s+{_YEAR}\b"  # 30 November 2026
    rf"|\b{_MONTH}\.?\s+{_DAY},?\s+{_YEAR}\b"  # Nov 30, 2026
    rf"|\b(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/{_YEAR}\b"  # 11/30/2026
    rf"|\b(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.{_YEAR}\b",  # 30.11.2026
    re.IGNORECASE,
)

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\"”’)]}>"

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE = r"(?:\s?(?:thousand|million|billion|trillion|bn|[kKmM])\b)?"
_SYMBOL = r"(?:US\$|A\$|C\$|[$€£¥₹])"
_CODE = r"(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|CNY|INR|SEK|NOK|DKK)"
_CURRENCY_WORD = r"(?:dollars?|euros?|pounds?(?:\s+sterling)?|yen|francs?|rupees?|cents?)"
_AMOUNT = re.compile(
    rf"{_SYMBOL}\s?(?:{_NUMBER}){_SCALE}"  # $1,200.50, €30, $2.5 million
    rf"|\b{_CODE}\s?(?:{_NUMBER}){_SCALE}"  # USD 25
    rf"|\b(?:{_NUMBER})(?:\s(?:thousand|million|billion|trillion))?\s?(?:{_CODE}\b|{_CURRENCY_WORD}\b)"
    rf"|\b(?:{_NUMBER}){_SYMBOL}",  # 30€
)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _trim_url(url: str) -> str:
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def find_urls(text: str) -> list[str]:
    """URLs starting with http://, https:// or www."""
    return _unique([u for u in (_trim_url(m.group()) for m in _URL.finditer(text)) if u])


def find_emails(text: str) -> list[str]:
    """Email addresses."""
    return _unique(_EMAIL.findall(text))


def _mask(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _without_links(text: str) -> str:
    # Blank out URLs and emails so that their digits are not read as dates or amounts.
    return _mask(_mask(text, _URL), _EMAIL)


def find_dates(text: str) -> list[str]:
    """Dates: 2026-11-30, 30 November 2026, Nov 30, 2026, 11/30/2026, 30.11.2026."""
    return _unique([m.group() for m in _DATE.finditer(_without_links(text))])


def find_amounts(text: str) -> list[str]:
    """Money: $1,200.50, €30, 25 USD, USD 25, 1.5 million dollars, £2bn."""
    return _unique([m.group() for m in _AMOUNT.finditer(_without_links(text))])


def _check_max_keywords(max_keywords: object) -> int:
    if isinstance(max_keywords, bool) or not isinstance(max_keywords, int):
        raise ProcessorInputError("max_keywords must be an integer")
    if not 1 <= max_keywords <= MAX_KEYWORDS:
        raise ProcessorInputError(f"max_keywords must be between 1 and {MAX_KEYWORDS}")
    return max_keywords


def keywords(text: str, max_keywords: int = 10) -> list[dict[str, Any]]:
    """Top keywords/keyphrases (1-3 words), most relevant first, score = relevance in (0, 1]."""
    require_text(text)
    limit = _check_max_keywords(max_keywords)
    extractor = yake.KeywordExtractor(lan="en", n=MAX_NGRAM, top=limit)
    found = extractor.extract_keywords(text)
    return [
        {"text": str(phrase), "score": round(1.0 / (1.0 + float(score)), 4)}
        for phrase, score in found
    ]


def extract(text: str, max_keywords: int = 10) -> dict[str, Any]:
    """Keywords and entities of text: {keywords, emails, urls, dates, amounts}."""
    require_text(text)
    return {
        "keywords": keywords(text, max_keywords),
        "emails": find_emails(text),
        "urls": find_urls(text),
        "dates": find_dates(text),
        "amounts": find_amounts(text),
    }
