"""Benchmark: our whole chain against Blender's Decimate + Smart UV Project + Cycles normal and AO bakes.

Both start from the same high poly (the bundled barrel, generated at --faces triangles) and aim at the
same LOD0 triangle count and map size, measured in the same run on the same machine. Ours also makes
LOD1/LOD2, collision, the UE5 FBX files and the zip; Blender's side is only the four steps named.

Quality, measured the same way for both: decimation error (two-sided Hausdorff and mean distance to
the high poly) and normal error (the high poly's normal against the normal rebuilt from each low poly
plus its 8-bit tangent-space map, at points sampled on the high poly).

    python bench/chain_vs_blender.py [--faces 250000] [--target 10000] [--size 2048] [--ao-samples 32]
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

from server.api import ForgeApi  # noqa: E402
from server.bake.sources import sample_texture  # noqa: E402
from server.bake.tangents import vertex_tangents  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.finishing import load_game_mesh, read_high_poly  # noqa: E402
from server.meshdata import MeshArrays  # noqa: E402
from server.stages.decimate import surface_deviation  # noqa: E402
from server.stages.uv import smooth_normals_on_split_mesh  # noqa: E402
from tests.blender_bake import run_blender_job  # noqa: E402

SAMPLE = ROOT / "samples" / "barrel.png"


def make_asset(api: ForgeApi, faces: int) -> str:
    resolution = 320 if faces <= 300_000 else 512
    record, _ = api.generate([str(SAMPLE)], "BenchBarrel", "silhouette", "", "", 0,
                             {"target_faces": faces, "resolution": resolution})
    return json.loads(record)["asset_id"]


def run_ours(api: ForgeApi, asset_id: str, args) -> dict:
    timings = {}
    started = time.perf_counter()
    api.postprocess(asset_id, {"target_triangles": args.target, "texture_size": args.size, "height": "keep",
                               "collision": True})
    timings["postprocess"] = time.perf_counter() - started
    clock = time.perf_counter()
    api.bake(asset_id, {"ao_samples": args.ao_samples, "engine": "cpu"})
    timings["bake"] = time.perf_counter() - clock
    clock = time.perf_counter()
    api.export(asset_id, "ue5", {})
    timings["export"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    return timings


def split_by_loops(vertices, loop_faces, loop_vertex, loop_uv) -> MeshArrays:
    """Blender's per-loop UVs as a mesh split wherever a position carries two UVs."""
    keys = np.concatenate([loop_vertex[:, None].astype(np.float64), np.round(loop_uv, 7)], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    mesh = MeshArrays(vertices[unique[:, 0].astype(np.int64)], inverse[loop_faces], uv=unique[:, 1:3])
    mesh.normals = smooth_normals_on_split_mesh(mesh)
    return mesh


def run_blender(high: MeshArrays, args, cage: float, ao_distance: float, scratch: Path) -> tuple[dict, MeshArrays, np.ndarray]:
    result = run_blender_job("decimate_unwrap", scratch, vertices=high.vertices, faces=high.faces,
                             target=np.array(args.target), threads=np.array(args.threads))
    low = split_by_loops(result["vertices"].astype(np.float64), result["loop_faces"], result["loop_vertex"],
                         result["loop_uv"].astype(np.float64))
    baked = run_blender_job("bake", scratch, high_vertices=high.vertices, high_faces=high.faces,
                            vertices=low.vertices, faces=low.faces, uv=low.uv, normals=low.normals,
                            size=np.array(args.size), cage=np.array(cage), max_ray=np.array(2 * cage),
                            margin=np.array(16), ao_samples=np.array(args.ao_samples),
                            ao_distance=np.array(ao_distance), threads=np.array(args.threads))
    timings = {"decimate": float(result["seconds"][0]), "smart_uv": float(result["seconds"][1]),
               "normal_bake": float(baked["seconds"][0]), "ao_bake": float(baked["seconds"][1])}
    timings["total"] = sum(timings.values())
    # Cycles gives the map as colours in [0, 1]; quantise to 8 bits as a shipped PNG would be.
    normal_8bit = np.rint(baked["normal"].clip(0, 1) * 255) / 255 * 2 - 1
    return timings, low, normal_8bit


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


def our_lod0_unplaced(asset) -> MeshArrays:
    lods, _, state = load_game_mesh(asset)
    transform = state["transform"]
    lod0 = lods[0]
    vertices = ((lod0.vertices - np.asarray(transform["translation"])) / transform["scale"]) @ np.asarray(transform["rotation"])
    return MeshArrays(vertices, lod0.faces, uv=lod0.uv, normals=lod0.normals @ np.asarray(transform["rotation"]))


def compare(args) -> None:
    with tempfile.TemporaryDirectory(prefix="o3f-bench-") as scratch:
        scratch = Path(scratch)
        os.environ["O3F_WORKSPACE"] = str(scratch / "ws")
        api = ForgeApi(load_settings())
        print(f"making a {args.faces}-triangle high poly from {SAMPLE.name} (not timed) ...", flush=True)
        asset_id = make_asset(api, args.faces)
        asset = api.ctx.store.open(asset_id)
        ours = run_ours(api, asset_id, args)
        mesh = read_high_poly(asset)
        high = MeshArrays(mesh.vertices, mesh.faces)
        state = load_game_mesh(asset)[2]
        cage = 1.5 * float(state["deviation_m"]["max"])
        diagonal = float(np.linalg.norm(np.ptp(high.vertices, axis=0)))
        blender, blender_low, blender_map = run_blender(high, args, max(cage, 0.002 * diagonal), 0.1 * diagonal,
                                                        scratch / "blender")

        from PIL import Image
        our_map = np.asarray(Image.open(asset.folder / "textures" / "normal_gl.png"), np.float64) / 255 * 2 - 1
        lod0 = our_lod0_unplaced(asset)
        quality = {
            "ours": {"deviation": surface_deviation(high, lod0), "normal_error_deg": normal_error(mesh, lod0, our_map),
                     "lod0_triangles": lod0.face_count},
            "blender": {"deviation": surface_deviation(high, blender_low),
                        "normal_error_deg": normal_error(mesh, blender_low, blender_map),
                        "lod0_triangles": blender_low.face_count},
        }
    report = {"high_poly_triangles": high.face_count, "target": args.target, "size": args.size,
              "ao_samples": args.ao_samples, "threads": args.threads,
              "seconds": {"ours": ours, "blender": blender},
              "speedup": blender["total"] / ours["total"], "quality": quality}
    print(json.dumps(report, indent=2, default=float))
    print(f"\nours {ours['total']:.1f} s (postprocess {ours['postprocess']:.1f}, bake {ours['bake']:.1f}, "
          f"export {ours['export']:.1f}) vs Blender {blender['total']:.1f} s -> {report['speedup']:.2f}x")
    for side in ("ours", "blender"):
        q = quality[side]
        print(f"{side:8s} LOD0 {q['lod0_triangles']} tris, Hausdorff {q['deviation']['max'] * 1000:.2f} mm, "
              f"mean {q['deviation']['mean'] * 1000:.3f} mm, normal error {q['normal_error_deg']:.2f} deg")


def memory(args) -> None:
    """Postprocess + bake of a big high poly in a child process; report the child's peak resident memory."""
    with tempfile.TemporaryDirectory(prefix="o3f-bench-") as scratch:
        os.environ["O3F_WORKSPACE"] = str(Path(scratch) / "ws")
        api = ForgeApi(load_settings())
        asset_id = make_asset(api, args.faces)
        faces = json.loads(api.asset(asset_id))["mesh"]["faces"]
        code = (f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); os.environ['O3F_WORKSPACE'] = {os.environ['O3F_WORKSPACE']!r}\n"
                "from server.api import ForgeApi\napi = ForgeApi()\n"
                f"api.postprocess({asset_id!r}, {{'target_triangles': {args.target}, 'texture_size': {args.size}}})\n"
                f"api.bake({asset_id!r}, {{'ao_samples': {args.ao_samples}, 'engine': 'cpu'}})\n")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"high_poly_triangles": faces, "size": args.size, "seconds": time.perf_counter() - started,
                      "peak_rss_gb": peak_kb / 2**20}, indent=2))
    print(f"peak memory of postprocess + bake: {peak_kb / 2**20:.2f} GB for {faces} triangles at {args.size}^2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=250_000)
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--ao-samples", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    memory(args) if args.memory else compare(args)


if __name__ == "__main__":
    main()
