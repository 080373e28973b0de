"""Every stage's options written once: type, range, default, unit and help. Validation, preset merging, the web
UI's controls, the add-on's copy and the README's tables all come from here (python -m server.schema prints them).
"""

from __future__ import annotations

import json
import math
import pprint
import re
from dataclasses import dataclass
from typing import Any

from .errors import InputError

POWERS_OF_TWO = tuple(2**k for k in range(6, 14))  # 64 .. 8192
HEIGHT_WORDS = ("keep",)  # height: a preset name, centimetres, "1.8m"/"180cm", or keep


def plain_value(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (the checks below take Python types)."""
    return value.item() if hasattr(value, "item") and type(value).__module__ == "numpy" else value


@dataclass(frozen=True)
class Field:
    """One option: `kind` is int, float, bool, choice, text, ratios (LOD shares), point ([x, y, z]), height
    (a preset name, centimetres, '1.8m', or keep), or object (a JSON object checked by its own stage)."""

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    unit: str = ""
    nullable: bool = False
    power_of_two: bool = False
    control: bool = True  # a control in the web UI and the add-on; False: the advanced JSON only

    @property
    def expected(self) -> str:
        """What a valid value looks like, as error messages and the README say it."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = f"one of {', '.join(map(str, self.choices))}"
        elif self.power_of_two:
            text = f"a power of two from {int(self.low)} to {int(self.high)}"
        elif self.kind == "int":
            text = f"a whole number from {_plain(self.low)} to {_plain(self.high)}"
        elif self.kind == "float":
            text = f"a number from {_plain(self.low)} to {_plain(self.high)}"
        elif self.kind == "ratios":
            text = "three falling shares of LOD0's triangles starting with 1, e.g. [1, 0.5, 0.25]"
        elif self.kind == "point":
            text = "[x, y, z] in metres"
        elif self.kind == "height":
            text = "a preset such as human, door or barrel, a number of centimetres, '180cm' or '1.8m', or keep"
        elif self.kind == "object":
            text = "a JSON object"
        else:
            text = f"text of at most {int(self.high or 200)} characters"
        if self.unit and self.kind in ("int", "float"):
            text += f" ({self.unit})"
        return text + (", or null" if self.nullable else "")

    def check(self, value: Any, argument: str | None = None) -> Any:
        """The value normalised (whole numbers as int, choices lower-cased), or InputError naming the argument."""
        argument = argument or f"options.{self.name}"
        if value is None:
            if self.nullable:
                return None
            raise InputError(argument, value, self.expected)
        kind = self.kind
        if kind == "bool":
            if not isinstance(value, bool):
                raise InputError(argument, value, self.expected)
            return value
        if kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(argument, value, self.expected)
            if (kind == "int" and int(value) != value) or not self.low <= value <= self.high:
                raise InputError(argument, value, self.expected)
            if self.power_of_two and value not in POWERS_OF_TWO:
                raise InputError(argument, value, self.expected)
            return int(value) if kind == "int" else float(value)
        if kind == "choice":
            key = value.strip().lower() if isinstance(value, str) else value
            if key not in self.choices:
                raise InputError(argument, value, self.expected)
            return key
        if kind == "ratios":
            if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(map(_finite, value)):
                raise InputError(argument, value, self.expected)
            ratios = tuple(float(v) for v in value)
            if ratios[0] != 1.0 or not 1.0 > ratios[1] > ratios[2] >= 0.01:
                raise InputError(argument, value, self.expected)
            return ratios
        if kind == "point":
            if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(map(_finite, value)):
                raise InputError(argument, value, self.expected)
            return tuple(float(v) for v in value)
        if kind == "height":
            if isinstance(value, str) and value.strip().lower() in HEIGHT_WORDS:
                return "keep"
            from .stages.placement import resolve_height

            try:
                return resolve_height(value) * 100.0  # centimetres
            except InputError as exc:
                raise InputError(argument, value, exc.expected) from exc
        if kind == "object":
            if not isinstance(value, dict):
                raise InputError(argument, value, self.expected)
            return value
        if not isinstance(value, str) or len(value) > int(self.high or 200):
            raise InputError(argument, value, self.expected)
        return value


def _finite(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _plain(number) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


@dataclass(frozen=True)
class Stage:
    """One stage's options: fields in the order the UI shows them."""

    name: str
    help: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> set[str]:
        return {field.name for field in self.fields}

    def field(self, name: str) -> Field:
        return next(field for field in self.fields if field.name == name)

    def check(self, options: Any, prefix: str = "options") -> dict:
        """Options as given (a dict or its JSON text): unknown keys refused by name, each value checked."""
        options = parse(options, prefix)
        unknown = sorted(set(options) - self.names)
        if unknown:
            raise InputError(prefix, unknown[0], f"one of the keys {', '.join(sorted(self.names))}")
        return {name: self.field(name).check(value, f"{prefix}.{name}") for name, value in options.items()}

    def merged(self, options: Any, preset: dict | None = None, prefix: str = "options") -> dict:
        """Every field's value: its default, then the preset's section for this stage, then the options."""
        section = dict((preset or {}).get(self.name, {}))
        values = {field.name: field.default for field in self.fields}
        values.update(self.check({k: v for k, v in section.items() if k in self.names}, f"preset.{self.name}"))
        values.update(self.check(options, prefix))
        return values


MAX_OPTIONS_CHARS = 100_000  # options are a few keys per stage; anything this long is not a settings object


def parse(options: Any, argument: str = "options") -> dict:
    """Options arrive as a JSON object or its text; empty means none."""
    if options is None or options == "":
        return {}
    if isinstance(options, str):
        if len(options) > MAX_OPTIONS_CHARS:
            raise InputError(argument, f"{len(options)} characters", f"at most {MAX_OPTIONS_CHARS} characters")
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError(argument, options, f"a JSON object ({exc.msg})") from exc
        except RecursionError as exc:  # nested deeper than the parser's stack
            raise InputError(argument, "deeply nested JSON", "a JSON object nested at most a few levels") from exc
    if not isinstance(options, dict):
        raise InputError(argument, options, "a JSON object such as {\"kind\": \"prop\"}")
    return options


F = Field
SEED = F("seed", "int", 0, "Random seed: the same seed and inputs give the same result", low=0, high=2 ** 31 - 1)
GENERATE = Stage("generate", "Images or a prompt to a coloured high poly.", (
    F("kind", "choice", "prop", "What the asset is: props stand, characters get rigged, environments are large",
      choices=("prop", "character", "environment")),
    F("quality", "choice", "balanced", "Model generators: speed against detail (TRELLIS.2 pipeline type and "
      "steps; Hunyuan3D-2 turbo or full)", choices=("fast", "balanced", "hero")),
    F("background", "choice", "auto", "How the object is cut out of each picture: auto keeps a real alpha, else "
      "rembg where it can run, else the classical method", choices=("auto", "alpha", "rembg", "classical")),
    F("resolution", "int", 224, "Silhouette generator: voxels along the longest side", low=32, high=512),
    F("target_faces", "int", 150000, "Triangles of the high poly", low=1000, high=1_000_000),
    F("thickness", "float", 1.0, "Silhouette generator: depth of the inflated body against its width", low=0.05,
      high=4.0),
    F("height", "float", 1.0, "Height of the generated high poly", low=0.01, high=1000.0, unit="m"),
    F("flat_base", "bool", True, "Silhouette generator: a flat base, so props stand"),
    F("must_stand", "bool", False, "TRELLIS with the DSO LoRA: shapes that stand on their base"),
    F("multiview_mode", "choice", "stochastic", "TRELLIS with 2-4 views: how the views are fused",
      choices=("stochastic", "multidiffusion")),
    F("texture", "bool", False, "Hunyuan3D-2: paint the mesh with Hunyuan3D-Paint"),
    F("variant", "text", "", "Hunyuan3D-2 variant such as mini (empty: the default model)", high=40, control=False),
    F("steps", "int", 30, "Model generators: sampling steps", low=1, high=200, control=False),
    F("octree_resolution", "int", 256, "Hunyuan3D-2: octree resolution of the surface", low=16, high=1024,
      control=False),
    F("asset_id", "text", None, "Choose the new asset's id yourself (to cancel it while it runs)", nullable=True,
      high=40, control=False),
))
POSTPROCESS = Stage("postprocess", "Repair, clean, decimate, unwrap, LODs, collision, pivot and size.", (
    F("target_triangles", "int", 10000, "Triangles of LOD0", low=100, high=500_000),
    F("texture_size", "int", 2048, "Texels per side the UVs are laid out for (the bake uses it too)",
      low=64, high=8192, power_of_two=True),
    F("lod_ratios", "ratios", (1.0, 0.5, 0.25), "Triangles of LOD0, LOD1 and LOD2 as shares of LOD0"),
    F("height", "height", None, "Real height: a preset, centimetres, '1.8m', or keep (the preset's height_cm "
      "otherwise)", nullable=True),
    F("height_cm", "float", 100.0, "Real height in centimetres (null keeps the size)", low=0.1, high=100_000,
      unit="cm", nullable=True, control=False),
    F("pivot", "choice", "bottom_centre", "Where the pivot goes", choices=("bottom_centre", "centre", "custom")),
    F("pivot_point", "point", None, "The custom pivot, in metres", nullable=True, control=False),
    F("collision", "bool", True, "Convex collision hulls (UCX) by CoACD"),
    F("max_hulls", "int", 16, "Collision hulls at most", low=1, high=64),
    F("max_hull_vertices", "int", 48, "Vertices per hull at most", low=8, high=255),
    F("symmetry", "choice", "off", "Mirror the left half onto the right (x) or the front onto the back (y)",
      choices=("off", "x", "y")),
    F("repair", "choice", "auto", "Close holes and fix non-manifold edges (auto: when the mesh is not closed)",
      choices=("auto", "on", "off")),
    F("texel_density", "float", None, "Texels per centimetre instead of filling the texture", low=0.001,
      high=1024, unit="px/cm", nullable=True, control=False),
    F("stable_pose", "bool", False, "Turn the asset onto its most stable resting pose when it would fall over"),
    F("preset", "text", None, "A preset's postprocess section to start from", nullable=True, high=64, control=False),
))
RIG = Stage("rig", "A skeleton and skin weights: the UE5 Mannequin's for humanoids, a generic one for creatures.", (
    F("method", "choice", "auto", "template fits the Mannequin on the CPU without weights (T- and A-poses); "
      "make_it_animatable (humanoids, any pose) and unirig (any creature) are models, where health lists them "
      "available; auto takes the best one here", choices=("auto", "template", "make_it_animatable", "unirig")),
    F("skeleton", "choice", None, "Bone names and hierarchy (null: the method's own; generic is unirig's)",
      choices=("ue5_mannequin", "generic"), nullable=True),
    F("fingers", "bool", False, "Add the Mannequin's finger bones"),
    F("max_influences", "int", 4, "Bones per vertex at most", low=1, high=8),
    F("seed", "int", None, "The model's sampling seed (model methods; null: the method's own)", low=0,
      high=2 ** 31 - 1, nullable=True),
))
BAKE = Stage("bake", "Normal, base colour, metallic, roughness and AO onto LOD0.", (
    F("texture_size", "int", None, "Texels per side (null: what post-processing unwrapped for)", low=64, high=8192,
      power_of_two=True, nullable=True),
    F("ao_samples", "int", 32, "Ambient occlusion rays per texel", low=1, high=1024),
    F("ao_distance", "float", None, "How far occlusion is looked for (null: a tenth of the object's size)",
      low=0.001, high=1000.0, unit="m", nullable=True),
    F("engine", "choice", "auto", "auto bakes on CUDA where this server can, else on the CPU",
      choices=("auto", "cpu", "cuda")),
    F("paint_hidden", "object", None, "Paint the sides no input view saw: 'classical', 'diffusion' or their "
      "settings (off by default)", nullable=True, control=False),
    F("preset", "text", None, "A preset's postprocess texture size to start from", nullable=True, high=64,
      control=False),
))
EXPORT = Stage("export", "The engine package.", (
    F("nanite", "bool", False, "UE5: build Nanite (the LODs stay as the fallback)"),
    F("use_fbx", "bool", None, "FBX meshes (null: FBX where this server has Blender, else GLB)", nullable=True),
    F("include_high_poly", "bool", False, "Add the placed high poly, for inspection in Blender"),
))
STAGES = {stage.name: stage for stage in (GENERATE, POSTPROCESS, RIG, BAKE, EXPORT)}
FORGE_KEYS = {"generate", "postprocess", "rig", "bake", "export", "engine", "generator", "seed", "kind", "prompt",
              "text", "asset_id"}


def markdown_tables() -> str:
    """The README's options tables, one per stage."""
    parts = []
    for stage in STAGES.values():
        rows = ["| option | default | accepts | what it does |", "|---|---|---|---|"]
        for field in stage.fields:
            default = "null" if field.default is None else json.dumps(
                list(field.default) if isinstance(field.default, tuple) else field.default)
            rows.append(f"| `{field.name}` | `{default}` | {field.expected} | {field.help} |")
        parts.append(f"**{stage.name}** ({stage.help[0].lower() + stage.help[1:]})\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


README_BEGIN, README_END = "<!-- options tables: python -m server.schema -->", "<!-- end of options tables -->"


def readme_section(readme: str) -> str:
    match = re.search(re.escape(README_BEGIN) + r"\n(.*?)\n" + re.escape(README_END), readme, re.DOTALL)
    return match.group(1) if match else ""


ADDON_COPY_HEADER = ('"""The server\'s options schema as plain data, for the add-on (which cannot import the server). '
                     'Written by\nbuild_addon.py from server/schema.py (addon_module_text): do not edit."""\n\n')


def addon_module_text() -> str:
    """addon/options_schema.py: every stage's fields as plain dicts (kind, default, range, choices, unit, help)."""
    stages = {}
    for stage in STAGES.values():
        fields = {}
        for field in stage.fields:
            entry = {"kind": field.kind, "default": list(field.default) if isinstance(field.default, tuple)
                     else field.default, "help": field.help}
            if field.low is not None:
                entry.update(low=field.low, high=field.high)
            if field.choices:
                entry["choices"] = list(field.choices)
            if field.power_of_two:
                entry["choices"] = [size for size in POWERS_OF_TWO if field.low <= size <= field.high]
            if field.unit:
                entry["unit"] = field.unit
            fields[field.name] = entry
        stages[stage.name] = fields
    return ADDON_COPY_HEADER + "SCHEMA = " + pprint.pformat(stages, width=110, sort_dicts=False) + "\n"


if __name__ == "__main__":
    print(markdown_tables())
