"""Domain exceptions that cross from the pipeline to the API boundary, and what of them a client may see."""

import os
import re


class ForgeError(Exception):
    """A problem the user can act on; its message is shown to them verbatim."""


class InputError(ForgeError, ValueError):
    """An argument failed validation: the message names it, its value and what was expected."""

    def __init__(self, argument: str, value, expected: str):
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(f"{argument}={shown}: expected {expected}")
        self.argument = argument
        self.value = value
        self.expected = expected


class RefusedInput(ForgeError):
    """The input proved unusable while it was processed (a picture with no object in it): nothing is kept."""


class Cancelled(ForgeError):
    """The job was cancelled by the user; partial outputs are discarded."""


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def public_message(text: str, roots: list[str]) -> str:
    """A message fit for a client: no object addresses, and any path under one of the server's own folders
    (`roots`: the workspace, temporary and install folders) shortened to its file name."""
    text = _ADDRESS.sub("", text)
    for root in sorted({r.rstrip("/") for r in roots if r and r != "/"}, key=len, reverse=True):
        pattern = re.escape(root) + r"(?:/[^\s'\"`,;()<>\[\]{}]*)?"
        text = re.sub(pattern, lambda match: os.path.basename(match.group(0).rstrip("/")) or "...", text)
    return text
