"""Start `python -m server` as a subprocess on a free port and wait until it answers (demo, tests)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(workspace: Path, extra_env: dict | None = None, timeout: float = 90.0):
    """Yield the base URL of a server started with the documented command; stop it afterwards."""
    with server_process(workspace, extra_env, timeout) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(workspace: Path, extra_env: dict | None = None, timeout: float = 90.0):
    """Yield (base URL, the subprocess) so a test can also kill it; stop it afterwards."""
    port = free_port()
    env = {**os.environ, "O3F_WORKSPACE": str(workspace), "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    workspace.mkdir(parents=True, exist_ok=True)
    log = open(workspace / f"server-{port}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                headers = {"x-o3f-token": env["O3F_TOKEN"]} if env.get("O3F_TOKEN") else {}
                if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in {timeout} s: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
