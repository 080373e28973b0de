"""The scene stages on pictures Blender renders with known truth (tests/scene_render.py): a five-object market
(a crate and a ball touching in the picture, a shipped house mesh far back) and a scene of one.

Placement gets each object's true shape (trimesh primitives, the house's own file) at an arbitrary size and
offset, as an ideal image-to-3D generator would return it: it must find position, yaw and scale from the
picture alone. The weight-free silhouette generator's meshes are checked in test_silhouette_meshes_in_the_scene.
Targets (issue 19): mask IoU >= 0.9; position error <= 5 % of the scene's extent; scale error <= 10 %;
front-to-back order right; lowest point on the ground within 1 cm; box overlap <= 1 %; scene.json reproduces
scene.glb within 1 mm. The scene's extent is the diagonal of the box around all true objects (5.8 m for the
market); position is an object's bounding-box centre; scale error is per axis of the object's own frame; a
box overlap is the shared volume of two world boxes over the smaller box's volume.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from server.generators.base import GenerationRequest
from server.generators.silhouette import SilhouetteGenerator
from server.meshdata import MeshArrays
from server.scene import SceneCamera, object_crop, place_objects, scene_glb, scene_layout, segment_scene
from server.scene.layout import BLENDER_TO_GLTF, blender_matrix_from_ue5
from tests.measures import iou
from tests.scene_render import HOUSE, rendered

MIN_IOU = 0.9
MAX_POSITION_ERROR = 0.05  # of the scene's extent
MAX_SCALE_ERROR = 0.10
MAX_GROUND_GAP_M = 0.01
MAX_OVERLAP = 0.01  # of the smaller box's volume


def _render(name, tmp_path_factory):
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed; cannot render test scenes")
    return rendered(name, tmp_path_factory.getbasetemp() / "scenes")


def true_shape(obj: dict) -> MeshArrays:
    """The object's shape in its own frame (Blender axes, front -Y) at a size and origin unrelated to the scene."""
    shape = obj["shape"]
    if shape == "box":
        mesh = trimesh.creation.box(extents=np.array(obj["size"]) / obj["size"][0])
    elif shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=4)
    elif shape == "cylinder":
        w, d, h = obj["size"]
        mesh = trimesh.creation.cylinder(radius=1.0, height=2.0 * h / w, sections=96)
    else:
        mesh = trimesh.load(HOUSE, force="mesh")
        mesh.vertices = mesh.vertices @ BLENDER_TO_GLTF  # glTF (x, y, z) -> Blender (x, -z, y)
    return MeshArrays(mesh.vertices * 0.37 + [0.2, -0.1, 0.3], mesh.faces)


class Scene:
    """One rendered scene, separated and placed once for all the tests below."""

    def __init__(self, truth: dict, meshes: str = "true", fit: str = "outline"):
        self.truth = truth
        self.image = np.asarray(Image.open(truth["image"]).convert("RGB"))
        self.true_masks = {o["name"]: np.asarray(Image.open(truth["masks"][o["name"]])) > 0 for o in truth["objects"]}
        camera = truth["camera"]
        self.camera = SceneCamera.for_image(self.image.shape, vfov_deg=camera["vfov_deg"],
                                            camera_height_m=camera["camera_height_m"], pitch_deg=camera["pitch_deg"])
        self.segmentation = segment_scene(self.image)
        self.matched = {}
        for obj in truth["objects"]:
            mask = self.true_masks[obj["name"]]
            self.matched[obj["name"]] = max(self.segmentation.objects, key=lambda found: iou(found.mask, mask))
        found = [self.matched[o["name"]] for o in truth["objects"]]
        if meshes == "true":
            self.meshes = [true_shape(o) for o in truth["objects"]]
        else:
            self.meshes = [silhouette_mesh(object_crop(self.image, f)) for f in found]
        self.placed = place_objects(found, self.meshes, self.camera, names=[o["name"] for o in truth["objects"]],
                                    fit=fit)
        self.layout = scene_layout("Scene", self.placed, self.camera, self.segmentation)
        glb = trimesh.load(io.BytesIO(scene_glb(self.placed)), file_type="glb")
        self.world = {}  # object name -> its world vertices read back from scene.glb, in Blender axes
        for name in glb.graph.nodes_geometry:
            matrix, geometry = glb.graph[name]
            self.world[name] = trimesh.transform_points(glb.geometry[geometry].vertices, matrix) @ BLENDER_TO_GLTF
        lo = np.min([o["bbox_min"] for o in truth["objects"]], axis=0)
        hi = np.max([o["bbox_max"] for o in truth["objects"]], axis=0)
        self.extent = float(np.linalg.norm(hi - lo))

    def errors(self) -> dict:
        """Per object: position error / scene extent, and the size error along its own width, depth, height."""
        out = {}
        for obj, placed in zip(self.truth["objects"], self.placed):
            world = self.world[obj["name"]]
            centre = (world.min(axis=0) + world.max(axis=0)) / 2
            position = float(np.linalg.norm(centre - np.array(obj["centre"]))) / self.extent
            size = np.abs(placed.size_m / np.array(obj["size"]) - 1.0)
            out[obj["name"]] = {"position": position, "width": size[0], "depth": size[1], "height": size[2]}
        return out


