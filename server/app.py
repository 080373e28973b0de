"""The Gradio app: the named API endpoints (routes.py) and the web UI (ui.py) in one Blocks; wiring only."""

from __future__ import annotations

import gradio as gr

from .api import ForgeApi
from .owners import on_space
from .routes import add_routes
from .ui import build_ui
from .web import SERVER_ROOTS, UPLOAD_CACHE, launch_options

__all__ = ["build_app", "launch_options"]  # launch_options: what python -m server and the Space launch with


def build_app(api: ForgeApi) -> gr.Blocks:
    SERVER_ROOTS.append(str(api.settings.workspace))
    heavy = {"concurrency_limit": api.settings.heavy_jobs, "concurrency_id": "heavy"}  # one limit for them all
    # Uploads land in Gradio's cache: files older than a day are deleted every hour (the assets keep their copies).
    with gr.Blocks(title="Open3DForge", delete_cache=UPLOAD_CACHE) as app:
        gr.Markdown("# Open3DForge\nConcept images, a prompt or a mesh to game-ready assets for UE5, Unity and Godot.")
        if on_space():  # signed-in visitors own their assets across visits (server/owners.py)
            gr.LoginButton()
        build_ui(api, heavy)
        add_routes(api, heavy)
    app.queue(max_size=api.settings.queue_size)
    return app
