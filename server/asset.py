"""Asset store: one folder per asset under the workspace, asset.json as its record, atomic writes."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import Cancelled, ForgeError, InputError
from .owners import LOCAL

ASSET_ID_PATTERN = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}$")
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
KINDS = ("prop", "character", "environment")
RECORD = "asset.json"

# The asset folder's layout: every file a stage writes is named here and nowhere else (relative to the folder,
# as the record's stage outputs list them).
HIGH_POLY = "high_poly.glb"
ATTRIBUTES = "attributes.npz"  # a generator's attribute volume, read by the bake instead of vertex colours
LODS = "game/lods.npz"
HULLS = "game/hulls.npz"
POSTPROCESS_STATE = "game/postprocess.json"  # settings, transform, deviation and report of the last postprocess
RIG = "rig.npz"  # the rig stage's skeleton and skin weights for LOD0 (RigResult.save)
STAGE_CACHE = "cache"
EXPORTS = "exports"
DECIMATE_PREVIEW = "preview_decimated.glb"
PREVIEW_PICTURE = "views/preview.png"


def texture_file(map_name: str) -> str:
    return f"textures/{map_name}.png"


def cutout_file(view: str) -> str:
    return f"cutout_{view}.png"


def input_file(index: int, view: str, suffix: str) -> str:
    return f"inputs/{index}_{view}{suffix or '.png'}"


def upload_file(suffix: str) -> str:
    return f"inputs/upload{suffix}"


def scene_input_file(suffix: str) -> str:
    return f"inputs/0_scene{suffix or '.png'}"


def object_crop_file(name: str) -> str:
    """A scene object's crop of the scene picture."""
    return f"objects/{name}.png"


def view_file(name: str) -> str:
    """A mesh or picture made for inspection (the web UI's viewer)."""
    return f"views/{name}"

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(asset_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(asset_id, threading.Lock())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=False).encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def validate_asset_id(asset_id: Any) -> str:
    if not isinstance(asset_id, str) or not ASSET_ID_PATTERN.fullmatch(asset_id):
        raise InputError("asset_id", asset_id, "an id like 20261122T004512-1a2b3c4d as returned by generate")
    return asset_id


def validate_file_name(name: str) -> str:
    """A relative path of plain names inside an asset folder (no '..', no absolute paths)."""
    parts = name.split("/")
    if not parts or any(not FILE_NAME_PATTERN.fullmatch(p) or p in (".", "..") for p in parts):
        raise InputError("file name", name, "letters, digits, '_', '-', '.' and '/' between parts")
    return name


def owner_of_record(record: dict) -> str:
    """Whose an asset is; records written before owners existed belong to the local owner."""
    return record.get("owner") or LOCAL


def _read_or_empty(asset: "Asset") -> dict:
    try:
        return asset.read()
    except ForgeError:
        return {}