def silhouette_mesh(crop: np.ndarray) -> MeshArrays:
    generated = SilhouetteGenerator().generate(GenerationRequest(
        views={"front": crop}, settings={"resolution": 64, "target_faces": 3000}))
    return MeshArrays(generated.mesh.vertices, generated.mesh.faces)


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Scene:
    return Scene(_render("market", tmp_path_factory))


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Scene:
    return Scene(_render("single", tmp_path_factory))


def test_the_renderer_uses_the_assumed_camera(market, single):
    """Independent check of tests/scene_render.py against server/scene/camera.py: a box's corners projected by
    SceneCamera span its rendered mask (a box's outline is its corners; the crate's right side is behind the ball)."""
    sides = ("top", "bottom", "left", "right")
    for scene, name, seen in ((market, "crate", sides[:3]), (single, "chest", sides)):
        obj = next(o for o in scene.truth["objects"] if o["name"] == name)
        w, d, h = obj["size"]
        yaw = np.radians(obj["yaw_deg"])
        corners = np.array([[x, y, z] for x in (-w / 2, w / 2) for y in (-d / 2, d / 2) for z in (0, h)])
        rotation = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        world = corners @ rotation.T + np.array(obj["bottom_centre"])
        rows, cols, _ = scene.camera.project(world)
        mask = scene.true_masks[name]
        mask_rows, mask_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        found = dict(zip(sides, (mask_rows[0], mask_rows[-1] + 1, mask_cols[0], mask_cols[-1] + 1)))
        expected = dict(zip(sides, (rows.min(), rows.max(), cols.min(), cols.max())))
        for side in seen:
            assert found[side] == pytest.approx(expected[side], abs=1.5), (name, side, found, expected)


def test_every_object_is_separated(market):
    seg = market.segmentation
    assert seg.found == len(market.truth["objects"]) == 5 and not seg.capped
    matched = [market.matched[o["name"]].index for o in market.truth["objects"]]
    assert len(set(matched)) == 5  # one found object per true object
    for name, found in market.matched.items():
        assert iou(found.mask, market.true_masks[name]) >= MIN_IOU, name
    # the crate and the ball are one blob of foreground: the watershed parted them
    from skimage import measure
    assert measure.label(seg.foreground, connectivity=2).max() == 4
    assert "right" in market.matched["crate"].hidden and "left" in market.matched["ball"].hidden


@pytest.mark.parametrize("scene_name", ["market", "single"])
def test_placement_targets(scene_name, request):
    scene = request.getfixturevalue(scene_name)
    for name, error in scene.errors().items():
        assert error["position"] <= MAX_POSITION_ERROR, (name, error)
        for axis in ("width", "depth", "height"):
            assert error[axis] <= MAX_SCALE_ERROR, (name, axis, error)
    for obj, placed in zip(scene.truth["objects"], scene.placed):
        assert placed.yaw_deg == pytest.approx(obj["yaw_deg"], abs=2.0)  # facing the camera, as rendered


