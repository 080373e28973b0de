"""The benchmark's mesh set, made on the fly: organic scan, hard-surface part, thin-legged stool, generated blob.

Each maker is deterministic (fixed seeds) and returns a closed trimesh in Blender axes (metres, Z up) with
vertex colours, near the asked triangle count. Nothing big is shipped: `python bench/meshes.py` writes the set
as PLY files into a folder for inspection.

    organic     a lumpy star-shaped body (a rock or a head) on an even cube-sphere grid, with scanner noise
    hard        a machined block: flat faces and sharp edges from mesh booleans, densely tessellated
    thin        a stool with four thin legs, cross bars and a carrying handle (smooth SDF, marching cubes)
    generated   a noisy metaball blob through marching cubes, as a 3D model's extraction step leaves it
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import trimesh

KINDS = ("organic", "hard", "thin", "generated")
DEFAULT_FACES = {"organic": 371_000, "hard": 300_000, "thin": 250_000, "generated": 1_300_000}
CACHE = Path(tempfile.gettempdir()) / "o3f-bench-meshes"


def _colours(points: np.ndarray, seed: int) -> np.ndarray:
    """Smoothly varying RGBA vertex colours (uint8), so the base-colour bake has something to carry."""
    rng = np.random.default_rng(seed)
    waves = rng.normal(size=(3, 3)) * 4.0 / max(float(np.ptp(points, axis=0).max()), 1e-9)
    phase = rng.random(3) * 2 * np.pi
    rgb = 0.5 + 0.35 * np.sin(points @ waves.T + phase)
    return np.column_stack([np.rint(rgb * 255), np.full(len(points), 255)]).astype(np.uint8)


def _wave_field(directions: np.ndarray, rng, count: int, frequency: tuple[float, float],
                amplitude: float) -> np.ndarray:
    """A sum of plane waves with frequencies in a band: band-limited noise on the sphere of directions."""
    axes = rng.normal(size=(count, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    freqs = rng.uniform(*frequency, size=count)
    phases = rng.random(count) * 2 * np.pi
    total = np.zeros(len(directions))
    for axis, freq, phase in zip(axes, freqs, phases):
        total += np.sin(freq * (directions @ axis) + phase)
    return total * amplitude / np.sqrt(count / 2)


def cube_sphere(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions and outward triangles of a cube-sphere with an n x n grid per cube face (12 n² triangles)."""
    s = np.tan(np.linspace(-1, 1, n + 1) * np.pi / 4)  # equal-angle spacing: cells of nearly equal size
    u, v = (g.ravel() for g in np.meshgrid(s, s, indexing="ij"))
    index = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    quad_tris = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    points, faces = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            grid = np.empty((len(u), 3))
            grid[:, axis] = sign
            grid[:, [k for k in range(3) if k != axis]] = np.column_stack([u, v])
            faces.append(quad_tris + len(points) * len(u))
            points.append(grid)
    points, faces = np.concatenate(points), np.concatenate(faces)
    # Weld the shared cube edges, then wind every triangle outward.
    _, unique, inverse = np.unique(np.round(points, 9), axis=0, return_index=True, return_inverse=True)
    directions = points[unique] / np.linalg.norm(points[unique], axis=1, keepdims=True)
    faces = inverse.reshape(-1)[faces]
    corners = directions[faces]
    outward = np.einsum("ij,ij->i", np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]),
                        corners.sum(axis=1)) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    return directions, faces


def organic(faces: int = DEFAULT_FACES["organic"], seed: int = 17) -> trimesh.Trimesh:
    """A lumpy star-shaped body about 0.5 m across, with fine per-vertex noise as a scanner leaves it."""
    rng = np.random.default_rng(seed)
    n = max(4, int(round(np.sqrt(faces / 12))))
    directions, tris = cube_sphere(n)
    radius = np.ones(len(directions))
    for _ in range(7):  # lobes: a brow, a jaw, limb stumps
        centre = rng.normal(size=3)
        centre /= np.linalg.norm(centre)
        radius += rng.uniform(0.1, 0.35) * np.exp((directions @ centre - 1) / rng.uniform(0.03, 0.12))
    radius += _wave_field(directions, rng, 40, (3.0, 9.0), 0.05)     # folds
    radius += _wave_field(directions, rng, 60, (25.0, 60.0), 0.006)  # wrinkles and pores
    radius *= 1 + 0.0015 * rng.standard_normal(len(directions))      # scanner noise
    vertices = directions * radius[:, None] * 0.25 * np.array([1.0, 0.85, 1.15])
    mesh = trimesh.Trimesh(vertices, tris, process=False)
    mesh.visual.vertex_colors = _colours(vertices, seed)
    return mesh


