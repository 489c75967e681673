"""What a language code looks like: `en`, `fra`, `pt-BR`, `zh-Hant` (ISO 639 with an optional subtag)."""
from __future__ import annotations

import re

from django.core.validators import RegexValidator

#: The pattern, also published in the OpenAPI schema of the fields that take a language.
PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
MESSAGE = "must be a language code such as en, fr or pt-BR"

_CODE = re.compile(PATTERN)
#: The check as a serializer validator (the schema shows its pattern).
VALIDATOR = RegexValidator(PATTERN, MESSAGE)


def is_code(value: str) -> bool:
    """Whether `value` is a language code."""
    return bool(_CODE.match(value))
