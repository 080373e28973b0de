"""The add-on's one connection to an Open3DForge server, through gradio_client; no bpy here, so it runs anywhere.

ENDPOINTS writes each endpoint's arguments once, in the server's order (server/api.py); `connect` makes the one
kind of gradio Client everyone uses (timeouts, token, owner key, download folder); ForgeClient calls endpoints and
waits (demo.py, tests); addon/jobs.py's worker submits through the same two and follows progress.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The header that carries a client's owner key (server/owners.py reads it; a test keeps the two equal).
OWNER_HEADER = "x-o3f-owner"
DEFAULT_TIMEOUT_S = 30.0

# name -> ((argument, default), ...) in the server's order. Required arguments have no default (the inputs).
_REQUIRED = object()
ENDPOINTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "health": (), "quota": (), "presets": (), "assets": (),
    "asset": (("asset_id", _REQUIRED),),
    "cancel": (("asset_id", _REQUIRED),),
    "generate": (("images", _REQUIRED), ("name", ""), ("generator", "auto"), ("views", ""), ("preset", ""),
                 ("seed", 0), ("options", {})),
    "generate_text": (("prompt", _REQUIRED), ("name", ""), ("options", {})),
    "import_mesh": (("mesh", _REQUIRED), ("name", ""), ("options", {})),
    "scene": (("image", _REQUIRED), ("name", ""), ("options", {})),
    "postprocess": (("asset_id", _REQUIRED), ("options", {})),
    "rig": (("asset_id", _REQUIRED), ("options", {})),
    "bake": (("asset_id", _REQUIRED), ("options", {})),
    "export": (("asset_id", _REQUIRED), ("engine", "ue5"), ("options", {})),
    "forge": (("images", None), ("name", ""), ("views", ""), ("preset", ""), ("options", {})),
}
_FILES = {"images", "mesh", "image"}  # arguments that are uploads: local paths become gradio file payloads


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


def words(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def arguments(endpoint: str, values: dict) -> list:
    """The positional arguments of one call from named values: defaults filled in, options as JSON text, views
    joined, local files made uploads. Unknown names and missing inputs are refused (a bug in the caller)."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint {endpoint!r}: expected one of {', '.join(ENDPOINTS)}")
    known = {name for name, _ in ENDPOINTS[endpoint]}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{endpoint}: unknown argument {unknown[0]!r}; it takes {', '.join(known) or 'nothing'}")
    out = []
    for name, default in ENDPOINTS[endpoint]:
        if name not in values and default is _REQUIRED:
            raise ValueError(f"{endpoint}: the argument {name!r} is required")
        value = values.get(name, default)
        if name == "options" and not isinstance(value, str):
            value = json.dumps(value)
        elif name == "views" and not isinstance(value, str):
            value = ",".join(value)
        elif name in _FILES and value is not None:
            value = _uploads(value)
        out.append(value)
    return out


def _uploads(value):
    from gradio_client import handle_file

    if isinstance(value, (list, tuple)):
        return [handle_file(str(item)) for item in value]
    return handle_file(str(value))


def connect(server: str, *, token: str = "", owner_key: str = "", download_dir: str | Path = "",
            timeout: float = DEFAULT_TIMEOUT_S):
    """A gradio Client for `server` (URL or Space id): requests bounded by `timeout`, the token and owner key sent
    with every request, files downloaded into `download_dir`. Raises what gradio_client raises."""
    from gradio_client import Client  # imported here so importing this module never needs it

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from a game developer's Blender
    kwargs: dict = {"verbose": False, "httpx_kwargs": {"timeout": timeout}}
    if token:
        kwargs["token"] = token
    if owner_key:
        kwargs["headers"] = {OWNER_HEADER: owner_key}
    if download_dir:
        Path(download_dir).mkdir(parents=True, exist_ok=True)
        kwargs["download_files"] = str(download_dir)
    return Client(server, **kwargs)


class ForgeClient:
    """One connection that waits for each answer: a local URL, a Space id such as user/space, or a Space URL."""

    def __init__(self, server: str, token: str | None = None, download_dir: str | Path | None = None,
                 owner_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, job_timeout: float = 1800.0):
        self.job_timeout = job_timeout
        try:
            self._client = connect(server, token=token or "", owner_key=owner_key or "",
                                   download_dir=download_dir or "", timeout=timeout)
        except Exception as exc:
            raise ServerError(f"cannot reach {server}: {words(exc)}") from exc

    def call(self, endpoint: str, **values):
        """Call one endpoint and wait for its answer (at most job_timeout seconds)."""
        positional = arguments(endpoint, values)
        try:
            return self._client.submit(*positional, api_name=f"/{endpoint}").result(timeout=self.job_timeout)
        except Exception as exc:
            raise ServerError(words(exc)) from exc

    def _json(self, endpoint: str, **values):
        return json.loads(self.call(endpoint, **values))

    def _asset(self, endpoint: str, **values) -> AssetResult:
        record, path = self.call(endpoint, **values)
        return AssetResult(json.loads(record), Path(path))

    def health(self) -> dict:
        return self._json("health")

    def quota(self) -> dict:
        return self._json("quota")

    def presets(self) -> dict:
        return self._json("presets")

    def assets(self) -> list[dict]:
        return self._json("assets")

    def asset(self, asset_id: str) -> dict:
        return self._json("asset", asset_id=asset_id)

    def cancel(self, asset_id: str) -> dict:
        return self._json("cancel", asset_id=asset_id)

    def generate(self, images, **values) -> AssetResult:
        return self._asset("generate", images=list(images), **values)

    def postprocess(self, asset_id: str, options: dict | None = None) -> dict:
        return self._json("postprocess", asset_id=asset_id, options=options or {})

    def rig(self, asset_id: str, options: dict | None = None) -> dict:
        return self._json("rig", asset_id=asset_id, options=options or {})

    def bake(self, asset_id: str, options: dict | None = None) -> dict:
        return self._json("bake", asset_id=asset_id, options=options or {})

    def export(self, asset_id: str, engine: str = "ue5", options: dict | None = None) -> AssetResult:
        return self._asset("export", asset_id=asset_id, engine=engine, options=options or {})

    def forge(self, images=None, **values) -> AssetResult:
        """The whole chain in one call; the file is the engine zip."""
        return self._asset("forge", images=list(images) if images else None, **values)

    def import_mesh(self, mesh, **values) -> AssetResult:
        return self._asset("import_mesh", mesh=mesh, **values)

    def scene(self, image, **values) -> AssetResult:
        return self._asset("scene", image=image, **values)
