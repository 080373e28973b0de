"""The "Open3DForge" N-panel in the 3D View sidebar: draw code only (state comes from operators.STATE)."""

import bpy

from . import importer
from .operators import STATE


HISTORY_ROWS = 15


class _Panel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Open3DForge"


def _eta(seconds) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class OPEN3DFORGE_PT_main(_Panel, bpy.types.Panel):
    bl_label = "Open3DForge"

    def draw(self, context):
        layout = self.layout
        if not bpy.app.online_access:
            layout.label(text="Online access is off (Preferences > System > Network)", icon='ERROR')
        if STATE["running"]:
            box = layout.box()
            box.label(text=f"{STATE['title']}: {STATE['stage']}", icon='SORTTIME')
            box.progress(factor=STATE["percent"] / 100.0, type='BAR', text=f"{STATE['percent']:.0f} %")
            if STATE["status"]:
                box.label(text=STATE["status"])
            details = []
            if STATE["queue_position"]:
                details.append(f"queue position {STATE['queue_position']}")
            if STATE["eta_s"] is not None:
                details.append(f"ETA {_eta(STATE['eta_s'])}")
            if details:
                box.label(text=", ".join(details))
            box.operator("open3dforge.cancel", icon='CANCEL')
        elif STATE["error"]:
            box = layout.box()
            box.label(text="Last error:", icon='ERROR')
            for line in _wrap(STATE["error"], 48):
                box.label(text=line)


def _wrap(text: str, width: int) -> list:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines[:6]


class OPEN3DFORGE_PT_connection(_Panel, bpy.types.Panel):
    bl_label = "Connection"
    bl_parent_id = "OPEN3DFORGE_PT_main"

    def draw(self, context):
        layout = self.layout
        layout.operator("open3dforge.connect", icon='URL')
        health = STATE["health"]
        if not health:
            layout.label(text="Not connected yet")
            return
        layout.label(text=f"Server {health.get('version', '?')} on {health.get('device', '?')}", icon='CHECKMARK')
        for info in health.get("generators") or []:  # [{name, available, reason}, ...] from `health`
            row = layout.row()
            row.label(text=str(info.get("name", "?")), icon='CHECKMARK' if info.get("available") else 'X')
            if not info.get("available") and info.get("reason"):
                row.label(text=str(info["reason"])[:60])
        engines = {row.get("name"): row for row in health.get("bake_engines") or [] if isinstance(row, dict)}
        if "auto" in engines:  # "uses cuda here" or "uses cpu here"
            layout.label(text=f"Bake: {engines['auto'].get('reason', '?')}", icon='TEXTURE')
        quota = STATE["quota"] or {}
        if quota.get("error"):
            layout.label(text=f"Quota: {quota['error']}", icon='ERROR')
        elif quota:
            left = quota.get("left_seconds")
            layout.label(text=f"GPU quota left: {left} s" if left is not None else f"GPU quota: {quota}")


class OPEN3DFORGE_PT_input(_Panel, bpy.types.Panel):
    bl_label = "Input"
    bl_parent_id = "OPEN3DFORGE_PT_main"

    def draw(self, context):
        settings = context.scene.open3dforge
        layout = self.layout
        layout.prop(settings, "use_selection")
        column = layout.column()
        column.enabled = not settings.use_selection
        for slot in (settings.image_1, settings.image_2, settings.image_3, settings.image_4):
            row = column.row(align=True)
            row.prop(slot, "view", text="")
            row.prop(slot, "filepath", text="")
        column.prop(settings, "prompt")


class OPEN3DFORGE_PT_generate(_Panel, bpy.types.Panel):
    bl_label = "Generate"
    bl_parent_id = "OPEN3DFORGE_PT_main"

    def draw(self, context):
        settings = context.scene.open3dforge
        layout = self.layout
        for name in ("generator", "quality", "must_stand", "preset", "seed", "asset_name", "kind"):
            layout.prop(settings, name)
        if settings.kind == "character":
            layout.prop(settings, "rig_method")
        layout.prop(settings, "options")
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("open3dforge.forge", icon='PLAY')
        row.operator("open3dforge.generate")
        layout.operator("open3dforge.scene", icon='SCENE_DATA')


class OPEN3DFORGE_PT_postprocess(_Panel, bpy.types.Panel):
    bl_label = "Post-process"
    bl_parent_id = "OPEN3DFORGE_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        settings = context.scene.open3dforge
        layout = self.layout
        layout.prop(settings, "override_postprocess")
        column = layout.column()
        column.enabled = settings.override_postprocess
        for name in ("target_triangles", "texture_size", "lod1_ratio", "lod2_ratio", "collision", "max_hulls",
                     "pivot", "real_height"):
            column.prop(settings, name)
        layout.operator("open3dforge.postprocess")


class OPEN3DFORGE_PT_rig(_Panel, bpy.types.Panel):
    bl_label = "Rig"
    bl_parent_id = "OPEN3DFORGE_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        layout.label(text="Characters (Kind: Character) get the UE5 Mannequin", icon='ARMATURE_DATA')
        layout.label(text="skeleton and skin weights when forged.")
        layout.operator("open3dforge.test_pose", icon='POSE_HLT')


class OPEN3DFORGE_PT_export(_Panel, bpy.types.Panel):
    bl_label = "Export"
    bl_parent_id = "OPEN3DFORGE_PT_main"

    def draw(self, context):
        settings = context.scene.open3dforge
        layout = self.layout
        layout.prop(settings, "engine")
        layout.prop(settings, "output_folder")
        layout.operator("open3dforge.export", icon='EXPORT')
        if STATE["last_zip"]:
            layout.label(text=STATE["last_zip"])


class OPEN3DFORGE_PT_history(_Panel, bpy.types.Panel):
    bl_label = "History"
    bl_parent_id = "OPEN3DFORGE_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        assets = STATE["assets"] or []
        if not assets:
            layout.label(text="No assets listed: Connect / Refresh")
        for row_data in [a for a in assets if isinstance(a, dict)][:HISTORY_ROWS]:
            row = layout.row()
            row.label(text=f"{row_data.get('name') or '?'} ({row_data.get('status') or '?'})")
            asset_id = row_data.get("asset_id")
            if isinstance(asset_id, str) and asset_id:  # a row the server could not name cannot be imported
                row.operator("open3dforge.import_asset", text="", icon='IMPORT').asset_id = asset_id
        if len(assets) > HISTORY_ROWS:
            layout.label(text=f"... and {len(assets) - HISTORY_ROWS} older")
        imported = importer.asset_collections()
        if imported:
            layout.label(text=f"In this file: {', '.join(c.name for c in imported[-5:])}")


CLASSES = (OPEN3DFORGE_PT_main, OPEN3DFORGE_PT_connection, OPEN3DFORGE_PT_input, OPEN3DFORGE_PT_generate,
           OPEN3DFORGE_PT_postprocess, OPEN3DFORGE_PT_rig, OPEN3DFORGE_PT_export, OPEN3DFORGE_PT_history)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