def test_front_to_back_order(market):
    def distance(box_min, box_max):
        return float(np.linalg.norm((np.asarray(box_min)[:2] + np.asarray(box_max)[:2]) / 2))

    truth = {o["name"]: distance(o["bbox_min"], o["bbox_max"]) for o in market.truth["objects"]}
    placed = {name: distance(v.min(axis=0), v.max(axis=0)) for name, v in market.world.items()}
    for a, b in itertools.combinations(truth, 2):
        assert (truth[a] < truth[b]) == (placed[a] < placed[b]), (a, b, truth, placed)


@pytest.mark.parametrize("scene_name", ["market", "single"])
def test_lowest_points_on_the_ground_and_no_overlap(scene_name, request):
    scene = request.getfixturevalue(scene_name)
    assert all(abs(o["lowest_z"]) < 1e-6 for o in scene.truth["objects"])  # the render stands them on z = 0
    boxes = {}
    for name, world in scene.world.items():
        assert abs(world[:, 2].min()) <= MAX_GROUND_GAP_M, name
        boxes[name] = (world.min(axis=0), world.max(axis=0))
    for a, b in itertools.combinations(boxes, 2):
        shared = np.prod(np.clip(np.minimum(boxes[a][1], boxes[b][1]) - np.maximum(boxes[a][0], boxes[b][0]), 0, None))
        smaller = min(np.prod(boxes[a][1] - boxes[a][0]), np.prod(boxes[b][1] - boxes[b][0]))
        assert shared / smaller <= MAX_OVERLAP, (a, b)


def test_scene_json_reproduces_scene_glb(market):
    """Each object's own mesh under its scene.json UE5 transform (cm, degrees, UE axes) lands on the vertices
    scene.glb holds, within 1 mm; and the JSON survives a text round trip."""
    layout = json.loads(json.dumps(market.layout))
    assert [o["name"] for o in layout["objects"]] == [o["name"] for o in market.truth["objects"]]
    for entry, mesh in zip(layout["objects"], market.meshes):
        placed = trimesh.transform_points(mesh.vertices, blender_matrix_from_ue5(entry["ue5"]))
        assert np.abs(placed - market.world[entry["name"]]).max() <= 0.001, entry["name"]


def test_a_scene_of_one(single):
    assert single.segmentation.found == 1 and len(single.placed) == 1
    assert iou(single.segmentation.objects[0].mask, single.true_masks["chest"]) >= MIN_IOU
    assert single.placed[0].moved_m.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.slow
def test_silhouette_meshes_in_the_scene(tmp_path_factory):
    """The weight-free chain: each object's crop inflated by the silhouette generator, placed with fit="bounds"
    (its inflated body has no true top or depth, so its bounding box stands for the object). Order, ground
    contact, overlap and position hold as for true shapes; size holds where all four of an object's edges
    are in view (a side hidden by a neighbour leaves the inflated body's proportions to guess the rest)."""
    scene = Scene(_render("market", tmp_path_factory), meshes="silhouette", fit="bounds")
    errors = scene.errors()
    for name, error in errors.items():
        assert error["position"] <= MAX_POSITION_ERROR, (name, error)
        assert abs(scene.world[name][:, 2].min()) <= MAX_GROUND_GAP_M
        if not scene.matched[name].hidden:
            assert max(error["width"], error["height"]) <= MAX_SCALE_ERROR, (name, error)
    assert {n for n in errors if not scene.matched[n].hidden} == {"barrel", "post", "house"}
    truth = {o["name"]: np.linalg.norm(o["centre"][:2]) for o in scene.truth["objects"]}
    placed = {n: np.linalg.norm((w.min(axis=0)[:2] + w.max(axis=0)[:2]) / 2) for n, w in scene.world.items()}
    for a, b in itertools.combinations(truth, 2):
        assert (truth[a] < truth[b]) == (placed[a] < placed[b]), (a, b)
