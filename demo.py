"""`make demo`: start the local server, forge the bundled sample into a UE5 zip through the add-on's client."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from addon.client import ForgeClient, ServerError  # noqa: E402
from server.local import running_server  # noqa: E402

SAMPLE = ROOT / "samples" / "barrel.png"
OUT = ROOT / "out"


def main() -> int:
    workspace = ROOT / "workspace"
    workspace.mkdir(exist_ok=True)
    print(f"starting the local server (workspace {workspace}) ...", flush=True)
    with running_server(workspace) as url:
        client = ForgeClient(url, download_dir=OUT / ".downloads")
        health = client.health()
        ready = [g["name"] for g in health["generators"] if g["available"]]
        print(f"server {url} is up: version {health['version']}, device {health['device']}, "
              f"generators available: {', '.join(ready)}", flush=True)
        started = time.perf_counter()
        print(f"forging {SAMPLE.relative_to(ROOT)} with preset prop_UE5_standard (height: barrel) ...", flush=True)
        try:
            result = client.forge([SAMPLE], name="Barrel", preset="prop_UE5_standard",
                                  options={"engine": "ue5", "postprocess": {"height": "barrel"}})
        except ServerError as exc:
            print(f"the server refused the sample: {exc}", file=sys.stderr)
            return 1
        OUT.mkdir(exist_ok=True)
        target = OUT / result.file.name
        shutil.copyfile(result.file, target)
        record = result.record
        for stage in record["stages"]:
            print(f"  {stage['stage']:<12} {stage['status']:<6} {stage['wall_seconds']:7.1f} s")
        post = [s for s in record["stages"] if s["stage"] == "postprocess"][-1]["parameters"]["report"]
        print(f"forged asset {result.asset_id} in {time.perf_counter() - started:.1f} s: "
              f"LOD triangles {post['lod_triangles']}, {post['hulls']} collision hulls")
        print(f"asset folder: {workspace / result.asset_id}")
        print(f"UE5 zip: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
