"""CUDA bake engine against the CPU engine on the same machine: 1.3M-triangle high poly, 2048² and 4096².

    python bench/bake_gpu.py [--sizes 2048 4096] [--faces 15000] [--repeats 5] [--fresh 3] [--no-cpu] [--json out.json]

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


def fresh_process_seconds(size: int, subdivisions: int, faces: int) -> dict:
    """One bake in a new Python process, as a ZeroGPU call may meet it (nvdiffrast's plugin built and CuPy's
    kernels cached on disk by the calls before): CUDA's start-up (importing torch, then its first CUDA call: a
    ZeroGPU Space imports torch when it starts, its GPU worker makes the first CUDA call) and the first bake."""
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r});"
            "from server.bake.engine import BakeSettings, bake;"
            "from tests.bake_cases import bumpy_sphere, high_poly, low_poly, painted_source;"
            f"m = bumpy_sphere({subdivisions}); h = high_poly(m, painted_source(m)); low = low_poly(m, {faces}, {size});"
            "t0 = time.perf_counter(); import torch; ti = time.perf_counter(); torch.zeros(1, device='cuda');"
            "t1 = time.perf_counter();"
            f"maps = bake(h, low, BakeSettings(size={size}, max_distance=0.03, ao_distance=0.3), 'cuda');"
            "t2 = time.perf_counter();"
            "import json; print(json.dumps([t1 - t0, ti - t0, t2 - t1, maps.stats['seconds']]))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    startup, importing, seconds, steps = json.loads(output.strip().splitlines()[-1])
    print(f"{size}: new process: CUDA start-up {startup:.2f} s (import torch {importing:.2f} s, first CUDA call "
          f"{startup - importing:.2f} s), first bake {seconds:.2f} s, steps {steps}", flush=True)
    return {"startup_s": startup, "import_torch_s": importing, "first_cuda_call_s": startup - importing,
            "bake_s": seconds, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--subdivisions", type=int, default=8)
    parser.add_argument("--faces", type=int, default=15000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fresh", type=int, default=1, help="new processes timed per size (median reported)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU engine (no speed-up or parity figures)")
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
        fresh = [fresh_process_seconds(size, args.subdivisions, args.faces) for _ in range(args.fresh)]
        if args.no_cpu:
            cpu, cpu_s = gpu, float("nan")
            figures = dict.fromkeys(("normal_mean_deg", "base_color_median_levels", "ao_mean_abs"), float("nan"))
        else:
            cpu, cpu_s = timed(bake, high, low, settings, "cpu")
            figures = parity(cpu, gpu)
        row = {"size": size, "high_triangles": len(mesh.faces), "low_triangles": len(low.faces),
               "cpu_s": cpu_s, "cuda_cold_s": cold, "cuda_fresh_process_s": statistics.median(f["bake_s"] for f in fresh),
               "cuda_startup_s": statistics.median(f["startup_s"] for f in fresh), "fresh_processes": fresh, "cuda_warm_median_s": statistics.median(warm),
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
              f"{r['cuda_cold_s']:.2f} s | {r['cuda_fresh_process_s']:.2f} s (+ {r['cuda_startup_s']:.2f} s) | {r['cuda_warm_median_s']:.3f} s | {r['speedup']:.0f}x | "
              f"{r['normal_mean_deg']:.3f}° | {r['base_color_median_levels']:.2f} | {r['ao_mean_abs']:.4f} |")
    for r in rows:
        print(f"{r['size']}² CUDA steps: {r['cuda_steps_s']}")
        print(f"{r['size']}² CPU steps:  {r['cpu_steps_s']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
