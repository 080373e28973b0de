"""What the CUDA bake engine needs at run time: torch with a GPU, CuPy, and nvdiffrast's CUDA rasterizer."""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import threading

_lock = threading.Lock()
_context = None


def cuda_engine_status() -> tuple[bool, str]:
    """(True, the GPU's name) when the CUDA engine can run here, else (False, why not)."""
    for module, hint in (("torch", "PyTorch"), ("cupy", "CuPy (cupy-cuda12x or cupy-cuda13x)"),
                         ("nvdiffrast", "nvdiffrast (see vendor/README.md, bake engine)")):
        if importlib.util.find_spec(module) is None:
            return False, f"{hint} is not installed"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU on this server"
    return True, torch.cuda.get_device_name(0)


def _plugin_folders() -> list[str]:
    from torch.utils.cpp_extension import _get_build_directory

    root = os.path.dirname(_get_build_directory("nvdiffrast_plugin", verbose=False))
    return sorted(glob.glob(os.path.join(root, "nvdiffrast_plugin*")))


def rasterizer():
    """nvdiffrast's torch module and one shared CUDA rasterizer context.

    nvdiffrast builds its plugin on first use; torch 2.11's extension loader no longer puts the build
    folder on sys.path, so the import that follows the build fails until the folder is added.
    """
    global _context
    import nvdiffrast.torch as dr

    with _lock:
        if _context is None:
            try:
                _context = dr.RasterizeCudaContext()
            except ModuleNotFoundError as missing:
                if "nvdiffrast_plugin" not in str(missing):
                    raise
                sys.path.extend(folder for folder in _plugin_folders() if folder not in sys.path)
                _context = dr.RasterizeCudaContext()
    return dr, _context
