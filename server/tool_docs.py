"""The endpoints' argument descriptions (view_api and the MCP tools read them), the options from the schema."""

from __future__ import annotations

import inspect
import json

from .schema import BAKE, EXPORT, GENERATE, POSTPROCESS, RIG, Stage

ASSET_ID = "The asset's id, from the record an earlier call returned (asset_id)"
NAME = "Engine-safe asset name ([A-Za-z0-9_]); empty: from the first input's file name"
PRESET = "A preset's name (the presets endpoint lists them); empty: prop_UE5_standard"
ENGINE = "ue5 (default), unity or godot"
IMAGES = ("1 to 4 concept images (PNG, JPEG or WebP) of one object on a plain background, one per view")
VIEWS = "One view per image, comma-separated: front, left, back, right, top; empty: front for one image"
GENERATOR = "auto (the best this server can run), silhouette (no weights), trellis2, trellis or hunyuan3d2"


def stage_options(stage: Stage) -> str:
    """'A JSON object; keys: name (what it accepts, default ...): help; ...' for one stage."""
    parts = []
    for field in stage.fields:
        default = "null" if field.default is None else json.dumps(
            list(field.default) if isinstance(field.default, tuple) else field.default)
        parts.append(f"{field.name} ({field.expected}; default {default}): {field.help}")
    return f"A JSON object, every key optional. {stage.help} Keys: " + "; ".join(parts)


FORGE_OPTIONS = (
    "A JSON object, every key optional: sections generate, postprocess, rig, bake and export (each as that "
    "endpoint's options), engine (ue5, unity, godot), generator, seed, kind (prop, character, environment; a "
    "character is rigged), prompt (text instead of images), text (text-to-image options), asset_id (finish an "
    "existing asset instead)")


def described(**arguments: str):
    """Append an 'Args:' section (one line per argument) to the function's docstring."""
    def mark(fn):
        lines = [inspect.getdoc(fn) or "", "", "Args:"]
        lines += [f"    {name}: {' '.join(text.split())}" for name, text in arguments.items()]
        fn.__doc__ = "\n".join(lines)
        return fn
    return mark


GENERATE_OPTIONS = stage_options(GENERATE)
POSTPROCESS_OPTIONS = stage_options(POSTPROCESS)
RIG_OPTIONS = stage_options(RIG)
BAKE_OPTIONS = stage_options(BAKE)
EXPORT_OPTIONS = stage_options(EXPORT)
