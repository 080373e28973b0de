"""The one options schema: its fields check what they say, the README's tables are its own, and every endpoint's
refusal of a bad option is the schema's words (so no stage setting has a second set of rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.api import ForgeApi
from server.config import load_settings
from server.errors import InputError
from server.schema import BAKE, EXPORT, GENERATE, POSTPROCESS, RIG, STAGES, markdown_tables, readme_section

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_tables_are_the_schemas():
    assert readme_section((ROOT / "README.md").read_text()) == markdown_tables(), "run python -m server.schema"


@pytest.mark.parametrize("stage", list(STAGES.values()), ids=list(STAGES))
def test_every_default_passes_its_own_check_and_every_bound_is_enforced(stage):
    for field in stage.fields:
        if field.default is not None or field.nullable:
            field.check(field.default)
        if field.kind in ("int", "float"):
            with pytest.raises(InputError, match=f"options.{field.name}=.*expected {re.escape(field.expected)}"):
                field.check(field.high * 2 + 1)
            with pytest.raises(InputError):
                field.check(float("nan"))
            with pytest.raises(InputError):
                field.check(True)
        if field.kind == "choice":
            with pytest.raises(InputError, match=re.escape(f"expected one of {', '.join(field.choices)}")):
                field.check("nonsense")
            assert field.check(field.choices[0].upper()) == field.choices[0]  # choices are case-insensitive
        if field.kind == "bool":
            with pytest.raises(InputError, match="expected true or false"):
                field.check("yes")


def test_the_default_preset_is_what_the_schema_calls_default():
    from server.presets import DEFAULT_PRESET, get_preset

    preset = get_preset(DEFAULT_PRESET)
    for stage in (GENERATE, POSTPROCESS):
        merged = stage.merged({}, preset)
        assert merged == {field.name: field.default for field in stage.fields}, stage.name


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    import os

    os.environ["O3F_WORKSPACE"] = str(tmp_path_factory.mktemp("schema") / "workspace")
    try:
        return ForgeApi(load_settings())
    finally:
        del os.environ["O3F_WORKSPACE"]


@pytest.fixture(scope="module")
def box(api, tmp_path_factory):
    import trimesh

    path = tmp_path_factory.mktemp("schema_box") / "box.glb"
    trimesh.creation.box(extents=(0.4, 0.4, 0.4)).export(path)
    return json.loads(api.import_mesh(str(path), "Box")[0])["asset_id"]


def _out_of_range(field):
    return "nonsense" if field.kind in ("choice", "ratios", "point", "height") else "yes" if field.kind == "bool" \
        else field.high * 2 + 1 if field.kind in ("int", "float") else None


BY_ENDPOINT = [(stage, field) for stage in (POSTPROCESS, BAKE, RIG, EXPORT) for field in stage.fields
               if _out_of_range(field) is not None]


@pytest.mark.parametrize("stage,field", BY_ENDPOINT, ids=[f"{s.name}.{f.name}" for s, f in BY_ENDPOINT])
def test_each_endpoint_refuses_in_the_schemas_words(api, box, stage, field):
    """A bad value through the endpoint is refused with exactly the schema's expectation, before any work."""
    value = _out_of_range(field)
    call = {"postprocess": lambda o: api.postprocess(box, o), "bake": lambda o: api.bake(box, o),
            "rig": lambda o: api.rig(box, o), "export": lambda o: api.export(box, "ue5", o)}[stage.name]
    with pytest.raises(InputError) as refused:
        call(json.dumps({field.name: value}))
    try:
        field.check(value)
    except InputError as expected:
        assert refused.value.expected == expected.expected
    else:
        pytest.fail(f"{field.name}={value!r} passed the schema")


def test_no_stage_setting_is_checked_by_a_rule_of_its_own_outside_the_schema():
    """A range the schema states ('from 100 to 500000') written again in another server module is a second rule
    that can drift from the first: every stage must check through the schema's field."""
    import ast

    from server.schema import SEED, _plain

    ranges = {f"from {_plain(f.low)} to {_plain(f.high)}" for stage in STAGES.values() for f in stage.fields
              if f.low is not None} | {f"from {_plain(SEED.low)} to {_plain(SEED.high)}"}
    root = Path(__file__).resolve().parents[1] / "server"
    found = []
    for path in root.rglob("*.py"):
        if path.name == "schema.py" or "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{path.name}:{node.lineno}: {text}" for text in ranges if text in node.value]
    assert found == []
