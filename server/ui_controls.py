"""Web UI controls made from the options schema, and the options a set of control values stands for."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .errors import InputError
from .schema import Field, Stage

AUTO = "auto (from the post-processing)"  # a nullable choice's "no value" entry


def _label(field: Field) -> str:
    words = field.name.replace("_", " ")
    return f"{words[0].upper()}{words[1:]}" + (f" ({field.unit})" if field.unit else "")


def control(field: Field, value: Any) -> gr.components.Component:
    """The Gradio control for one field, showing `value` (the default preset's, as merged)."""
    label, info = _label(field), field.help
    if field.kind == "bool":
        return gr.Checkbox(value=bool(value), label=label, info=info)
    if field.kind == "choice":
        return gr.Dropdown(list(field.choices), value=value, label=label, info=info)
    if field.power_of_two:
        sizes = [str(size) for size in (256, 512, 1024, 2048, 4096, 8192)]
        choices = ([AUTO] if field.nullable else []) + sizes
        return gr.Dropdown(choices, value=AUTO if value is None else str(value), label=label, info=info)
    if field.kind in ("int", "float") and field.nullable:  # empty means "let the server decide"
        return gr.Textbox(value="" if value is None else str(value), label=label, info=info, placeholder="auto")
    if field.kind == "int":
        if field.high - field.low <= 2000:
            return gr.Slider(field.low, field.high, value=value, step=1, label=label, info=info)
        return gr.Number(value=value, precision=0, minimum=field.low, maximum=field.high, label=label, info=info)
    if field.kind == "float":
        return gr.Number(value=value, minimum=field.low, maximum=field.high, label=label, info=info)
    if field.kind == "ratios":
        return gr.Textbox(value=", ".join(f"{r:g}" for r in value), label=label, info=info)
    return gr.Textbox(value="" if value is None else str(value), label=label, info=info,
                      placeholder="human, door, 180cm, 1.8m or keep" if field.kind == "height" else None)


def controls(stage: Stage, values: dict) -> dict[str, gr.components.Component]:
    """One control per field the UI shows (control=True), in the schema's order."""
    return {field.name: control(field, values.get(field.name)) for field in stage.fields if field.control}


def shown_value(field: Field, value: Any) -> Any:
    """What a control shows for a value (for filling the controls from a preset)."""
    if field.power_of_two:
        return AUTO if value is None else str(value)
    if field.kind == "ratios":
        return ", ".join(f"{r:g}" for r in value)
    if field.kind in ("text", "height") or (field.nullable and field.kind in ("int", "float")):
        return "" if value is None else str(value)
    return value


def options_from(stage: Stage, names: list[str], values: list) -> dict:
    """The stage's options from its controls' values; empty and 'auto' entries are left to the defaults."""
    options = {}
    for name, value in zip(names, values):
        field = stage.field(name)
        if value is None or value == "" or value == AUTO:
            continue
        try:
            if field.power_of_two or field.kind == "int":
                value = int(float(value))
            elif field.kind == "float":
                value = float(value)
            elif field.kind == "ratios":
                value = [float(part) for part in str(value).replace(";", ",").split(",") if part.strip()]
        except ValueError as exc:
            raise InputError(f"options.{name}", value, field.expected) from exc
        options[name] = value
    return options
