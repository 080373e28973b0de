"""Silhouette generator: one view inflates to a closed coloured solid; labelled views carve a visual hull."""

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from server.errors import Cancelled, ForgeError
from server.generators.base import GenerationRequest
from server.generators.silhouette import SilhouetteGenerator
from server.meshfile import gltf_to_blender, glb_bytes, read_glb, vertex_coloured
from server.stages.background import cut_out

RED, BLUE = (220, 30, 30), (30, 40, 220)


def l_shape(size=400):
    """An 'L': a tall red bar on the image's left, a blue foot reaching right, on transparency."""
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[60:340, 100:170] = (*RED, 255)
    rgba[270:340, 170:300] = (*BLUE, 255)
    return rgba


def generate(views, **settings):
    cutouts = {view: cut_out(rgba).rgba for view, rgba in views.items()}
    settings = {"resolution": 128, "target_faces": 20000, **settings}
    return SilhouetteGenerator().generate(GenerationRequest(cutouts, settings=settings))


def test_one_view_gives_a_closed_coloured_solid_in_the_right_place():
    result = generate({"front": l_shape()}, height=1.8)
    mesh = result.mesh
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert len(mesh.faces) <= 21000
    size = mesh.extents
    assert size[2] == pytest.approx(1.8, rel=0.03)  # height along Z (Blender axes)
    assert size[0] == pytest.approx(1.8 * 200 / 280, rel=0.05)  # width follows the picture's aspect
    assert 0.1 < size[1] < size[0]  # some depth, less than the width for this flat L
    # Front and back mirror each other.
    assert abs(mesh.bounds[0, 1] + mesh.bounds[1, 1]) < 0.02
    colors = result.colors[:, :3].astype(int)
    red = np.linalg.norm(colors - RED, axis=1) < 40
    blue = np.linalg.norm(colors - BLUE, axis=1) < 40
    assert red.mean() > 0.3 and blue.mean() > 0.1
    # The image's left is the object's -X seen from the front camera (on -Y, looking +Y).
    assert mesh.vertices[red, 0].mean() < mesh.vertices[blue, 0].mean()
    assert mesh.vertices[red, 2].max() > mesh.vertices[blue, 2].max() + 0.5


def test_thickness_scales_the_depth():
    thin = generate({"front": l_shape()}, thickness=0.5).mesh.extents[1]
    thick = generate({"front": l_shape()}, thickness=1.5).mesh.extents[1]
    assert thick > 2 * thin


def test_glb_is_written_in_gltf_axes_with_colours_and_pbr_factors(tmp_path):
    result = generate({"front": l_shape()})
    mesh = result.mesh
    vertex_coloured(mesh, result.colors, metallic=0.0, roughness=0.8)
    data = glb_bytes(mesh)
    raw = list(trimesh.load(io.BytesIO(data), file_type="glb").geometry.values())[0]
    assert raw.extents[1] == pytest.approx(1.0, rel=0.03)  # glTF is Y up
    assert np.allclose(gltf_to_blender(raw.vertices), mesh.vertices, atol=1e-5)
    assert raw.visual.material.roughnessFactor == pytest.approx(0.8)
    assert raw.visual.material.metallicFactor == pytest.approx(0.0)
    assert np.allclose(raw.vertex_attributes["_ROUGHNESS"], 0.8)
    # COLOR_0 is linear light in glTF: darker than the sRGB values, and read back to them.
    stored = raw.visual.vertex_attributes["color"][:, :3].astype(int)
    assert (stored <= result.colors[:, :3]).all() and (stored < result.colors[:, :3]).any()
    path = tmp_path / "mesh.glb"
    path.write_bytes(data)
    back = read_glb(path)
    # trimesh writes COLOR_0 as 8-bit linear, which costs up to a few levels in dark colours.
    assert np.abs(back.visual.vertex_attributes["color"].astype(int) - result.colors).max() <= 4


def test_cancel_stops_the_generator():
    def cancelled():
        raise Cancelled("stop")

    request = GenerationRequest({"front": cut_out(l_shape()).rgba}, check_cancelled=cancelled)
    with pytest.raises(Cancelled):
        SilhouetteGenerator().generate(request)