def _boolean(meshes: list[trimesh.Trimesh], operations: list[str]) -> trimesh.Trimesh:
    """Left-to-right mesh booleans with pymeshlab: meshes[0] op[0] meshes[1] op[1] ..."""
    import pymeshlab

    meshset = pymeshlab.MeshSet()
    meshset.add_mesh(pymeshlab.Mesh(meshes[0].vertices, meshes[0].faces))
    current = 0
    for mesh, operation in zip(meshes[1:], operations):
        meshset.add_mesh(pymeshlab.Mesh(mesh.vertices, mesh.faces))
        other = meshset.current_mesh_id()
        getattr(meshset, f"generate_boolean_{operation}")(first_mesh=current, second_mesh=other)
        current = meshset.current_mesh_id()
    out = meshset.mesh(current)
    return trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=False)


def hard_surface(faces: int = DEFAULT_FACES["hard"], seed: int = 23) -> trimesh.Trimesh:
    """A machined block (slot, boss, through hole, chamfered corners), flat faces tessellated to `faces`."""
    import pymeshlab

    def box(extents, centre, angle=0.0):
        shape = trimesh.creation.box(extents=extents)
        if angle:
            shape.apply_transform(trimesh.transformations.rotation_matrix(angle, [0, 0, 1]))
        shape.apply_translation(centre)
        return shape

    def cylinder(radius, height, centre, axis=(0, 0, 1)):
        shape = trimesh.creation.cylinder(radius=radius, height=height, sections=96)
        shape.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], axis))
        shape.apply_translation(centre)
        return shape

    body = box([0.6, 0.4, 0.25], [0, 0, 0.125])
    corner_cut = box([0.2, 0.2, 0.4], [0.3, 0.2, 0.125], angle=np.pi / 4)
    corner_cut2 = box([0.2, 0.2, 0.4], [-0.3, -0.2, 0.125], angle=np.pi / 4)
    slot = box([0.5, 0.06, 0.1], [0.0, 0.0, 0.25])
    boss = cylinder(0.07, 0.12, [0.18, 0.1, 0.3])
    hole = cylinder(0.035, 0.6, [-0.18, 0.08, 0.125])
    side_hole = cylinder(0.03, 0.8, [0.0, 0.0, 0.1], axis=(1, 0, 0))
    step = box([0.25, 0.15, 0.08], [-0.15, -0.12, 0.29])
    solid = _boolean([body, corner_cut, corner_cut2, slot, boss, hole, side_hole, step],
                     ["difference", "difference", "difference", "union", "difference", "difference", "union"])
    meshset = pymeshlab.MeshSet()
    meshset.add_mesh(pymeshlab.Mesh(solid.vertices, solid.faces))
    # Isotropic remeshing that keeps creases (edges sharper than 30 degrees) where they are: even triangles
    # on flat faces with crisp edges, as a dense hard-surface sculpt or scan remesh has them.
    length = float(np.sqrt(solid.area / faces * 2.23))
    meshset.meshing_surface_subdivision_midpoint(iterations=12, threshold=pymeshlab.PureValue(length))
    meshset.meshing_isotropic_explicit_remeshing(targetlen=pymeshlab.PureValue(length), featuredeg=30.0,
                                                 iterations=10, adaptive=False, checksurfdist=False)
    out = meshset.current_mesh()
    mesh = trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=False)
    mesh.visual.vertex_colors = _colours(mesh.vertices, seed)
    return mesh


def _marching_cubes(sdf, bounds: np.ndarray, faces: int, seed: int) -> trimesh.Trimesh:
    """The zero level set of sdf(points) in bounds, at a grid fine enough for about `faces` triangles."""
    from skimage import measure

    def extract(step):
        axes = [np.arange(lo, hi + step, step) for lo, hi in bounds.T]
        shape = tuple(len(a) for a in axes)
        values = np.empty(shape, np.float32)
        # Slab by slab along x, so the field's temporaries stay small.
        yz = np.stack(np.meshgrid(axes[1], axes[2], indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
        for i, x in enumerate(axes[0]):
            points = np.column_stack([np.full(len(yz), x, np.float32), yz])
            values[i] = sdf(points).reshape(shape[1:])
        vertices, tris, _, _ = measure.marching_cubes(values, 0.0, spacing=(step, step, step))
        return vertices + bounds[0], tris

    step = float(np.ptp(bounds, axis=0).max()) / 64
    vertices, tris = extract(step)
    step *= np.sqrt(len(tris) / faces)  # triangle count goes with the inverse square of the step
    vertices, tris = extract(step)
    mesh = trimesh.Trimesh(vertices, tris, process=False)
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if mesh.volume < 0:
        mesh.invert()
    mesh.visual.vertex_colors = _colours(mesh.vertices, seed)
    return mesh


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _capsule(points, a, b, radius):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((points - a) @ ab) / (ab @ ab), 0, 1)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1) - radius


