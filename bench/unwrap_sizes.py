"""Benchmark: the UV unwrap of each mesh's 10k-triangle LOD0 at every texture size, with the texels it covers.

Each mesh of bench/meshes.py is cleaned and decimated as postprocess does (not timed), then unwrapped at
1024, 2048 and 4096 (timed, best of --repeat). Printed per mesh and size: seconds, the share of the
texture's texels inside a chart, and the padding each chart keeps (texels of that texture).

    python bench/unwrap_sizes.py [--meshes organic,hard,thin,generated] [--target 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import meshes as mesh_set  # noqa: E402
from bench.quality import texel_coverage  # noqa: E402
from server.meshdata import MeshArrays  # noqa: E402
from server.stages.cleanup import cleanup  # noqa: E402
from server.stages.decimate import decimate  # noqa: E402
from server.stages.uv import padding_for, unwrap  # noqa: E402

SIZES = (1024, 2048, 4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meshes", default=",".join(mesh_set.KINDS))
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before the run {os.getloadavg()[0]:.2f}\n")
    print("| mesh | texture | unwrap (s, best of {}) | texels covered | padding kept (texels) | padding asked |"
          .format(args.repeat))
    print("|---|---|---|---|---|---|")
    for kind in args.meshes.split(","):
        high = mesh_set.make(kind)
        low = decimate(cleanup(MeshArrays(high.vertices, high.faces)), args.target, prefer_fast=True)
        for size in SIZES:
            seconds = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                lod0 = unwrap(low, texture_size=size)
                seconds.append(time.perf_counter() - started)
            print(f"| {kind} | {size} | {min(seconds):.2f} | {texel_coverage(lod0, size) * 100:.1f} % | "
                  f"{lod0.info['padding_texels']:.1f} | {padding_for(size)} |", flush=True)


if __name__ == "__main__":
    main()