@dataclass
class Asset:
    """Handle on one asset folder; every change to asset.json goes through update()."""

    asset_id: str
    folder: Path

    @property
    def record_path(self) -> Path:
        return self.folder / RECORD

    def read(self) -> dict:
        try:
            with open(self.record_path, "r", encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError as exc:
            raise ForgeError(f"asset {self.asset_id} has no {RECORD}") from exc
        except json.JSONDecodeError as exc:
            raise ForgeError(f"asset {self.asset_id}: {RECORD} is unreadable ({exc})") from exc

    def update(self, change: Callable[[dict], None]) -> dict:
        with _lock_for(self.asset_id):
            record = self.read()
            change(record)
            record["updated"] = now_iso()
            atomic_write_json(self.record_path, record)
            return record

    def path(self, name: str) -> Path:
        validate_file_name(name)
        target = (self.folder / name).resolve()
        if self.folder.resolve() not in target.parents:
            raise InputError("file name", name, "a path inside the asset folder")
        return target

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.path(name)
        atomic_write_bytes(target, data)
        return target

    def write_file(self, name: str, source: Path) -> Path:
        return self.write_bytes(name, Path(source).read_bytes())

    @contextmanager
    def stage(self, stage: str, parameters: dict) -> Iterator[dict]:
        """Record one stage run: parameters, outputs, wall time, GPU seconds, status and error.

        The body fills the yielded dict's "outputs" (and "gpu_seconds" when it used a GPU).
        """
        started = time.perf_counter()
        run = {"stage": stage, "parameters": parameters, "started": now_iso(), "status": "running",
               "outputs": {}, "wall_seconds": 0.0, "gpu_seconds": 0.0, "error": None}

        def begin(record: dict) -> None:
            record.setdefault("stages", []).append(dict(run))
            record["status"] = "running"

        self.update(begin)
        index = len(self.read()["stages"]) - 1
        status, error = "ok", None
        try:
            yield run
        except Cancelled as exc:
            status, error = "cancelled", str(exc) or "cancelled by the user"
            raise
        except ForgeError as exc:
            status, error = "error", str(exc)
            raise
        except Exception as exc:  # an unexpected failure is still recorded before it propagates
            status, error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            run.update(status=status, error=error, wall_seconds=round(time.perf_counter() - started, 3))

            def finish(record: dict) -> None:
                record["stages"][index] = dict(run)
                record["status"] = {"ok": "ready"}.get(status, status)
                if status == "ok":
                    record.setdefault("outputs", {}).update(run["outputs"])

            self.update(finish)


class AssetStore:
    """All assets of one workspace; nothing outside the workspace is read or written."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def new_id(self) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return f"{stamp}-{secrets.token_hex(4)}"

    def create(self, *, name: str, kind: str, generator: str, seed: int, parameters: dict,
               inputs: list[dict] | None = None, asset_id: str | None = None, owner: str = LOCAL) -> Asset:
        if kind not in KINDS:
            raise InputError("kind", kind, f"one of {', '.join(KINDS)}")
        asset_id = validate_asset_id(asset_id) if asset_id else self.new_id()
        folder = self.root / asset_id
        try:
            folder.mkdir(parents=True)
        except FileExistsError as exc:
            raise InputError("asset_id", asset_id, "an id that is not in use yet") from exc
        record = {
            "asset_id": asset_id, "owner": owner, "name": name, "kind": kind, "created": now_iso(),
            "updated": now_iso(),
            "status": "created", "generator": generator, "seed": seed, "parameters": parameters,
            "inputs": inputs or [], "stages": [], "outputs": {},
        }
        atomic_write_json(folder / RECORD, record)
        return Asset(asset_id, folder)

    def discard(self, asset: Asset) -> None:
        """Remove an asset that was never made (its input was refused): renamed away first, so no reader sees
        it half-deleted."""
        doomed = self.root / f".discarded-{asset.asset_id}-{secrets.token_hex(4)}"
        asset.folder.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def open(self, asset_id: Any, owner: str = LOCAL) -> Asset:
        """The asset with this id, if `owner` owns it; another owner's asset is refused as if it did not exist."""
        asset_id = validate_asset_id(asset_id)
        folder = self.root / asset_id
        asset = Asset(asset_id, folder)
        if not (folder / RECORD).is_file() or owner_of_record(_read_or_empty(asset)) != owner:
            raise InputError("asset_id", asset_id, "the id of an existing asset of yours (see assets())")
        return asset

    def mark_interrupted(self) -> list[str]:
        """At start-up: assets a previous process left 'running' were cut off; say so in their records.

        Their finished outputs stay as they were; only the status and the unfinished stage change. The temporary
        files of writes that a killed process never finished (atomic_write_bytes) and half-discarded folders go.
        """
        marked = []
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.name.startswith(".discarded-"):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if not folder.is_dir() or not ASSET_ID_PATTERN.fullmatch(folder.name):
                continue
            for leftover in folder.rglob(".*.tmp"):
                leftover.unlink(missing_ok=True)
            asset = Asset(folder.name, folder)
            try:
                status = asset.read().get("status")
            except ForgeError:
                continue
            if status not in ("running", "created"):
                continue

            def interrupt(record: dict) -> None:
                for run in record.get("stages", []):
                    if run.get("status") == "running":
                        run["status"] = "interrupted"
                        run["error"] = "the server stopped while this stage ran; run it again"
                record["status"] = "interrupted"

            asset.update(interrupt)
            marked.append(folder.name)
        return marked

    def history(self, owner: str = LOCAL, limit: int = 100) -> list[dict]:
        """Summaries of the owner's assets, newest first; a damaged record is listed (to the local owner) as such."""
        rows = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or not ASSET_ID_PATTERN.fullmatch(folder.name):
                continue
            asset = Asset(folder.name, folder)
            try:
                record = asset.read()
            except ForgeError as exc:
                if owner == LOCAL:
                    rows.append({"asset_id": folder.name, "status": "unreadable", "error": str(exc),
                                 "created": ""})
                continue
            if owner_of_record(record) != owner:
                continue
            rows.append({key: record.get(key) for key in
                         ("asset_id", "name", "kind", "status", "generator", "created", "updated", "outputs")})
        rows.sort(key=lambda row: (row.get("created") or "", row["asset_id"]), reverse=True)
        return rows[:limit]
