"""`make demo`: start the local server, forge the bundled sample through the add-on's client, say where it is."""

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
        try:
            result = client.generate([SAMPLE], name="Barrel", preset="prop_UE5_standard")
        except ServerError as exc:
            print(f"the server refused the sample: {exc}", file=sys.stderr)
            return 1
        OUT.mkdir(exist_ok=True)
        target = OUT / f"{result.record['name']}_high_poly.glb"
        shutil.copyfile(result.file, target)
        mesh = result.record["mesh"]
        print(f"forged asset {result.asset_id} in {time.perf_counter() - started:.1f} s: "
              f"{mesh['faces']} triangles, watertight={mesh['watertight']}")
        print(f"asset folder: {workspace / result.asset_id}")
        print(f"high poly: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
