"""One source for what the add-on shares with the server: its FBX settings (the server's file, byte for byte) and
its options schema (written from server/schema.py)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import build_addon  # noqa: E402


def test_the_addon_carries_the_servers_fbx_settings_unchanged():
    for source, copy in build_addon.SHARED_COPIES.items():
        assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: run build_addon.py"


def test_the_settings_file_imports_nothing_so_it_can_travel():
    tree = ast.parse((ROOT / "server" / "export" / "fbx_settings.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_both_writers_use_the_shared_settings_and_no_copy_of_their_own():
    for writer in (ROOT / "server" / "export" / "blender_fbx.py", ROOT / "addon" / "exporter.py"):
        text = writer.read_text()
        assert "from .fbx_settings import FBX_SETTINGS" in text
        assert "FBX_SETTINGS = " not in text and "apply_scale_options=" not in text


def test_a_build_rewrites_a_stale_copy(tmp_path, monkeypatch):
    source, copy = tmp_path / "source.py", tmp_path / "copy.py"
    source.write_text("FBX_SETTINGS = dict(use_tspace=True)\n")
    copy.write_text("FBX_SETTINGS = dict(use_tspace=False)\n")
    monkeypatch.setattr(build_addon, "SHARED_COPIES", {source: copy})
    monkeypatch.setattr(build_addon, "ROOT", tmp_path)
    monkeypatch.setattr(build_addon, "SCHEMA_COPY", tmp_path / "options_schema.py")
    build_addon.refresh_shared_copies()
    assert copy.read_text() == source.read_text()
    assert (tmp_path / "options_schema.py").read_text() == build_addon.schema_copy_text()


def test_the_addons_options_schema_is_the_servers():
    from server.schema import STAGES, addon_module_text

    assert build_addon.SCHEMA_COPY.read_text() == addon_module_text(), "run build_addon.py to refresh it"
    namespace = {}
    exec(addon_module_text(), namespace)
    for stage in STAGES.values():
        for field in stage.fields:
            copied = namespace["SCHEMA"][stage.name][field.name]
            assert (copied["kind"], copied.get("low"), copied["help"]) == (field.kind, field.low, field.help)


def test_the_addon_properties_take_ranges_and_choices_from_the_schema_copy():
    text = (ROOT / "addon" / "properties.py").read_text()
    assert "from .options_schema import SCHEMA" in text
    for literal in ("min=100, max=500000", "max=64)", '("bottom_centre", "Bottom Centre"', '("prop", "Prop"'):
        assert literal not in text, f"properties.py writes {literal!r} itself"
