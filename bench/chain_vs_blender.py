"""Benchmark: our whole chain against Blender's manual chain, per mesh of the set and per stage, with quality.

The set (bench/meshes.py, made on the fly): organic scan, hard-surface part, thin-legged stool and a
generated marching-cubes blob, 250k to 1.3M triangles, each imported as an asset. Ours: postprocess
(repair check, cleanup, decimation, UV unwrap, LOD1/LOD2, CoACD collision, checks), bake (CPU engine:
normal, base colour, metallic, roughness, AO) and the UE5 export (FBX through Blender, PNGs, zip).
Blender (bpy, Cycles on the CPU, --threads threads), one session: Decimate (collapse) to the same
triangle count, Smart UV Project, Cycles "Selected to Active" normal and AO bakes, FBX export. Both bake
at --size with --ao-samples. Blender's figures count its operators, not starting it or building objects.

Quality: two-way surface distance of each LOD0 to the high poly (mean, 99.9th percentile), the normal
error of each low poly + its 8-bit map against the high poly's normals, our normal map against Cycles'
bake onto our own LOD0, the share of texels the UV charts cover, and our hulls' coverage of the mesh.

    python bench/chain_vs_blender.py [--meshes organic,hard,thin,generated] [--target 10000] [--size 2048]
                                     [--ao-samples 32] [--skip-blender] [--json results.json]
    python bench/chain_vs_blender.py --memory --faces 1000000   # peak memory of postprocess + bake
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import meshes as mesh_set  # noqa: E402
from bench.blender_chain import run_blender_chain  # noqa: E402
from bench.quality import (  # noqa: E402
    chart_gaps,
    collision_coverage,
    map_angles,
    surface_distances,
    texel_coverage,
)
from server.api import ForgeApi  # noqa: E402
from server.bake.sources import sample_texture  # noqa: E402
from server.bake.tangents import vertex_tangents  # noqa: E402
from server.bake.uvraster import rasterize_uv  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.meshdata import MeshArrays  # noqa: E402
from server.runners.stored import load_game_mesh, read_high_poly  # noqa: E402
from tests.blender_bake import run_blender_job  # noqa: E402

# Our stages beside Blender's steps; ours-only stages have no Blender counterpart in a manual chain.
PAIRS = [("decimate", ("surface_check", "repair_cleanup", "reduce", "decimate"), "decimate"),
         ("unwrap", ("unwrap",), "smart_uv"), ("bake", ("bake",), ("normal_bake", "ao_bake")),
         ("export", ("export",), "fbx_export")]
# CoACD runs beside the unwrap, LODs and error measurement: the chain waits only for what is left of it.
OURS_ONLY = ("lods", "deviation", "collision_wait", "stability")
SAMPLES = 400_000  # area samples on each surface for the distances: the 99.9th percentile rests on 800 of them


def import_asset(api: ForgeApi, kind: str, faces: int | None, scratch: Path) -> str:
    mesh = mesh_set.make(kind, faces)
    path = scratch / f"{kind}.ply"
    mesh.export(path)
    record, _ = api.import_mesh(str(path), f"Bench_{kind}", {"up_axis": "Z"})
    path.unlink()
    return json.loads(record)["asset_id"]


def _last_run(api: ForgeApi, asset_id: str, stage: str) -> dict:
    return [run for run in json.loads(api.asset(asset_id))["stages"] if run.get("stage") == stage][-1]


def run_ours(api: ForgeApi, asset_id: str, args) -> dict:
    """Wall time of each call and of each postprocess stage inside it (seconds)."""
    seconds = {}
    started = time.perf_counter()
    api.postprocess(asset_id, {"target_triangles": args.target, "texture_size": args.size, "height": "keep",
                               "collision": True})
    seconds["postprocess"] = time.perf_counter() - started
    report = _last_run(api, asset_id, "postprocess")["parameters"]["report"]
    seconds.update(report["timings_s"])
    clock = time.perf_counter()
    api.bake(asset_id, {"texture_size": args.size, "ao_samples": args.ao_samples, "engine": "cpu"})
    seconds["bake"] = time.perf_counter() - clock
    baked = _last_run(api, asset_id, "bake")["parameters"]
    seconds["bake_engine"] = baked["bake_seconds"]
    seconds["bake_steps"] = baked["stats"]["seconds"]
    clock = time.perf_counter()
    api.export(asset_id, "ue5", {})
    seconds["export"] = time.perf_counter() - clock
    seconds["total"] = time.perf_counter() - started
    seconds["report"] = report
    return seconds


def split_by_loops(vertices, loop_faces, loop_vertex, loop_uv, loop_normals) -> MeshArrays:
    """Blender's per-loop UVs and normals as a mesh split wherever a position carries two of them."""
    keys = np.concatenate([loop_vertex[:, None].astype(np.float64), np.round(loop_uv, 7),
                           np.round(loop_normals, 5)], axis=1)
    unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    normals = loop_normals[first].astype(np.float64)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return MeshArrays(vertices[unique[:, 0].astype(np.int64)], inverse[loop_faces], uv=unique[:, 1:3],
                      normals=normals)


