"""A user's prompt checked before any work: a string, not empty, not too long, no control characters."""

from __future__ import annotations

import re
import unicodedata

from ..errors import InputError

MAX_PROMPT_CHARS = 1000  # an idea for one asset; the expander adds the rest
_SPACES = re.compile(r"\s+")
_ORDINARY_WHITESPACE = {"\t", "\n", "\r"}


def check_prompt(prompt, argument: str = "prompt") -> str:
    """The prompt with its whitespace collapsed, or InputError naming what is wrong with it.

    Tabs and line breaks become spaces; any other control or invisible formatting character (NUL, escape
    sequences, zero-width or bidirectional marks) is refused rather than silently dropped, since it would
    otherwise reach the tokenizer and the asset record.
    """
    if not isinstance(prompt, str):
        raise InputError(argument, type(prompt).__name__, "a text prompt (a string)")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(argument, f"{len(prompt)} characters",
                         f"at most {MAX_PROMPT_CHARS} characters describing one object")
    for position, character in enumerate(prompt):
        if character in _ORDINARY_WHITESPACE:
            continue
        category = unicodedata.category(character)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise InputError(argument, prompt,
                             f"printable text without control characters (found U+{ord(character):04X} "
                             f"at position {position})")
    text = _SPACES.sub(" ", prompt).strip()
    if not text:
        raise InputError(argument, prompt, "a description of the object, such as 'a wooden barrel'")
    if not any(character.isalpha() for character in text):
        raise InputError(argument, prompt, "words that name an object (the prompt has no letters)")
    return text