def test_views_without_depth_are_refused():
    rgba = cut_out(l_shape()).rgba
    with pytest.raises(ForgeError, match="depth"):
        SilhouetteGenerator().generate(GenerationRequest({"front": rgba, "back": rgba[:, ::-1].copy()}))


def normalised_points(mesh, count=20000):
    points = mesh.sample(count, seed=1) if "seed" in mesh.sample.__code__.co_varnames else mesh.sample(count)
    lower, upper = mesh.bounds
    return (points - (lower + upper) / 2) / np.linalg.norm(upper - lower)


def two_way_distance(a, b):
    from scipy.spatial import cKDTree
    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


def load_glb(path):
    """The single mesh of a GLB with its visuals (force="mesh" would drop the vertex colours)."""
    scene = trimesh.load(path, file_type="glb")
    (mesh,) = scene.geometry.values()
    return mesh


def load_rgba(path):
    return np.asarray(Image.open(path).convert("RGBA"))


@pytest.mark.slow
def test_four_rendered_views_carve_the_true_shape(house_glb, house_views):
    truth = trimesh.load(house_glb, force="mesh")
    truth.vertices = gltf_to_blender(truth.vertices)
    views = {view: load_rgba(path) for view, path in house_views.items()}
    result = generate(views, resolution=192, target_faces=60000)
    assert result.mesh.is_watertight
    error = two_way_distance(normalised_points(result.mesh), normalised_points(truth))
    print(f"visual hull two-way distance: {error:.4f} of the diagonal")
    assert error < 0.02
    # Proportions agree too (not only after normalising): width over height and depth over height.
    ratio_true = truth.extents / truth.extents[2]
    ratio_made = result.mesh.extents / result.mesh.extents[2]
    assert np.allclose(ratio_made, ratio_true, atol=0.03)
    # Colours come from the view that sees them: the roof (top of the mesh) is red.
    top = result.mesh.vertices[:, 2] > 0.8 * result.mesh.vertices[:, 2].max()
    roof = result.colors[top, :3].astype(int)
    assert np.median(roof[:, 0]) > np.median(roof[:, 2]) + 40


def test_flat_base_stands_and_the_rounded_one_rocks():
    from server.meshdata import MeshArrays
    from server.stages.stability import stands_upright

    # The bundled barrel: inflated with a rounded base it rolls over; with a flat base it stands.
    rgba = load_rgba(Path(__file__).resolve().parents[1] / "samples" / "barrel.png")
    flat = generate({"front": rgba}, flat_base=True).mesh
    rounded = generate({"front": rgba}, flat_base=False).mesh
    assert flat.is_watertight and rounded.is_watertight
    bottom = flat.vertices[:, 2] < flat.vertices[:, 2].min() + 0.01
    assert np.ptp(flat.vertices[bottom, 1]) > 0.5 * flat.extents[1]  # a wide, flat footprint
    assert stands_upright(MeshArrays(flat.vertices, flat.faces))["stable"] is True
    assert stands_upright(MeshArrays(rounded.vertices, rounded.faces))["stable"] is False


def test_a_16_bit_grey_png_keeps_its_tones(tmp_path):
    from PIL import Image

    from server.images import load_rgba

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    rgba = load_rgba(tmp_path / "grey16.png", argument="images[0]", max_pixels=10**7, max_bytes=10**7)
    assert rgba.dtype == np.uint8 and rgba.shape == (64, 64, 4)
    assert rgba[0, 0, 0] == 0 and rgba[-1, -1, 0] == 255
    assert abs(int(rgba[32, 0, 0]) - 128) <= 1, "mid grey stays mid grey (PIL's convert would clip it to white)"
    assert (rgba[..., 3] == 255).all()


def test_the_sides_take_the_objects_colour_not_its_anti_aliased_rim():
    rgba = np.zeros((96, 96, 4), np.uint8)
    rgba[16:80, 24:72] = (250, 220, 160, 255)  # a pale one-pixel rim, as anti-aliasing against white leaves
    rgba[17:79, 25:71] = (180, 60, 30, 255)
    result = SilhouetteGenerator().generate(GenerationRequest(views={"front": rgba},
                                                              settings={"resolution": 64, "target_faces": 4000}))
    colours = np.asarray(result.colors)[:, :3].astype(int)
    assert (np.abs(colours - [180, 60, 30]).max(axis=1) <= 2).mean() > 0.99
