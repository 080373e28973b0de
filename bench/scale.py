"""Benchmark: how post-processing and the bake (and the export) grow with the input, from 250k to 16M triangles.

Each size is the organic mesh of bench/meshes.py (a lumpy cube-sphere with scanner noise and vertex colours)
at that many triangles, imported as an asset in one child process (not measured), then post-processed and
baked in a fresh child process through the server's API, as a request would run them. A sampler thread reads
the process's resident memory every 20 ms; each stage's peak is the highest reading while it ran (the
stages are told apart by the progress messages postprocess sends). Printed per size and stage: seconds and
peak resident memory, then for each stage the growth of its time from one size to the next against
n log n growth (a stage is flagged when it grows faster).

    python bench/scale.py [--sizes 250000,1000000,4000000,16000000] [--size 2048] [--ao-samples 32]
    python3 bench/scale.py --sizes 1500000 --engine cuda --export    # the GPU path end to end (GPU machine)

With --engine cuda, CUDA is started before the clock (its start-up printed apart); --export adds the UE5
export (FBX through Blender where bpy is installed, else GLB, as on the Space).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_IMPORT = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from bench import meshes
from server.api import ForgeApi
started = time.perf_counter()
mesh = meshes.organic({faces})
path = Path({scratch!r}) / "high.ply"
mesh.export(path)
del mesh
record, _ = ForgeApi().import_mesh(str(path), "Scale", {{"up_axis": "Z"}})
path.unlink()
print(json.dumps({{"asset_id": json.loads(record)["asset_id"], "faces": json.loads(record)["mesh"]["faces"],
                  "seconds": time.perf_counter() - started}}))
"""

_RUN = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, {root!r})
from server.api import ForgeApi

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


marks = []  # (time, stage name)
samples = []  # (time, bytes)
running = True


def sample():
    while running:
        samples.append((time.perf_counter(), resident()))
        time.sleep(0.02)


def progress(fraction, message):
    marks.append((time.perf_counter(), message.split(" ")[0] if message else "?"))


cuda_startup = None
if {engine!r} == "cuda":  # CUDA's start-up is timed apart: a ZeroGPU call pays it once per worker process
    started = time.perf_counter()
    import torch
    torch.zeros(1, device="cuda")
    cuda_startup = time.perf_counter() - started
api = ForgeApi()
thread = threading.Thread(target=sample, daemon=True)
thread.start()
marks.append((time.perf_counter(), "load"))
api.postprocess({asset!r}, {{"target_triangles": {target}, "texture_size": {size}, "height": "keep"}}, progress)
marks.append((time.perf_counter(), "bake_load"))
api.bake({asset!r}, {{"texture_size": {size}, "ao_samples": {ao}, "engine": {engine!r}}}, progress)
if {export!r}:
    marks.append((time.perf_counter(), "export"))
    api.export({asset!r}, "ue5", {{}})
