"""Running a Blender job outside the server's process (bpy's exporters are not safe in its threads), in the warm
Blender process or one of its own: the job file in, one JSON report out, failures as ForgeError with what it said."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..child_env import REPO_ROOT, child_env
from ..errors import ForgeError
from .warm_blender import WARM, stderr_tail


def last_json_line(stdout: str) -> dict | None:
    for line in reversed((stdout or "").strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_blender_job(module: str, job: Path, what: str, timeout: float) -> dict:
    """The job's report (which must say ok): from the warm Blender process, else from a process of its own."""
    report = WARM.run(module, job, what, timeout)
    return report if report is not None else run_in_own_process(module, job, what, timeout)


def run_in_own_process(module: str, job: Path, what: str, timeout: float) -> dict:
    """`python -m <module> <job>` with this interpreter; its last JSON line, which must say ok."""
    try:
        proc = subprocess.run([sys.executable, "-m", module, str(job)], cwd=str(REPO_ROOT), env=child_env(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise ForgeError(f"{what} timed out after {timeout:.0f} s: {stderr_tail(stderr)}") from None
    if proc.returncode != 0:
        raise ForgeError(f"{what} failed (Blender exit {proc.returncode}): {stderr_tail(proc.stderr)}")
    report = last_json_line(proc.stdout)
    if report is None or not report.get("ok"):
        raise ForgeError(f"{what} wrote no report: {stderr_tail(proc.stderr or proc.stdout)}")
    return report


def job_main(argv: list[str], module: str, run: Callable[[str], dict]) -> int:
    """The Blender side's entry point: run the job named on the command line, print its report as JSON."""
    if len(argv) != 1:
        print(f"usage: python -m {module} JOB.json", file=sys.stderr)
        return 2
    print(json.dumps(run(argv[0])), flush=True)
    return 0
