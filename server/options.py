"""Parsing and validating endpoint arguments: each failure names the argument, its value and what was expected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .bake.engine import BakeSettings, resolve_engine
from .errors import InputError
from .gameready import PostSettings
from .generators.base import VIEW_LABELS
from .presets import get_preset
from .schema import BAKE, EXPORT, GENERATE, POSTPROCESS, SEED, parse, plain_value
from .stages.background import rembg_status
from .stages.paint_hidden import PaintSettings

DEFAULT_VIEW_ORDER = ("front", "left", "back", "right")
NAME_PATTERN = re.compile(r"[^A-Za-z0-9_]+")
ENGINES = ("ue5", "unity", "godot")


def sanitize_name(name: Any, fallback: str = "Asset") -> str:
    """Engine-safe asset name: [A-Za-z0-9_] only, at most 64 characters, never empty."""
    if name is not None and not isinstance(name, str):
        raise InputError("name", name, "a text name such as Barrel_01")
    cleaned = NAME_PATTERN.sub("_", (name or "").strip()).strip("_")[:64]
    return cleaned or fallback


def parse_options(options: Any, allowed: set[str]) -> dict:
    """Options arrive as a JSON object (or its text); unknown keys are refused by name."""
    options = parse(options)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InputError("options", unknown[0], f"one of the keys {', '.join(sorted(allowed))}")
    return options


def parse_views(views: Any, count: int) -> list[str]:
    """View labels for the images: given as a list or comma-separated text, else the default order."""
    if views is None or views == "" or views == []:
        if count > len(DEFAULT_VIEW_ORDER):
            raise InputError("views", views, f"labels for {count} images")
        return list(DEFAULT_VIEW_ORDER[:count])
    if isinstance(views, str):
        views = [v.strip() for v in views.split(",") if v.strip()]
    if not isinstance(views, list) or not all(isinstance(v, str) for v in views):
        raise InputError("views", views, "view labels such as 'front,left,back,right'")
    labels = [v.lower() for v in views]
    for label in labels:
        if label not in VIEW_LABELS:
            raise InputError("views", label, f"one of {', '.join(VIEW_LABELS)}")
    if len(labels) != count:
        raise InputError("views", ",".join(labels), f"one label per image ({count} images)")
    if len(set(labels)) != len(labels):
        raise InputError("views", ",".join(labels), "each label at most once")
    if count == 1 and labels != ["front"]:
        raise InputError("views", labels[0], "'front' for a single image")
    if count > 1 and not set(labels) & {"front", "back", "left", "right"}:
        raise InputError("views", ",".join(labels), "at least one side view (front, back, left or right)")
    return labels


def number_option(options: dict, key: str, low: float, high: float, integer: bool = False):
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InputError(f"options.{key}", value, f"a number from {low} to {high}")
    if integer and int(value) != value:
        raise InputError(f"options.{key}", value, "a whole number")
    return int(value) if integer else float(value)


def uploaded_path(value: Any, argument: str) -> Path:
    if isinstance(value, dict):  # a gradio FileData payload
        value = value.get("path")
    if not isinstance(value, (str, Path)) or not str(value):
        raise InputError(argument, value, "an uploaded file")
    path = Path(value)
    if not path.is_file():
        raise InputError(argument, path.name, "an uploaded file that exists on the server")
    return path


def kind_option(value: Any, default: str) -> str:
    return GENERATE.field("kind").check(value if value is not None else default)


def engine_name(engine: Any) -> str:
    key = engine.strip().lower() if isinstance(engine, str) else engine
    if key not in ENGINES:
        raise InputError("engine", engine, f"one of {', '.join(ENGINES)} (case-insensitive)")
    return key


def post_settings(opts: dict, preset_name: str | None) -> PostSettings:
    """PostSettings from the preset's postprocess section, overridden by the options (the schema checks both)."""
    preset = get_preset(opts.get("preset") or preset_name or None)
    values = POSTPROCESS.merged({k: v for k, v in opts.items() if k != "preset"}, preset)
    height_cm = values["height_cm"]
    if values["height"] is not None:  # the friendly form wins over height_cm
        height_cm = None if values["height"] == "keep" else values["height"]
    if values["pivot"] == "custom" and values["pivot_point"] is None:
        raise InputError("options.pivot_point", None, "[x, y, z] in metres for a custom pivot")
    return PostSettings(
        target_triangles=values["target_triangles"], texture_size=values["texture_size"],
        texel_density=values["texel_density"], lod_ratios=values["lod_ratios"], symmetry=values["symmetry"],
        repair=values["repair"], collision=values["collision"], max_hulls=values["max_hulls"],
        max_hull_vertices=values["max_hull_vertices"], pivot=values["pivot"], pivot_point=values["pivot_point"],
        height_cm=height_cm, stable_pose=values["stable_pose"])


def export_options(options: Any) -> dict:
    """Export's options, every one checked (forge checks them before it generates anything)."""
    return EXPORT.check(options)


def bake_settings(opts: dict, preset_name: str | None, unwrapped: int | None = None) -> tuple[BakeSettings, str]:
    """BakeSettings and the engine. The texture size is what post-processing unwrapped for (`unwrapped`) unless the
    options ask for another; an engine this server cannot run is refused now."""
    values = BAKE.merged({k: v for k, v in opts.items() if k not in ("preset", "paint_hidden")})
    preset = get_preset(opts.get("preset") or preset_name or None)
    size = values["texture_size"] or unwrapped or preset.get("postprocess", {}).get("texture_size", 2048)
    settings = BakeSettings(size=int(size), ao_samples=values["ao_samples"], ao_distance=values["ao_distance"] or 0.0)
    resolve_engine(values["engine"], argument="options.engine")  # refuses now an engine this server cannot run
    return settings, values["engine"]


def seed_value(seed: Any) -> int:
    return SEED.check(plain_value(seed), "seed")


def generate_settings(opts: dict, preset_data: dict) -> tuple[dict, str]:
    """The generator's settings (the preset's, overridden by the options) and the background method."""
    checked = GENERATE.check({k: v for k, v in opts.items() if k in GENERATE.names})
    settings = dict(preset_data.get("generate", {}))
    settings.update({k: v for k, v in checked.items() if k not in ("kind", "background", "asset_id")})
    background = checked.get("background", "auto")
    if background == "rembg" and not (rembg := rembg_status())[0]:  # found now, before any asset exists
        raise InputError("options.background", background, f"a method this server can run ({rembg[1]}); "
                         "'auto' uses rembg where it can and the classical method otherwise")
    return settings, background


PAINT_KEYS = {"method", "prompt", "strength", "steps", "guidance", "seed", "resolution", "min_cos", "match_colours"}


def paint_settings(value: Any, subject: str = "") -> PaintSettings | None:
    """bake's paint_hidden option: off (false or absent), a method name, or an object of PaintSettings' fields;
    `subject` (a text asset's) is the diffusion prompt when none is given."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        value = {"method": value}
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise InputError("options.paint_hidden", value, "false, 'classical', 'diffusion' or an object of its settings")
    unknown = sorted(set(value) - PAINT_KEYS)
    if unknown:
        raise InputError("options.paint_hidden", unknown[0], f"one of the keys {', '.join(sorted(PAINT_KEYS))}")
    if subject and not value.get("prompt"):
        value = {**value, "prompt": subject}
    try:
        return PaintSettings(**value).validate()
    except InputError as exc:
        raise InputError(f"options.paint_hidden.{exc.argument.split('.')[-1]}", exc.value, exc.expected) from exc
