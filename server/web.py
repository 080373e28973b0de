"""What every Gradio function of the server shares: domain errors as gr.Error without server paths, files handed
out as one-off copies, progress, and the launch options. No endpoint or control is defined here."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder as gradio_upload_folder

from .errors import Cancelled, ForgeError, public_message
from .mcp_tools import install_schema_fix

log = logging.getLogger("open3dforge")


# Folders whose paths never reach a client (build_app adds the workspace): see errors.public_message.
SERVER_ROOTS = [tempfile.gettempdir(), gradio_upload_folder(), str(Path(__file__).resolve().parent.parent),
                sys.prefix, sys.base_prefix, str(Path.home())]


def endpoint(fn):
    """Turn domain errors into gr.Error so clients see the message (less server paths); log anything unexpected."""

    def shown(exc: BaseException) -> str:
        return public_message(str(exc), SERVER_ROOTS)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Cancelled as exc:
            raise gr.Error(shown(exc), title="Cancelled") from exc
        except ForgeError as exc:
            # A quota refusal keeps ZeroGPU's own title so clients can tell it apart.
            raise gr.Error(shown(exc), title=getattr(exc, "title", "Open3DForge")) from exc
        except gr.Error:
            raise
        except Exception as exc:
            log.exception("unexpected failure in %s", fn.__name__)
            raise gr.Error(f"internal error in {fn.__name__}: {type(exc).__name__}: {shown(exc)}",
                           title="Open3DForge internal error") from exc

    return wrapper


def progress_of(progress: gr.Progress):
    return lambda fraction, message: progress(fraction, desc=message)


UPLOAD_CACHE = (3600, 24 * 3600)  # (how often, how old) in seconds


def mcp_enabled() -> bool:
    """Serve the endpoints as MCP tools too (at /gradio_api/mcp/) where gradio[mcp] is installed, unless
    O3F_MCP=0."""
    return os.environ.get("O3F_MCP", "1") != "0" and importlib.util.find_spec("mcp") is not None


def launch_options(api) -> dict:
    """What every launch of the app passes (python -m server and the Space): uploads over the limit are refused
    by Gradio before they reach an endpoint. The workspace is not among Gradio's allowed paths: no route serves
    its files; a client gets only the copies its own requests returned (see deliver)."""
    mcp = mcp_enabled()
    if mcp:
        install_schema_fix()
    return {"show_error": True, "max_file_size": api.settings.max_upload_bytes, "mcp_server": mcp}


OUTBOX_AGE_S = 600  # Gradio copies a returned file into its cache as the request ends; ours can go after that


def deliver(path: str) -> str:
    """A copy of an asset's file where Gradio may take it from (its upload folder), for this response only.

    Gradio serves a returned file from its cache under a digest of the content, so only the client that got the
    response knows the address. Copies older than OUTBOX_AGE_S are removed on the way.
    """
    outbox = Path(gradio_upload_folder()) / "o3f-outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTBOX_AGE_S
    for old in outbox.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass
    folder = Path(tempfile.mkdtemp(dir=outbox))
    target = folder / Path(path).name
    shutil.copyfile(path, target)
    return str(target)
