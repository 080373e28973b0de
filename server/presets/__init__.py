"""Named presets shipped as JSON files beside this module."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

FOLDER = Path(__file__).parent
DEFAULT_PRESET = "prop_UE5_standard"


@lru_cache(maxsize=None)
def all_presets() -> dict[str, dict]:
    presets = {}
    for path in sorted(FOLDER.glob("*.json")):
        preset = json.loads(path.read_text(encoding="utf-8"))
        presets[preset["name"]] = preset
    return presets


def get_preset(name: str | None) -> dict:
    name = name or DEFAULT_PRESET
    presets = all_presets()
    if name not in presets:
        raise InputError("preset", name, f"one of {', '.join(presets)}")
    return json.loads(json.dumps(presets[name]))  # a copy the caller may change
