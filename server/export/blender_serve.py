"""Blender side of the warm Blender process: bpy imported once, then one job per line of stdin, one report each.

`python -m server.export.blender_serve`. Each line is {"module": ..., "job": "/path/job.json"}; the module
(one of JOB_MODULES) runs its `run(job)` exactly as `python -m <module> <job>` would, and this process
prints REPORT_MARKER + the report as one line (Blender's own messages go to stdout around it). A job that
raises is reported as {"ok": false, "error": ..., "traceback": ...} and the process exits: its scene may be half built.
It also exits at the end of its input, so it never outlives the server that started it.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback

REPORT_MARKER = "O3F_REPORT "
JOB_MODULES = ("server.export.blender_fbx", "server.export.blender_skeletal")


def serve(lines, out) -> int:
    import bpy  # noqa: F401  (the point of this process: imported before the first job arrives)

    out.write(REPORT_MARKER + json.dumps({"ok": True, "ready": True}) + "\n")
    out.flush()
    for line in lines:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if request.get("module") not in JOB_MODULES:
                raise ValueError(f"module {request.get('module')!r} is not one of {JOB_MODULES}")
            report = importlib.import_module(request["module"]).run(request["job"])
        except BaseException as exc:  # reported to the server, which drops this process
            failure = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            out.write(REPORT_MARKER + json.dumps(failure) + "\n")
            out.flush()
            return 1
        out.write(REPORT_MARKER + json.dumps(report) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.stdin, sys.stdout))