marks.append((time.perf_counter(), "end"))
running = False
thread.join()
record = json.loads(api.asset({asset!r}))
runs = {{run["stage"]: run for run in record["stages"]}}
print(json.dumps({{"marks": marks, "samples": samples, "report": runs["postprocess"]["parameters"]["report"],
                  "bake": runs["bake"]["parameters"]["stats"],
                  "cuda_startup_s": cuda_startup, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""

def _child(code: str, env: dict, timeout: float) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"child failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_stage(result: dict) -> list[dict]:
    """Seconds and peak resident bytes between consecutive progress marks."""
    marks, samples = result["marks"], result["samples"]
    rows = []
    for (start, name), (stop, _) in zip(marks, marks[1:]):
        during = [rss for t, rss in samples if start <= t <= stop] or [0]
        label = {"measuring": "deviation", "finding": "stable_pose", "dropping": "stability",
                 "baking": "bake", "writing": "write_textures"}.get(name, name)
        rows.append({"stage": label, "seconds": stop - start, "peak_gb": max(during) / 2**30})
    return rows


def growth(rows_by_size: dict[int, list[dict]]) -> list[str]:
    """For each stage and each step in size: its time ratio against the n log n ratio."""
    lines = []
    sizes = sorted(rows_by_size)
    stages = [row["stage"] for row in rows_by_size[sizes[-1]]]
    for stage in stages:
        for small, large in zip(sizes, sizes[1:]):
            times = {n: sum(r["seconds"] for r in rows_by_size[n] if r["stage"] == stage) for n in (small, large)}
            if times[small] < 0.05:  # too short to time a ratio
                continue
            ratio = times[large] / times[small]
            bound = (large * math.log(large)) / (small * math.log(small))
            flag = "ok" if ratio <= bound * 1.25 else "GROWS FASTER THAN n log n"
            lines.append(f"| {stage} | {small / 1e6:g}M -> {large / 1e6:g}M | {times[small]:.2f} -> "
                         f"{times[large]:.2f} s | x{ratio:.2f} | x{bound:.2f} | {flag} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250000,1000000,4000000,16000000")
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ao-samples", type=int, default=32)
    parser.add_argument("--engine", default="cpu", choices=["cpu", "cuda"], help="the bake engine")
    parser.add_argument("--export", action="store_true", help="also time the UE5 export after the bake")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows_by_size, results = {}, {}
    with tempfile.TemporaryDirectory(prefix="o3f-scale-") as scratch:
        env = {**os.environ, "O3F_WORKSPACE": str(Path(scratch) / "ws"), "O3F_MAX_UPLOAD_FACES": "20000000",
               "O3F_MAX_UPLOAD_BYTES": str(8 * 2**30)}
        for faces in (int(s) for s in args.sizes.split(",")):
            made = _child(_IMPORT.format(root=str(ROOT), faces=faces, scratch=scratch), env, 3600)
            print(f"{made['faces']} triangles imported in {made['seconds']:.0f} s (not measured)", flush=True)
            started = time.perf_counter()
            result = _child(_RUN.format(root=str(ROOT), asset=made["asset_id"], target=args.target,
                                        size=args.size, ao=args.ao_samples, engine=args.engine,
                                        export=args.export), env, 3600)
            wall = time.perf_counter() - started
            rows = per_stage(result)
            rows_by_size[made["faces"]] = rows
            results[made["faces"]] = {"rows": rows, "wall_s": wall, "peak_gb": result["peak_rss"] / 2**30,
                                      "report_timings": result["report"]["timings_s"],
                                      "reduction": result["report"].get("reduction"),
                                      "bake_steps": result["bake"]["seconds"],
                                      "cuda_startup_s": result["cuda_startup_s"]}
            startup = result["cuda_startup_s"]
            print(f"{made['faces']}: postprocess + bake{' + export' if args.export else ''} "
                  f"{sum(r['seconds'] for r in rows):.1f} s (child process {wall:.1f} s"
                  f"{f', CUDA start-up before it {startup:.2f} s' if startup is not None else ''}), "
                  f"peak {result['peak_rss'] / 2**30:.2f} GB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\n{args.size}² maps, AO {args.ao_samples} samples, {args.engine} bake, LOD0 {args.target} triangles; "
          f"load average before the run {load:.2f}")
    print("\n| triangles | stage | seconds | peak resident memory (GB) |\n|---|---|---|---|")
    for faces, result in results.items():
        for row in result["rows"]:
            print(f"| {faces / 1e6:.2f}M | {row['stage']} | {row['seconds']:.2f} | {row['peak_gb']:.2f} |")
        print(f"| {faces / 1e6:.2f}M | **total** | **{sum(r['seconds'] for r in result['rows']):.1f}** | "
              f"**{result['peak_gb']:.2f}** |")
    print("\n| stage | sizes | seconds | time ratio | n log n ratio | |\n|---|---|---|---|---|---|")
    print("\n".join(growth(rows_by_size)))


if __name__ == "__main__":
    main()
