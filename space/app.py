"""Hugging Face Space entry point (Gradio SDK, ZeroGPU).

The Space runs this file, and tools import it, so importing it only builds the Blocks (`demo`). It does
not launch anything. Running it as a script launches the app. In the pushed Space, `server/` sits beside
this file (see tools/make_space.py). In the repository it is one folder up.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for root in (HERE, HERE.parent):
    if (root / "server" / "__init__.py").is_file():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        break

# Environment first, before torch or a model library is imported (they read it at import), as the official
# Spaces do. setdefault: a Space variable of the same name wins. ATTN_BACKEND is chosen by
# server/generators/attention.py from what runs here (flash_attn, xformers with kernels, else torch's SDPA).
MODEL_ENVIRONMENT = {
    "SPCONV_ALGO": "native",  # TRELLIS's spconv: no first-call autotuning inside a GPU call
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",  # multi-stage pipelines fragment VRAM otherwise
    "FLEX_GEMM_AUTOTUNE_CACHE_PATH": str(HERE / "autotune_cache.json"),  # TRELLIS.2's FlexGEMM keeps its tuning
}
for key, value in MODEL_ENVIRONMENT.items():
    os.environ.setdefault(key, value)

# The compiled extensions travel as wheels in the Space repo (the build container has no nvcc).
if (HERE / "wheels" / "lock.json").is_file():
    from install_wheels import install_wheels

    WHEELS = install_wheels(HERE / "wheels")

# ZeroGPU's queue holds a single waiting event unless told otherwise; say how many may wait.
QUEUE_SIZE = 16
# Persistent storage, when the Space has it, is mounted at /data; otherwise the workspace is ephemeral.
PERSISTENT = Path("/data")

if not os.environ.get("O3F_WORKSPACE"):
    os.environ["O3F_WORKSPACE"] = str(PERSISTENT / "open3dforge" if PERSISTENT.is_dir() and os.access(PERSISTENT, os.W_OK)
                                      else HERE / "workspace")
os.environ.setdefault("O3F_QUEUE_SIZE", str(QUEUE_SIZE))

from server.api import ForgeApi  # noqa: E402  (after sys.path and the environment are set)
from server.app import build_app, launch_options  # noqa: E402

from server import gpu  # noqa: E402
from server.generators.registry import serve_models, served_names  # noqa: E402

# On ZeroGPU the served models load here, at module level (ZeroGPU moves them to CUDA for each GPU call), never
# inside a GPU call; elsewhere they load lazily, one at a time.
SERVED = serve_models(served_names(dict(os.environ), gpu.on_zero_gpu()))
for model_name, outcome in SERVED.items():
    print(f"Open3DForge: {model_name}: {outcome}", flush=True)

api = ForgeApi()
demo = build_app(api)  # build_app calls demo.queue(max_size=api.settings.queue_size)

if __name__ == "__main__":
    demo.launch(**launch_options(api))
