"""Runtime settings read from the environment, with the embedded local defaults."""

import os
from dataclasses import dataclass
from pathlib import Path


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r}: expected an integer") from exc


@dataclass(frozen=True)
class Settings:
    workspace: Path
    daily_gpu_seconds: int
    max_image_pixels: int
    max_image_bytes: int
    max_upload_faces: int
    max_upload_bytes: int
    queue_size: int
    heavy_jobs: int


def load_settings() -> Settings:
    """Settings for this process; O3F_* variables override the defaults."""
    workspace = Path(os.environ.get("O3F_WORKSPACE") or "workspace").resolve()
    return Settings(
        workspace=workspace,
        # ZeroGPU PRO gives 40 minutes a day (late 2026).
        daily_gpu_seconds=_int_env("O3F_DAILY_GPU_SECONDS", 40 * 60),
        max_image_pixels=_int_env("O3F_MAX_IMAGE_PIXELS", 4096 * 4096),
        max_image_bytes=_int_env("O3F_MAX_IMAGE_BYTES", 40 * 1024 * 1024),
        max_upload_faces=_int_env("O3F_MAX_UPLOAD_FACES", 2_000_000),
        max_upload_bytes=_int_env("O3F_MAX_UPLOAD_BYTES", 200 * 1024 * 1024),
        queue_size=_int_env("O3F_QUEUE_SIZE", 16),
        # Generate, import, post-process, bake, export, forge and the decimation preview share this many slots;
        # the rest wait in the queue. One by default: two threads inside pymeshlab at once crash the process
        # (a segmentation fault, seen with two forges at once), and each heavy stage already uses every core.
        heavy_jobs=max(1, _int_env("O3F_CONCURRENCY", 1)),
    )
