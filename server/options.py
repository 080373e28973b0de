"""Parsing and validating endpoint arguments: each failure names the argument, its value and what was expected."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .asset import KINDS
from .bake.engine import ENGINES as BAKE_ENGINES
from .bake.engine import BakeSettings, resolve_engine
from .errors import InputError
from .gameready import PostSettings
from .generators.base import QUALITIES, VIEW_LABELS
from .generators.trellis import MULTI_VIEW_MODES
from .presets import get_preset
from .stages.background import METHODS as BACKGROUND_METHODS
from .stages.background import rembg_status
from .stages.paint_hidden import PaintSettings
from .stages.placement import resolve_height

DEFAULT_VIEW_ORDER = ("front", "left", "back", "right")
EXPORT_OPTIONS = {"nanite", "use_fbx", "include_high_poly"}
NAME_PATTERN = re.compile(r"[^A-Za-z0-9_]+")
ENGINES = ("ue5", "unity", "godot")


def sanitize_name(name: Any, fallback: str = "Asset") -> str:
    """Engine-safe asset name: [A-Za-z0-9_] only, at most 64 characters, never empty."""
    if name is not None and not isinstance(name, str):
        raise InputError("name", name, "a text name such as Barrel_01")
    cleaned = NAME_PATTERN.sub("_", (name or "").strip()).strip("_")[:64]
    return cleaned or fallback


MAX_OPTIONS_CHARS = 100_000  # options are a few keys per stage; anything this long is not a settings object


def parse_options(options: Any, allowed: set[str]) -> dict:
    """Options arrive as a JSON object (or its text); unknown keys are refused by name."""
    if options is None or options == "":
        return {}
    if isinstance(options, str):
        if len(options) > MAX_OPTIONS_CHARS:
            raise InputError("options", f"{len(options)} characters", f"at most {MAX_OPTIONS_CHARS} characters")
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError("options", options, f"a JSON object ({exc.msg})") from exc
        except RecursionError as exc:  # nested deeper than the parser's stack
            raise InputError("options", "deeply nested JSON", "a JSON object nested at most a few levels") from exc
    if not isinstance(options, dict):
        raise InputError("options", options, "a JSON object such as {\"kind\": \"prop\"}")
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
    kind = value if value is not None else default
    if kind not in KINDS:
        raise InputError("options.kind", kind, f"one of {', '.join(KINDS)}")
    return kind


def engine_name(engine: Any) -> str:
    key = engine.strip().lower() if isinstance(engine, str) else engine
    if key not in ENGINES:
        raise InputError("engine", engine, f"one of {', '.join(ENGINES)} (case-insensitive)")
    return key


def post_settings(opts: dict, preset_name: str | None) -> PostSettings:
    """PostSettings from the preset's postprocess section, overridden by the options."""
    preset = get_preset(opts.get("preset") or preset_name or None)
    merged = {**preset.get("postprocess", {}), **{k: v for k, v in opts.items() if k != "preset"}}
    if "height" in merged and merged["height"] not in (None, "keep"):
        try:
            merged["height_cm"] = resolve_height(merged["height"]) * 100
        except InputError as exc:
            raise InputError(f"options.{exc.argument}", exc.value, exc.expected) from exc
    elif "height" in merged:
        merged["height_cm"] = None
    _check_shapes(merged)
    height = merged.get("height_cm")
    if height is not None and (isinstance(height, bool) or not isinstance(height, (int, float))):
        raise InputError("options.height_cm", height, "a number of centimetres, or null to keep the size")
    for key in ("collision", "stable_pose"):
        if key in merged and not isinstance(merged[key], bool):
            raise InputError(f"options.{key}", merged[key], "true or false")
    for key in ("target_triangles", "texture_size", "max_hulls", "max_hull_vertices"):
        value = merged.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value):
            raise InputError(f"options.{key}", value, "a whole number")
    pivot_point = merged.get("pivot_point")
    try:
        return PostSettings(
            target_triangles=int(merged.get("target_triangles", 10000)),
            texture_size=int(merged.get("texture_size", 2048)),
            texel_density=merged.get("texel_density"), lod_ratios=tuple(merged.get("lod_ratios", (1, 0.5, 0.25))),
            symmetry=str(merged.get("symmetry", "off")).lower(), repair=str(merged.get("repair", "auto")).lower(),
            collision=bool(merged.get("collision", True)), max_hulls=int(merged.get("max_hulls", 16)),
            max_hull_vertices=int(merged.get("max_hull_vertices", 48)), pivot=str(merged.get("pivot", "bottom_centre")),
            pivot_point=tuple(pivot_point) if pivot_point is not None else None,
            height_cm=None if height is None else float(height),
            stable_pose=bool(merged.get("stable_pose", False))).validate()
    except InputError as exc:
        raise InputError(f"options.{exc.argument}", exc.value, exc.expected) from exc
    except (TypeError, ValueError) as exc:
        raise InputError("options", merged, f"post-processing options of the right types ({exc})") from exc


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _check_shapes(merged: dict) -> None:
    """The post-processing options whose type a constructor would only find out too late (or by crashing)."""
    ratios = merged.get("lod_ratios")
    if ratios is not None and (not isinstance(ratios, (list, tuple)) or not all(map(_is_number, ratios))):
        raise InputError("options.lod_ratios", ratios, "a list of numbers such as [1, 0.5, 0.25]")
    point = merged.get("pivot_point")
    if point is not None and (not isinstance(point, (list, tuple)) or len(point) != 3 or not all(map(_is_number, point))):
        raise InputError("options.pivot_point", point, "[x, y, z] in metres")
    density = merged.get("texel_density")
    if density is not None and (not _is_number(density) or not 0 < density <= 1024):
        raise InputError("options.texel_density", density, "texels per centimetre, above 0 and at most 1024")


