"""Benchmark: the UE5 export of a 10k-triangle LOD0 with 2048² maps (issue 17: at most 1.5 s on the 2-core machine).

The organic mesh of bench/meshes.py (--faces triangles, procedural, vertex colours) is imported, post-processed
to --target triangles and baked at --size on the CPU engine through the server's API (not timed); then the UE5
export (three FBX files through Blender, packed maps, import script, preview, zip) is timed --runs times.
Printed per side: median, fastest and slowest export, its processor time (Blender's subprocess included:
what a loaded machine takes from), the split the export run recorded (median of each part; parts that run
beside each other overlap), and the sizes of the package's PNGs and zip.

With --baseline REF the server of git commit REF (extracted with git archive into a temporary folder) is
measured the same way, in alternation with this tree over --rounds rounds, each side in its own process, so
both meet the same machine load.

    python bench/export_time.py [--runs 5] [--rounds 2] [--baseline HEAD] [--faces 100000] [--size 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepared_asset(api, args, scratch: Path) -> str:
    from bench import meshes as mesh_set

    path = scratch / "organic.ply"
    mesh_set.make("organic", args.faces).export(path)
    record, _ = api.import_mesh(str(path), "Bench_export", {"up_axis": "Z"})
    asset_id = json.loads(record)["asset_id"]
    api.postprocess(asset_id, {"target_triangles": args.target, "texture_size": args.size, "height": "keep",
                               "collision": True})
    # AO samples change the bake's time, not the export's: a few keep the preparation short.
    api.bake(asset_id, {"texture_size": args.size, "ao_samples": 8, "engine": "cpu"})
    return asset_id


def recorded_split(api, asset_id: str, package: Path) -> dict:
    """What the last export recorded of its parts: the run's own split (when it keeps one) and the package's."""
    export = [run for run in json.loads(api.asset(asset_id))["stages"] if run.get("stage") == "export"][-1]
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    parts = {f"run.{k}": v for k, v in export.get("parameters", {}).get("timings_s", {}).items()}
    parts.update({f"package.{k}": v for k, v in manifest.get("export_timings", {}).items() if v is not None})
    return parts


def package_sizes(package: Path) -> dict:
    with zipfile.ZipFile(package) as archive:
        pngs = sum(item.file_size for item in archive.infolist() if item.filename.endswith(".png"))
    return {"png_bytes": pngs, "zip_bytes": package.stat().st_size}


def measure(args) -> dict:
    """One side: this process imports the server found under args.child (run as a child process)."""
    sys.path[:0] = [args.child, str(ROOT)]
    with tempfile.TemporaryDirectory(prefix="o3f-export-bench-") as scratch:
        os.environ["O3F_WORKSPACE"] = str(Path(scratch) / "ws")
        from server.api import ForgeApi
        from server.config import load_settings

        api = ForgeApi(load_settings())
        asset_id = prepared_asset(api, args, Path(scratch))
        api.export(asset_id, "ue5", {})  # warms the imports and the file cache, as a running server has them
        seconds, cpu, splits = [], [], []
        for _ in range(args.runs):
            cpu_before, started = cpu_seconds(), time.perf_counter()
            _, package = api.export(asset_id, "ue5", {})
            seconds.append(time.perf_counter() - started)
            cpu.append(cpu_seconds() - cpu_before)
            splits.append(recorded_split(api, asset_id, Path(package)))
        return {"seconds": seconds, "cpu": cpu, "splits": splits, "sizes": package_sizes(Path(package)),
                "load": os.getloadavg()[0]}


def cpu_seconds() -> float:
    """Processor time of this process and its finished children (Blender's subprocess): what the load takes from."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_side(root: Path, args) -> dict:
    command = [sys.executable, __file__, "--child", str(root), "--runs", str(args.runs), "--faces", str(args.faces),
               "--target", str(args.target), "--size", str(args.size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the side {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_tree(ref: str, scratch: Path) -> Path:
    """The repository at ref, as files (no worktree, no change to this checkout)."""
    target = scratch / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def report(label: str, results: list[dict]) -> None:
    seconds = [s for r in results for s in r["seconds"]]
    loads = ", ".join(f"{r['load']:.2f}" for r in results)
    cpu = statistics.median(c for r in results for c in r["cpu"])
    print(f"{label}: median {statistics.median(seconds):.3f} s, fastest {min(seconds):.3f}, slowest "
          f"{max(seconds):.3f}; processor time {cpu:.3f} s ({len(seconds)} exports; load after each side {loads})")
    parts = sorted({k for r in results for split in r["splits"] for k in split})
    for part in parts:
        values = [split[part] for r in results for split in r["splits"] if part in split]
        print(f"    {part:40s} {statistics.median(values):.3f} s")
    sizes = results[-1]["sizes"]
    print(f"    PNGs in the package {sizes['png_bytes'] / 1e6:.2f} MB, zip {sizes['zip_bytes'] / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of baseline and this tree")
    parser.add_argument("--baseline", help="a git commit to compare against, e.g. HEAD")
    parser.add_argument("--faces", type=int, default=100_000, help="triangles of the high poly")
    parser.add_argument("--target", type=int, default=10_000, help="triangles of LOD0")
    parser.add_argument("--size", type=int, default=2048, help="texels per side of the maps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    print(f"load average before the run {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    sides = {"this tree": ROOT}
    with tempfile.TemporaryDirectory(prefix="o3f-export-baseline-") as scratch:
        if args.baseline:
            sides = {f"baseline {args.baseline}": baseline_tree(args.baseline, Path(scratch)), **sides}
        results = {label: [] for label in sides}
        for _ in range(args.rounds if args.baseline else 1):
            for label, root in sides.items():
                results[label].append(run_side(root, args))
    for label, side in results.items():
        report(label, side)


if __name__ == "__main__":
    main()
