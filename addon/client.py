"""Talks to an Open3DForge server through gradio_client; no bpy here, so it runs and tests anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


# The header that carries a client's owner key (server/owners.py reads it; a test keeps the two equal).
OWNER_HEADER = "x-o3f-owner"


class ServerError(Exception):
    """The server refused or failed a call; the message is the server's own words."""


@dataclass
class AssetResult:
    """An endpoint's structured answer and the file it returned."""

    record: dict
    file: Path

    @property
    def asset_id(self) -> str:
        return self.record["asset_id"]


def _server_words(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


class ForgeClient:
    """One connection to a server: a local URL, a Space id such as user/space, or a Space URL."""

    def __init__(self, server: str, token: str | None = None, download_dir: str | Path | None = None,
                 owner_key: str | None = None):
        from gradio_client import Client  # imported here so importing this module never needs it

        kwargs: dict = {"verbose": False}
        if token:
            kwargs["token"] = token
        if owner_key:
            kwargs["headers"] = {OWNER_HEADER: owner_key}
        if download_dir:
            kwargs["download_files"] = str(download_dir)
        try:
            self._client = Client(server, **kwargs)
        except Exception as exc:
            raise ServerError(f"cannot reach {server}: {_server_words(exc)}") from exc

    def _call(self, endpoint: str, *args):
        try:
            return self._client.predict(*args, api_name=f"/{endpoint}")
        except Exception as exc:
            raise ServerError(_server_words(exc)) from exc

    def health(self) -> dict:
        return json.loads(self._call("health"))

    def quota(self) -> dict:
        return json.loads(self._call("quota"))

    def presets(self) -> dict:
        return json.loads(self._call("presets"))

    def assets(self) -> list[dict]:
        return json.loads(self._call("assets"))

    def asset(self, asset_id: str) -> dict:
        return json.loads(self._call("asset", asset_id))

    def cancel(self, asset_id: str) -> dict:
        return json.loads(self._call("cancel", asset_id))

    def generate(self, images: Sequence[str | Path], *, name: str = "", generator: str = "auto",
                 views: Sequence[str] = (), preset: str = "", seed: int = 0, options: dict | None = None) -> AssetResult:
        from gradio_client import handle_file

        files = [handle_file(str(path)) for path in images]
        record, glb = self._call("generate", files, name, generator, ",".join(views), preset, seed,
                                 json.dumps(options or {}))
        return AssetResult(json.loads(record), Path(glb))

    def postprocess(self, asset_id: str, options: dict | None = None) -> dict:
        return json.loads(self._call("postprocess", asset_id, json.dumps(options or {})))

    def bake(self, asset_id: str, options: dict | None = None) -> dict:
        return json.loads(self._call("bake", asset_id, json.dumps(options or {})))

    def export(self, asset_id: str, engine: str = "ue5", options: dict | None = None) -> AssetResult:
        record, package = self._call("export", asset_id, engine, json.dumps(options or {}))
        return AssetResult(json.loads(record), Path(package))

    def forge(self, images: Sequence[str | Path], *, name: str = "", views: Sequence[str] = (), preset: str = "",
              options: dict | None = None) -> AssetResult:
        """The whole chain in one call; the file is the engine zip."""
        from gradio_client import handle_file

        files = [handle_file(str(path)) for path in images]
        record, package = self._call("forge", files, name, ",".join(views), preset, json.dumps(options or {}))
        return AssetResult(json.loads(record), Path(package))

    def import_mesh(self, mesh: str | Path, *, name: str = "", options: dict | None = None) -> AssetResult:
        from gradio_client import handle_file

        record, glb = self._call("import_mesh", handle_file(str(mesh)), name, json.dumps(options or {}))
        return AssetResult(json.loads(record), Path(glb))