def export_options(options: Any) -> dict:
    """Export's options, every one checked (forge checks them before it generates anything)."""
    opts = parse_options(options, EXPORT_OPTIONS)
    for key in opts:
        if not isinstance(opts[key], bool):
            raise InputError(f"options.{key}", opts[key], "true or false")
    return opts


def bake_settings(opts: dict, preset_name: str | None) -> tuple[BakeSettings, str]:
    preset = get_preset(opts.get("preset") or preset_name or None)
    size = opts.get("texture_size", preset.get("postprocess", {}).get("texture_size", 2048))
    if isinstance(size, bool) or not isinstance(size, int):
        raise InputError("options.texture_size", size, "a power of two from 256 to 8192")
    settings = BakeSettings(size=size)
    if "ao_samples" in opts:
        settings.ao_samples = number_option(opts, "ao_samples", 1, 1024, integer=True)
    settings.ao_distance = number_option(opts, "ao_distance", 0.001, 1000.0) if "ao_distance" in opts else 0.0
    engine = opts.get("engine", "auto")
    if not isinstance(engine, str):
        raise InputError("options.engine", engine, f"one of {', '.join(BAKE_ENGINES)}")
    resolve_engine(engine, argument="options.engine")  # refuses now an engine this server cannot run
    engine = engine.strip().lower()
    if size not in {2**k for k in range(8, 14)}:
        raise InputError("options.texture_size", size, "a power of two from 256 to 8192")
    return settings, engine


def seed_value(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, float)) or int(seed) != seed or not 0 <= seed < 2**31:
        raise InputError("seed", seed, "a whole number from 0 to 2147483647")
    return int(seed)


GENERATE_LIMITS = {"thickness": (0.05, 4.0, False), "resolution": (32, 512, True),
                   "target_faces": (1000, 1_000_000, True), "height": (0.01, 1000.0, False),
                   "steps": (1, 200, True), "octree_resolution": (16, 1024, True)}


def generate_settings(opts: dict, preset_data: dict) -> tuple[dict, str]:
    """The generator's settings (the preset's, overridden by the options) and the background method."""
    settings = dict(preset_data.get("generate", {}))
    for key, (low, high, integer) in GENERATE_LIMITS.items():
        if key in opts:
            settings[key] = number_option(opts, key, low, high, integer)
    for key in ("flat_base", "must_stand", "texture"):
        if key in opts:
            if not isinstance(opts[key], bool):
                raise InputError(f"options.{key}", opts[key], "true or false")
            settings[key] = opts[key]
    for key, allowed in (("quality", QUALITIES), ("multiview_mode", MULTI_VIEW_MODES)):
        if key in opts:
            if opts[key] not in allowed:
                raise InputError(f"options.{key}", opts[key], f"one of {', '.join(allowed)}")
            settings[key] = opts[key]
    if "variant" in opts:  # the model generator checks the name against its own variants
        if not isinstance(opts["variant"], str):
            raise InputError("options.variant", opts["variant"], "a model variant name such as 'mini'")
        settings["variant"] = opts["variant"]
    background = opts.get("background", "auto")
    if background not in BACKGROUND_METHODS:
        raise InputError("options.background", background, f"one of {', '.join(BACKGROUND_METHODS)}")
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
