"""One Blender process kept warm for the exports: importing bpy (0.3-0.5 s) is paid once, not per export.

The process (server/export/blender_serve.py) takes one job at a time; a job that arrives while it works, or
when it cannot run, goes to a process of its own as before (blender_job.run_blender_job decides). A failed,
crashed or timed-out job takes the warm process down with it; the next export starts a new one.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..child_env import REPO_ROOT, child_env
from ..errors import ForgeError
from .blender_serve import REPORT_MARKER

MAX_JOBS = 200  # a fresh process after this many jobs, so nothing Blender keeps between jobs can pile up


class WarmBlender:
    """The warm process and its bookkeeping; run() hands back None when the caller should start its own."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._lock = threading.Lock()  # held for a whole job: one job at a time
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue | None = None
        self._stderr = None
        self._jobs = 0
        self._ready = False

    def start(self) -> None:
        """Start the process in the background when none runs (returns at once; no-op while a job runs)."""
        if not self.enabled or not self._lock.acquire(blocking=False):
            return
        try:
            if not self._alive():
                self._spawn()
        finally:
            self._lock.release()

    def run(self, module: str, job: Path, what: str, timeout: float) -> dict | None:
        """The job's report from the warm process; None when it is busy or disabled (run it elsewhere)."""
        if not self.enabled or not self._lock.acquire(blocking=False):
            return None
        try:
            if not self._alive():
                self._spawn()
            deadline = time.monotonic() + timeout
            if not self._ready:
                first = self._next_report(deadline, what, timeout)
                if not first.get("ready"):
                    self._stop()
                    return None
                self._ready = True
            self._proc.stdin.write(json.dumps({"module": module, "job": str(job)}) + "\n")
            self._proc.stdin.flush()
            report = self._next_report(deadline, what, timeout)
            self._jobs += 1
            if not report.get("ok"):
                self._stop()
                raise ForgeError(f"{what} failed in Blender: {report.get('error', 'no message')}\n"
                                 f"{stderr_tail(report.get('traceback', ''))}")
            if self._jobs >= MAX_JOBS:
                self._stop()
            return report
        except (BrokenPipeError, OSError) as exc:
            self._stop()
            raise ForgeError(f"{what} failed: the Blender process went away ({exc})") from None
        finally:
            self._lock.release()

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def pid(self) -> int | None:
        return self._proc.pid if self._alive() else None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self) -> None:
        self._stop()
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", "server.export.blender_serve"], cwd=str(REPO_ROOT),
                                      env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, text=True, bufsize=1)
        self._lines, self._jobs, self._ready = queue.Queue(), 0, False
        threading.Thread(target=_read_lines, args=(self._proc.stdout, self._lines), name="o3f-blender-out",
                         daemon=True).start()

    def _next_report(self, deadline: float, what: str, timeout: float) -> dict:
        """The next report line; ForgeError when the process ends or the deadline passes first."""
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=remaining) if remaining > 0 else None
                ended = line is None and remaining > 0
            except queue.Empty:
                line, ended = None, False
            if line is None:
                message = self._stderr_tail()
                code = self._stop()
                if not ended:
                    raise ForgeError(f"{what} timed out after {timeout:.0f} s: {message}")
                raise ForgeError(f"{what} failed (Blender exit {code}): {message}")
            at = line.find(REPORT_MARKER)
            if at >= 0:
                try:
                    return json.loads(line[at + len(REPORT_MARKER):])
                except json.JSONDecodeError:
                    continue

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return stderr_tail(self._stderr.read().decode(errors="replace"))

    def _stop(self) -> int | None:
        """Kill the process if it runs; its exit code (None when there was none)."""
        proc, self._proc, self._ready = self._proc, None, False
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return code


def _read_lines(stream, lines: queue.Queue) -> None:
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):  # closed under us when the process was stopped
        pass
    lines.put(None)


def stderr_tail(text: str, limit: int = 2000) -> str:
    """The end of what a Blender process said, for an error message."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


WARM = WarmBlender(enabled=os.environ.get("O3F_WARM_BLENDER", "1") != "0")
atexit.register(WARM.stop)
