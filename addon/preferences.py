"""Add-on preferences: the server, the Hugging Face token, the default engine, the output folder, timeouts.

The token is a PASSWORD field of the preferences, so it lives with Blender's preferences (userpref.blend)
and never in a scene or a saved .blend; nothing here prints it, and ConnectionSettings leaves it out of its
repr. Workers get a ConnectionSettings copy made on the main thread and never read bpy themselves.
"""

# No `from __future__ import annotations` here: Blender reads the property annotations as objects.
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

DEFAULT_SERVER = "http://127.0.0.1:7860/"

ENGINES = (
    ("ue5", "Unreal Engine 5", "One FBX per LOD with UCX collision, DirectX normal map, ORM texture, import script"),
    ("unity", "Unity", "FBX with LOD0-2 meshes, OpenGL normal map, Unity's packed mask texture"),
    ("godot", "Godot 4", "One GLB with glTF ORM texture and convex collision nodes"),
)

_SPACE_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def server_problem(server: str) -> str | None:
    """Why `server` is neither a Space id (user/space) nor an http(s) URL; None when it is fine."""
    value = server.strip()
    if not value:
        return "Set a server: a Space id such as user/space, or a URL"
    if value.startswith(("http://", "https://")):
        return None if len(value.split("://", 1)[1].strip("/")) else f"{value!r} has no host"
    if "://" in value:
        return f"{value!r}: only http:// and https:// URLs are supported"
    if _SPACE_ID.match(value):
        return None
    return f"{value!r} is neither a Space id such as user/space nor a URL"


class Open3DForgePreferences(bpy.types.AddonPreferences):
    """Where Open3DForge finds its server and how long it waits."""

    bl_idname = __package__  # for the installed extension: bl_ext.<repository>.open3dforge

    server: StringProperty(
        name="Server",
        description=("The Open3DForge server: a Hugging Face Space id such as user/space, "
                     "or a URL such as http://127.0.0.1:7860/"),
        default=DEFAULT_SERVER,
    )
    token: StringProperty(
        name="Hugging Face Token",
        description=("Token for private Spaces and your ZeroGPU quota; kept in Blender's preferences, never "
                     "in a .blend file. Empty: HF_TOKEN or your saved Hugging Face login, if any"),
        subtype='PASSWORD',
        default="",
    )
    owner_key: StringProperty(
        name="Owner Key",
        description=("Makes the assets you create on a shared server yours alone: other clients cannot list, "
                     "change or download them. Made for you at the first connection; keep it to see your "
                     "assets from another Blender"),
        subtype='PASSWORD',
        default="",
    )
    default_engine: EnumProperty(
        name="Default Engine",
        description="The game engine a new export is made for",
        items=ENGINES,
        default="ue5",
    )
    output_folder: StringProperty(
        name="Output Folder",
        description=("Folder for engine zips. Empty: an Open3DForge folder next to the saved .blend file, "
                     "or in the temporary folder for an unsaved file"),
        subtype='DIR_PATH',
        default="",
    )
    request_timeout: IntProperty(
        name="Request Timeout",
        description="Seconds to wait for one answer from the server before giving up on it",
        default=30,
        min=1,
        max=3600,
        soft_max=300,
    )
    job_timeout: IntProperty(
        name="Job Timeout",
        description="Minutes a whole job (generate, post-process, export) may take before it is cancelled",
        default=30,
        min=1,
        max=24 * 60,
        soft_max=240,
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        box = layout.box()
        box.label(text="Connection", icon='URL')
        box.prop(self, "server")
        if (problem := server_problem(self.server)) is not None:
            box.label(text=problem, icon='ERROR')
        box.prop(self, "token")
        if not self.token:
            box.label(text="No token set: HF_TOKEN or your saved Hugging Face login is used, if any", icon='INFO')
        box.prop(self, "owner_key")
        if not bpy.app.online_access:
            box.label(text="Online access is off (Preferences > System > Network): Open3DForge cannot "
                           "reach a server until it is allowed", icon='ERROR')

        box = layout.box()
        box.label(text="Export", icon='EXPORT')
        box.prop(self, "default_engine")
        box.prop(self, "output_folder")

        box = layout.box()
        box.label(text="Timeouts", icon='TIME')
        box.prop(self, "request_timeout", text="Request Timeout (s)")
        box.prop(self, "job_timeout", text="Job Timeout (min)")


@dataclass(frozen=True)
class ConnectionSettings:
    """A plain copy of the preferences for a worker thread; its repr never shows the token."""

    server: str
    token: str = field(default="", repr=False)
    owner_key: str = field(default="", repr=False)
    request_timeout: float = 30.0  # seconds
    job_timeout: float = 1800.0  # seconds

    @property
    def has_token(self) -> bool:
        return bool(self.token)


def get_preferences(context=None) -> Open3DForgePreferences:
    """The add-on's preferences; raises RuntimeError naming the add-on when it is not enabled."""
    context = context if context is not None else bpy.context
    addon = context.preferences.addons.get(__package__)
    if addon is None or addon.preferences is None:
        raise RuntimeError(f"the Open3DForge add-on ({__package__}) is not enabled")
    return addon.preferences


def connection_settings(context=None) -> ConnectionSettings:
    """Copies what a worker needs out of the preferences (call on the main thread); makes the owner key once."""
    prefs = get_preferences(context)
    if not prefs.owner_key.strip():
        prefs.owner_key = secrets.token_urlsafe(24)
    return ConnectionSettings(
        server=prefs.server.strip(),
        token=prefs.token.strip(),
        owner_key=prefs.owner_key.strip(),
        request_timeout=float(prefs.request_timeout),
        job_timeout=60.0 * prefs.job_timeout,
    )


def output_directory(context=None) -> str:
    """The absolute folder engine zips go to (see output_folder); not created here."""
    prefs = get_preferences(context)
    if prefs.output_folder.strip():
        return os.path.normpath(bpy.path.abspath(prefs.output_folder.strip()))
    if bpy.data.filepath:
        return os.path.join(os.path.dirname(bpy.data.filepath), "Open3DForge")
    return os.path.join(tempfile.gettempdir(), "Open3DForge")


_CLASSES = (Open3DForgePreferences,)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
