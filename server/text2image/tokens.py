"""Token counts for a model's prompt limit: its own tokenizer where it can be loaded, a conservative estimate
otherwise."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z0-9]+|\S")
SPECIAL_TOKENS = 2  # a start and an end token (CLIP); T5 adds only an end token, so this over-counts by one
CHARS_PER_TOKEN = 3  # T5's and CLIP's English vocabularies hold whole common words; 3 letters a token over-counts


def conservative_count(text: str) -> int:
    """An over-estimate of the tokens any of our models' tokenizers give `text`, used where the tokenizer
    itself is not on this server: every run of letters or digits counts one token per three characters, every
    other ASCII character one, every non-ASCII character three (a byte-level BPE may split it into bytes)."""
    count = SPECIAL_TOKENS
    for piece in _WORD.findall(text):
        if piece.isascii() and piece.isalnum():
            count += math.ceil(len(piece) / CHARS_PER_TOKEN)
        else:
            count += sum(1 if character.isascii() else 3 for character in piece)
    return count


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens the way the prompt will be tokenized: `count(text)` includes special tokens."""

    count: Callable[[str], int]
    source: str  # "tokenizer <where>" or "conservative estimate"

    def __call__(self, text: str) -> int:
        return int(self.count(text))


CONSERVATIVE = TokenCounter(conservative_count, "conservative estimate (no tokenizer on this server)")


def tokenizer_counter(tokenizer, source: str) -> TokenCounter:
    """A counter over a transformers tokenizer (special tokens included, no truncation)."""

    def count(text: str) -> int:
        return len(tokenizer(text, truncation=False)["input_ids"])

    return TokenCounter(count, f"tokenizer {source}")


def load_counter(source: str | None, subfolder: str, local_only: bool = True) -> TokenCounter:
    """The model's own tokenizer from a weights folder or the Hugging Face cache (never downloaded), or the
    conservative estimate when it cannot be loaded here."""
    if not source:
        return CONSERVATIVE
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source, subfolder=subfolder, local_files_only=local_only)
    except Exception:  # noqa: BLE001 - no tokenizer (library, files or format) means the safe estimate
        return CONSERVATIVE
    return tokenizer_counter(tokenizer, f"{source}/{subfolder}")
