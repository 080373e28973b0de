"""One source for Blender's FBX settings: the add-on's copy is the server's file, byte for byte."""

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
    build_addon.refresh_shared_copies()
    assert copy.read_text() == source.read_text()