def normal_error(high, low: MeshArrays, normal_map: np.ndarray, samples: int = 20000) -> float:
    """Mean angle (degrees) between the high poly's smooth normal and the one low poly + map rebuild."""
    import trimesh

    points, face = trimesh.sample.sample_surface(high, samples, seed=7)
    bary = trimesh.triangles.points_to_barycentric(high.triangles[face], points)
    truth = np.einsum("kj,kjc->kc", bary, high.vertex_normals[high.faces[face]])
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    low_mesh = trimesh.Trimesh(low.vertices, low.faces, process=False)
    closest, _, low_face = trimesh.proximity.closest_point(low_mesh, points)
    low_bary = trimesh.triangles.points_to_barycentric(low_mesh.triangles[low_face], closest)
    corners = low.faces[low_face]
    uv = np.einsum("kj,kjc->kc", low_bary, low.uv[corners])
    tangents = vertex_tangents(low.vertices, low.faces, low.normals, low.uv)
    n = np.einsum("kj,kjc->kc", low_bary, low.normals[corners])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    t = np.einsum("kj,kjc->kc", low_bary, tangents[corners, :3])
    sign = np.where(np.einsum("kj,kj->k", low_bary, tangents[corners, 3]) >= 0, 1.0, -1.0)
    t -= n * np.einsum("ij,ij->i", t, n)[:, None]
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    b = sign[:, None] * np.cross(n, t)
    ts = sample_texture(normal_map, uv)
    rebuilt = ts[:, 0:1] * t + ts[:, 1:2] * b + ts[:, 2:3] * n
    rebuilt /= np.linalg.norm(rebuilt, axis=1, keepdims=True)
    return float(np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", rebuilt, truth), -1, 1))).mean())


def unplaced(mesh: MeshArrays, transform: dict) -> MeshArrays:
    """A placed mesh back in the high poly's frame (postprocess turned, scaled and moved it)."""
    rotation = np.asarray(transform["rotation"])
    vertices = ((mesh.vertices - np.asarray(transform["translation"])) / transform["scale"]) @ rotation
    normals = None if mesh.normals is None else mesh.normals @ rotation
    return MeshArrays(vertices, mesh.faces, uv=mesh.uv, normals=normals)


def _interior(mask: np.ndarray) -> np.ndarray:
    """Covered texels whose four neighbours are covered too (chart borders differ between rasterizers)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def measure_mesh(api: ForgeApi, kind: str, args, scratch: Path) -> dict:
    from PIL import Image

    print(f"[{kind}] making and importing the high poly (not timed) ...", flush=True)
    asset_id = import_asset(api, kind, args.faces, scratch)
    asset = api.ctx.store.open(asset_id)
    print(f"[{kind}] our chain ...", flush=True)
    ours = run_ours(api, asset_id, args)
    report = ours.pop("report")
    high_mesh = read_high_poly(asset)
    high = MeshArrays(high_mesh.vertices, high_mesh.faces)
    lods, hulls, state = load_game_mesh(asset)
    transform = state["transform"]
    lod0 = unplaced(lods[0], transform)
    bake_run = _last_run(api, asset_id, "bake")
    cage = float(bake_run["parameters"]["max_distance_m"]) / transform["scale"]
    ao_distance = float(bake_run["parameters"]["ao_distance_m"]) / transform["scale"]
    our_map = np.asarray(Image.open(asset.folder / "textures" / "normal_gl.png"), np.float64) / 255 * 2 - 1

    print(f"[{kind}] quality of ours ...", flush=True)
    quality = {"ours": {"lod0_triangles": lod0.face_count, "distance": surface_distances(high, lod0, SAMPLES),
                        "normal_error_deg": normal_error(high_mesh, lod0, our_map),
                        "texel_coverage": texel_coverage(lod0, args.size),
                        "chart_gaps": chart_gaps(lod0.uv, lod0.faces, args.size)}}
    quality["collision"] = collision_coverage(high_mesh, [unplaced(h, transform) for h in hulls])
    quality["repair"] = report.get("repair")
    result = {"kind": kind, "asset_id": asset_id, "high_poly_triangles": high.face_count, "ours": ours,
              "quality": quality}
    if args.skip_blender:
        return result

    print(f"[{kind}] Cycles bake onto our LOD0 (reference for our normal map, not timed) ...", flush=True)
    reference = run_blender_job("bake", scratch / "cycles", high_vertices=high.vertices, high_faces=high.faces,
                                vertices=lod0.vertices, faces=lod0.faces, uv=lod0.uv, normals=lod0.normals,
                                size=np.array(args.size), cage=np.array(cage), max_ray=np.array(2 * cage),
                                margin=np.array(16), ao_samples=np.array(0), ao_distance=np.array(ao_distance),
                                threads=np.array(args.threads))
    inner = _interior(rasterize_uv(lod0.uv, lod0.faces, args.size).mask())
    quality["ours"]["map_vs_cycles_deg"] = map_angles(our_map, reference["normal"] * 2 - 1, inner)

    print(f"[{kind}] Blender's chain ...", flush=True)
    # Smart UV's FRACTION margin is kept around each island: half the gap between two of them.
    chain = run_blender_chain(scratch / "blender", high_vertices=high.vertices, high_faces=high.faces,
                              target=np.array(args.target), size=np.array(args.size),
                              ao_samples=np.array(args.ao_samples), ao_distance=np.array(ao_distance),
                              cage=np.array(cage), margin=np.array(16), threads=np.array(args.threads),
                              equal_margin=np.array(quality["ours"]["chart_gaps"]["smallest"] / 2 / args.size))
    blender = {str(name): float(s) for name, s in zip(chain["steps"], chain["seconds"])}
    blender["total"] = float(chain["seconds"].sum())
    low = split_by_loops(chain["vertices"].astype(np.float64), chain["loop_faces"], chain["loop_vertex"],
                         chain["loop_uv"].astype(np.float64), chain["loop_normals"].astype(np.float64))
    # Cycles gives colours in [0, 1]; quantise to 8 bits as a shipped PNG would be.
    blender_map = np.rint(chain["normal"].clip(0, 1) * 255) / 255 * 2 - 1
    print(f"[{kind}] quality of Blender's ...", flush=True)
    quality["blender"] = {"lod0_triangles": low.face_count, "distance": surface_distances(high, low, SAMPLES),
                          "normal_error_deg": normal_error(high_mesh, low, blender_map),
                          "texel_coverage": texel_coverage(low, args.size),
                          "chart_gaps": chart_gaps(low.uv, low.faces, args.size)}
    # Smart UV Project once more with its islands as far apart as ours: packing density at equal padding.
    equal = split_by_loops(chain["vertices"].astype(np.float64), chain["loop_faces"], chain["loop_vertex"],
                           chain["loop_uv_equal"].astype(np.float64), chain["loop_normals"].astype(np.float64))
    quality["blender"]["at_our_gap"] = {"texel_coverage": texel_coverage(equal, args.size),
                                        "chart_gaps": chart_gaps(equal.uv, equal.faces, args.size)}
    result["blender"] = blender
    result["speedup"] = blender["total"] / ours["total"]
    return result


def _gap(quality: dict) -> str:
    smallest = quality.get("chart_gaps", {}).get("smallest")
    return "-" if smallest is None else f"{smallest:.0f} texels"


def print_tables(results: list[dict]) -> None:
    print("\n| mesh | stage | ours (s) | Blender (s) | Blender / ours |\n|---|---|---|---|---|")
    for r in results:
        ours, blender = r["ours"], r.get("blender")
        name = f"{r['kind']} ({r['high_poly_triangles'] / 1000:.0f}k)"
        for label, our_keys, their_keys in PAIRS:
            mine = sum(ours.get(k, 0.0) for k in our_keys)
            theirs = sum(blender[k] for k in ((their_keys,) if isinstance(their_keys, str) else their_keys)) \
                if blender else None
            ratio = f"{theirs / mine:.1f}x" if theirs else "-"
            print(f"| {name} | {label} | {mine:.2f} | {'-' if theirs is None else f'{theirs:.2f}'} | {ratio} |")
        for key in OURS_ONLY:
            label = f"collision (ours only; {ours.get('collision', 0.0):.2f} s beside the stages above, then waited)" \
                if key == "collision_wait" else f"{key} (ours only)"
            print(f"| {name} | {label} | {ours.get(key, 0.0):.2f} | - | - |")
        listed = sum(ours.get(k, 0.0) for _, keys, _ in PAIRS for k in keys) + sum(ours.get(k, 0.0) for k in OURS_ONLY)
        print(f"| {name} | reading and writing the asset, checks (ours only) | {ours['total'] - listed:.2f} | - | - |")
        total = f"{blender['total']:.1f}" if blender else "-"
        ratio = f"**{r['speedup']:.2f}x**" if blender else "-"
        print(f"| {name} | **whole chain** | {ours['total']:.1f} | {total} | {ratio} |")

    print("\n| mesh | side | LOD0 tris | distance mean (mm) | p99.9 (mm) | normal error (deg) | texels covered "
          "(smallest gap between charts) | map vs Cycles mean / p99 (deg) |\n|---|---|---|---|---|---|---|---|")
    for r in results:
        for side in ("ours", "blender"):
            q = r["quality"].get(side)
            if q is None:
                continue
            angles = q.get("map_vs_cycles_deg")
            versus = f"{angles['mean']:.2f} / {angles['p99']:.2f}" if angles else "-"
            packing = f"{q['texel_coverage'] * 100:.1f} % ({_gap(q)})"
            if "at_our_gap" in q:  # Blender's Smart UV again, its islands as far apart as ours
                packing += f"; {q['at_our_gap']['texel_coverage'] * 100:.1f} % ({_gap(q['at_our_gap'])})"
            print(f"| {r['kind']} | {side} | {q['lod0_triangles']} | {q['distance']['mean'] * 1000:.3f} | "
                  f"{q['distance']['p999'] * 1000:.3f} | {q['normal_error_deg']:.2f} | {packing} | {versus} |")

    print("\n| mesh | hulls | max hull vertices | union / mesh volume | mesh volume inside | surface within 1 % "
          "| CoACD stage (s) |\n|---|---|---|---|---|---|---|")
    for r in results:
        c = r["quality"]["collision"]
        print(f"| {r['kind']} | {c['hulls']} | {c['max_hull_vertices']} | {c['union_over_mesh']:.3f} | "
              f"{c['mesh_inside_union'] * 100:.1f} % | {c['surface_within_tol'] * 100:.1f} % | "
              f"{r['ours'].get('collision', 0.0):.2f} |")


def compare(args) -> None:
    results = []
    with tempfile.TemporaryDirectory(prefix="o3f-bench-") as scratch:
        scratch = Path(scratch)
        os.environ["O3F_WORKSPACE"] = str(scratch / "ws")
        api = ForgeApi(load_settings())
        for kind in args.meshes.split(","):
            results.append(measure_mesh(api, kind, args, scratch))
            print(json.dumps(results[-1], indent=1, default=float), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    print(f"\nLOD0 {args.target} triangles, {args.size}² maps, AO {args.ao_samples} samples, "
          f"Blender on {args.threads} threads, load average before the run {args.load:.2f}")
    print_tables(results)


def memory(args) -> None:
    """Postprocess + bake of a big high poly in a child process; report the child's peak resident memory."""
    with tempfile.TemporaryDirectory(prefix="o3f-bench-") as scratch:
        os.environ["O3F_WORKSPACE"] = str(Path(scratch) / "ws")
        api = ForgeApi(load_settings())
        asset_id = import_asset(api, "organic", args.faces, Path(scratch))
        faces = json.loads(api.asset(asset_id))["mesh"]["faces"]
        code = (f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); os.environ['O3F_WORKSPACE'] = {os.environ['O3F_WORKSPACE']!r}\n"
                "from server.api import ForgeApi\napi = ForgeApi()\n"
                f"api.postprocess({asset_id!r}, {{'target_triangles': {args.target}, 'texture_size': {args.size}}})\n"
                f"api.bake({asset_id!r}, {{'texture_size': {args.size}, 'ao_samples': {args.ao_samples}, "
                "'engine': 'cpu'})\n")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"high_poly_triangles": faces, "size": args.size, "seconds": time.perf_counter() - started,
                      "peak_rss_gb": peak_kb / 2**20}, indent=2))
    print(f"peak memory of postprocess + bake: {peak_kb / 2**20:.2f} GB for {faces} triangles at {args.size}^2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meshes", default=",".join(mesh_set.KINDS))
    parser.add_argument("--faces", type=int, default=None, help="triangles of each high poly (default: the set's)")
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ao-samples", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-blender", action="store_true", help="ours only: times and our quality figures")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    if args.memory:
        args.faces = args.faces or 1_000_000
        memory(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