def _rounded_box(points, centre, half, radius):
    q = np.abs(points - np.asarray(centre)) - (np.asarray(half) - radius)
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0) - radius


def _torus(points, centre, major, minor):
    p = points - np.asarray(centre)
    # A handle standing in the XZ plane.
    ring = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) - major
    return np.sqrt(ring**2 + p[:, 1] ** 2) - minor


def thin_parts(faces: int = DEFAULT_FACES["thin"], seed: int = 31) -> trimesh.Trimesh:
    """A 0.75 m stool: seat, four 1.2 cm-radius legs, cross bars and a handle loop on top."""
    legs = [(x, y) for x in (-0.16, 0.16) for y in (-0.16, 0.16)]

    def sdf(p):
        d = _rounded_box(p, [0, 0, 0.62], [0.22, 0.22, 0.025], 0.01)
        for x, y in legs:
            d = _smooth_min(d, _capsule(p, [x, y, 0.61], [1.15 * x, 1.15 * y, 0.012], 0.012), 0.01)
        for (x0, y0), (x1, y1) in zip(legs, legs[1:] + legs[:1]):
            if x0 == x1 or y0 == y1:
                d = _smooth_min(d, _capsule(p, [1.05 * x0, 1.05 * y0, 0.22], [1.05 * x1, 1.05 * y1, 0.22],
                                            0.008), 0.008)
        return _smooth_min(d, _torus(p, [0, 0, 0.66], 0.09, 0.01), 0.01)

    bounds = np.array([[-0.24, -0.24, -0.01], [0.24, 0.24, 0.77]])
    return _marching_cubes(sdf, bounds, faces, seed)


def generated(faces: int = DEFAULT_FACES["generated"], seed: int = 41) -> trimesh.Trimesh:
    """A metaball creature about 1 m tall with noisy skin, as a model's marching-cubes extraction gives it."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0.45], [0, 0, 0.8], [0.18, 0, 0.55], [-0.18, 0, 0.55], [0.1, 0, 0.15],
                        [-0.1, 0, 0.15], [0, 0.1, 0.5]]) + rng.normal(scale=0.02, size=(7, 3))
    radii = np.array([0.2, 0.12, 0.08, 0.08, 0.09, 0.09, 0.1])
    axes = rng.normal(size=(30, 3))
    freqs, phases = rng.uniform(10, 30, 30), rng.random(30) * 2 * np.pi

    def sdf(p):
        d = np.linalg.norm(p - centres[0], axis=1) - radii[0]
        for c, r in zip(centres[1:], radii[1:]):
            d = _smooth_min(d, np.linalg.norm(p - c, axis=1) - r, 0.06)
        noise = np.sin(p @ axes.T * freqs + phases).sum(axis=1) / np.sqrt(15)
        return d + 0.006 * noise

    bounds = np.array([[-0.35, -0.25, -0.03], [0.35, 0.35, 1.0]])
    return _marching_cubes(sdf, bounds, faces, seed)


MAKERS = {"organic": organic, "hard": hard_surface, "thin": thin_parts, "generated": generated}


def make(kind: str, faces: int | None = None, cache: bool = True) -> trimesh.Trimesh:
    """One mesh of the set, in Blender axes, near `faces` triangles (the kind's default when None).

    Made meshes are kept in the system's temporary folder (the marching-cubes ones take minutes to make).
    """
    faces = int(faces or DEFAULT_FACES[kind])
    path = CACHE / f"{kind}-{faces}.npz"
    if cache and path.is_file():
        with np.load(path) as data:
            mesh = trimesh.Trimesh(data["vertices"], data["faces"], process=False)
            mesh.visual.vertex_colors = data["colors"]
            return mesh
    mesh = MAKERS[kind](faces)
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part.npz")
        np.savez(partial, vertices=mesh.vertices, faces=mesh.faces, colors=mesh.visual.vertex_colors)
        partial.replace(path)
    return mesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds.split(","):
        mesh = make(kind)
        path = args.folder / f"{kind}.ply"
        mesh.export(path)
        print(f"{kind}: {len(mesh.faces)} triangles, watertight {mesh.is_watertight}, {path}")


if __name__ == "__main__":
    main()
