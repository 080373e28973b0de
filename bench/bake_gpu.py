"""CUDA bake engine against the CPU engine on the same machine: 1.3M-triangle high poly, 2048² and 4096².

    python bench/bake_gpu.py [--sizes 2048 4096] [--faces 15000] [--repeats 5] [--json out.json]

Prints one row per size (CPU seconds; CUDA first-call, new-process and warm seconds; the ratio; parity) and the
per-step split of a warm CUDA run. Needs a CUDA GPU with torch, CuPy and nvdiffrast.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.bake.engine import BakeSettings, bake
from tests.bake_cases import bumpy_sphere, high_poly, low_poly, painted_source, parity


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def fresh_process_seconds(size: int, subdivisions: int, faces: int) -> float:
    """One bake in a new Python process (CuPy's kernel cache on disk already warm): a ZeroGPU call's cost."""
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r});"
            "from server.bake.engine import BakeSettings, bake;"
            "from tests.bake_cases import bumpy_sphere, high_poly, low_poly, painted_source;"
            f"m = bumpy_sphere({subdivisions}); h = high_poly(m, painted_source(m)); low = low_poly(m, {faces}, {size});"
            "import torch; torch.zeros(1, device='cuda'); t = time.perf_counter();"
            f"maps = bake(h, low, BakeSettings(size={size}, max_distance=0.03, ao_distance=0.3), 'cuda');"
            "import json; print(json.dumps([time.perf_counter() - t, maps.stats['seconds']]))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, steps = json.loads(output.strip().splitlines()[-1])
    print(f"{size}: new process {seconds:.2f} s, steps {steps}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--subdivisions", type=int, default=8)
    parser.add_argument("--faces", type=int, default=15000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    mesh = bumpy_sphere(args.subdivisions)
    high = high_poly(mesh, painted_source(mesh))
    print(f"high poly: {len(mesh.faces):,} triangles", flush=True)
    rows = []
    for size in args.sizes:
        low, unwrap_s = timed(low_poly, mesh, args.faces, size)
        print(f"{size}: low poly {len(low.faces):,} triangles, unwrapped in {unwrap_s:.1f} s", flush=True)
        settings = BakeSettings(size=size, max_distance=0.03, ao_samples=32, ao_distance=0.3)
        gpu, cold = timed(bake, high, low, settings, "cuda")
        warm = []
        for _ in range(args.repeats):
            gpu, seconds = timed(bake, high, low, settings, "cuda")
            warm.append(seconds)
        fresh = fresh_process_seconds(size, args.subdivisions, args.faces)
        cpu, cpu_s = timed(bake, high, low, settings, "cpu")
        figures = parity(cpu, gpu)
        row = {"size": size, "high_triangles": len(mesh.faces), "low_triangles": len(low.faces),
               "cpu_s": cpu_s, "cuda_cold_s": cold, "cuda_fresh_process_s": fresh, "cuda_warm_median_s": statistics.median(warm),
               "cuda_warm_all_s": warm, "speedup": cpu_s / statistics.median(warm),
               "cuda_steps_s": gpu.stats["seconds"], "cpu_steps_s": cpu.stats["seconds"],
               "cage_misses": gpu.stats["cage_misses"], **figures}
        rows.append(row)
        print(json.dumps(row), flush=True)

    print("\n| size | high tris | low tris | CPU engine | CUDA first call in process | CUDA new process | "
          "CUDA warm (median) | speed-up | "
          "normal mean | colour median | AO mean abs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']}² | {r['high_triangles']:,} | {r['low_triangles']:,} | {r['cpu_s']:.2f} s | "
              f"{r['cuda_cold_s']:.2f} s | {r['cuda_fresh_process_s']:.2f} s | {r['cuda_warm_median_s']:.3f} s | {r['speedup']:.0f}x | "
              f"{r['normal_mean_deg']:.3f}° | {r['base_color_median_levels']:.2f} | {r['ao_mean_abs']:.4f} |")
    for r in rows:
        print(f"{r['size']}² CUDA steps: {r['cuda_steps_s']}")
        print(f"{r['size']}² CPU steps:  {r['cpu_steps_s']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
