"""Engine presets (UE5, Unity, Godot) and the writers behind them: FBX via Blender in a subprocess, GLB, preview.

Public API (imported lazily, so `import server.export.naming` needs nothing heavy)::

    from server.export import ExportBundle, export_package
    zip_path = export_package(bundle, "ue5", out_dir)          # <out_dir>/<Name>_UE5.zip
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExportBundle": "package",
    "export_package": "package",
    "check_bundle": "package",
    "read_manifest": "package",
    "render_preview": "preview",
    "write_glb": "gltf",
    "build_glb": "gltf",
    "GltfMaterial": "gltf",
    "GltfNode": "gltf",
    "write_fbx_files": "fbx",
    "FbxFile": "fbx",
    "FbxObject": "fbx",
    "bpy_available": "fbx",
    "import_script": "ue5_script",
    "engine_names": "naming",
    "engine_key": "naming",
    "sanitize_name": "naming",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
