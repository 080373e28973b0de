"""Scene model adapters (MIDI-3D, SceneGen) against strict recording stand-ins of their upstream pipelines.

Neither model installs from PyPI (MIDI-3D has no package; PyPI's 'scenegen' is an unrelated 2020 project), so the
pipelines here are stand-ins written from the pinned upstream sources (vendor/midi3d.toml, vendor/scenegen.toml):
MIDIPipeline.from_pretrained / to / init_custom_adapter / __call__ and SceneGenImageToScenePipeline.from_pretrained
/ cuda / run_scene with upstream's signatures (a wrong keyword fails here as it would there), nothing else. Their
outputs are exact: the fields and assets of known boxes in each model's own frame, under a similarity the adapter
is not told. These tests are not a verification of either model; the real-weight tests at the end are skipped
where the models cannot run.
"""

from __future__ import annotations

import sys
from typing import ClassVar

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial import ConvexHull
from skimage import draw

from server import gpu
from server.errors import InputError
from server.generators import base, modelhost
from server.meshdata import MeshArrays
from server.scene import SceneCamera, segment_scene
from server.scene.models import (
    SceneRequest,
    check_scene_model,
    choose_scene_model,
    fit_frame,
    place_fitted,
    quota_estimate,
    report,
    with_mesh,
)
from server.scene.models import midi3d, scenegen
from server.scene.models.frame import Y_UP_TO_BLENDER, Start, rotation
from server.scene.models.midi3d import Midi3DModel
from server.scene.models.scenegen import SceneGenModel
from tests.fakes import fake_module, on_zero_gpu

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")

CAMERA = SceneCamera(512, 384)
POSITION_TOL_M = 0.02
SIZE_TOL_M = 0.01


class Box:
    """A box standing on the ground of the camera world (Blender axes, metres), turned by yaw about its centre."""

    def __init__(self, size, at, yaw_deg=0.0, colour=(200, 60, 60)):
        self.size, self.at, self.yaw_deg, self.colour = np.array(size, float), np.array(at, float), yaw_deg, colour

    def to_world(self) -> np.ndarray:
        """4x4: the box's own frame (centred, Blender axes) to the world."""
        matrix = np.eye(4)
        matrix[:3, :3] = rotation(self.yaw_deg, 0.0)
        matrix[:3, 3] = [self.at[0], self.at[1], self.size[2] / 2]
        return matrix

    def corners(self) -> np.ndarray:
        own = trimesh.creation.box(extents=self.size).vertices
        return own @ self.to_world()[:3, :3].T + self.to_world()[:3, 3]

    def world_mesh(self) -> trimesh.Trimesh:
        mesh = trimesh.creation.box(extents=self.size)
        mesh.apply_transform(self.to_world())
        return mesh


BOXES = (Box((0.5, 0.4, 0.6), (-0.9, 3.2), 20.0, (200, 50, 50)),
         Box((0.8, 0.6, 1.0), (0.1, 4.5), -10.0, (50, 200, 50)),
         Box((0.4, 0.4, 0.3), (0.9, 2.8), 45.0, (50, 50, 200)))


def render(boxes, camera=CAMERA) -> np.ndarray:
    """RGBA picture of the boxes through the camera, far ones first; transparent where there is no box."""
    rgba = np.zeros((camera.height, camera.width, 4), np.uint8)
    for box in sorted(boxes, key=lambda b: -b.at[1]):
        rows, cols, _ = camera.project(box.corners())
        points = np.column_stack([rows, cols])
        outline = points[ConvexHull(points).vertices]
        # Continuous image positions to pixel indices: pixel (i, j) is centred on (i + 0.5, j + 0.5).
        rr, cc = draw.polygon(outline[:, 0] - 0.5, outline[:, 1] - 0.5, shape=rgba.shape[:2])
        rgba[rr, cc, :3] = box.colour
        rgba[rr, cc, 3] = 255
    return rgba


@pytest.fixture(scope="module")
def picture():
    rgba = render(BOXES)
    segmentation = segment_scene(rgba, background="alpha")
    assert len(segmentation.objects) == len(BOXES)  # left to right, as BOXES are listed
    return rgba, segmentation


def centre_of(placed) -> np.ndarray:
    lo, hi = placed.world_bounds()
    return (lo + hi) / 2


def model_frame(world_points, scale, yaw_deg, tilt_deg, translation) -> np.ndarray:
    """World points in a model frame (Blender axes) related to the world by world = scale R p + translation."""
    return (np.asarray(world_points) - translation) @ rotation(yaw_deg, tilt_deg) / scale


# The frame fit on its own: a layout in a hidden frame, put back where the picture shows it.


@pytest.mark.parametrize("hidden,kwargs", [
    ((0.37, 0.0, -15.0, (0.2, 3.5, 0.9)), {"starts": (Start(0.0, -15.0), Start(0.0, 0.0)), "fit_yaw": True,
                                           "fit_tilt": True, "anchored": True}),
    ((0.5, 70.0, 0.0, (-0.3, 3.0, 0.0)), {"starts": tuple(Start(float(y), 0.0) for y in range(-180, 180, 45)),
                                          "fit_yaw": True}),
], ids=["tipped-with-the-camera", "level-turned-away"])
def test_the_fit_finds_the_hidden_similarity_and_every_box_lands_where_it_stood(picture, hidden, kwargs):
    _, segmentation = picture
    scale, yaw, tilt, shift = hidden
    meshes = [MeshArrays(model_frame(box.world_mesh().vertices, scale, yaw, tilt, np.array(shift)),
                         box.world_mesh().faces) for box in BOXES]
    fit = fit_frame(segmentation.objects, [m.vertices for m in meshes], CAMERA, **kwargs)
    assert fit.scale == pytest.approx(scale, rel=0.01)
    assert fit.yaw_deg == pytest.approx(yaw, abs=0.5) and fit.tilt_deg == pytest.approx(tilt, abs=0.5)
    assert fit.residual_px < 1.0 and not fit.notes
    placed = place_fitted(segmentation.objects, meshes, fit, CAMERA, names=["A", "B", "C"])
    for item, box in zip(placed, BOXES):
        assert np.allclose(centre_of(item)[:2], box.at, atol=POSITION_TOL_M)
        assert item.world_bounds()[0][2] == pytest.approx(0.0, abs=0.01)  # standing on the ground
        assert item.size_m[2] == pytest.approx(box.size[2], abs=SIZE_TOL_M)
        assert np.allclose(item.scale, 1.0) and item.source is segmentation.objects[BOXES.index(box)]
        assert item.mesh.vertices[:, 2].min() == pytest.approx(0.0)  # its own origin at its base


def test_an_object_the_model_put_on_a_table_stays_up_and_one_below_the_ground_is_lifted(picture):
    _, segmentation = picture
    meshes = [MeshArrays(box.world_mesh().vertices, box.world_mesh().faces) for box in BOXES]
    meshes[2] = MeshArrays(meshes[2].vertices + [0, 0, 0.7], meshes[2].faces)  # on a 0.7 m table
    meshes[0] = MeshArrays(meshes[0].vertices - [0, 0, 0.03], meshes[0].faces)  # 3 cm into the floor
    fit = fit_frame(segmentation.objects, [m.vertices for m in meshes], CAMERA, fit_yaw=False)
    from server.scene.models.frame import FrameFit

    identity = FrameFit(1.0, 0.0, 0.0, (0.0, 0.0, 0.0), fit.residual_px)
    placed = place_fitted(segmentation.objects, meshes, identity, CAMERA, names=["A", "B", "C"], resolve=False)
    assert placed[0].location[2] == 0.0 and placed[0].notes == ["set on the ground: moved 3.0 cm up"]
    assert placed[2].location[2] == pytest.approx(0.7) and "0.70 m above the ground" in placed[2].notes[0]


def test_a_finished_mesh_takes_the_same_place(picture):
    _, segmentation = picture
    meshes = [MeshArrays(box.world_mesh().vertices, box.world_mesh().faces) for box in BOXES]
    fit = fit_frame(segmentation.objects, [m.vertices for m in meshes], CAMERA)
    placed = place_fitted(segmentation.objects, meshes, fit, CAMERA, names=["A", "B", "C"])
    before = placed[1].world_bounds()
    # Post-processing put the pivot at the bottom centre and kept the size; a second one shrank it to half.
    finished = MeshArrays(placed[1].mesh.vertices - [0.1, 0.2, 0.0], placed[1].mesh.faces)
    again = with_mesh(placed[1], finished)
    assert np.allclose(again.world_bounds()[0], before[0]) and np.allclose(again.world_bounds()[1], before[1])
    assert np.allclose(again.scale, 1.0) and again.yaw_deg == placed[1].yaw_deg
    halved = with_mesh(placed[1], MeshArrays(placed[1].mesh.vertices * 0.5, placed[1].mesh.faces))
    assert np.allclose(halved.scale, 2.0) and np.allclose(halved.world_bounds()[0], before[0])


# MIDI-3D through a stand-in of midi.pipelines.pipeline_midi.MIDIPipeline.

MIDI_HIDDEN = {"scale": 0.42, "yaw": 0.0, "tilt": -15.0, "translation": np.array([0.1, 3.6, 1.0])}
MIDI_GRID = 64  # cells per axis of each instance's decoding box (upstream: 256, octree depth 8)


def box_field(points_gltf: np.ndarray, box: Box, hidden: dict) -> np.ndarray:
    """Signed distance in metres (negative inside) of MIDI-frame points to a world box."""
    model = points_gltf @ Y_UP_TO_BLENDER.T
    world = hidden["scale"] * model @ rotation(hidden["yaw"], hidden["tilt"]).T + hidden["translation"]
    own = (world - box.to_world()[:3, 3]) @ box.to_world()[:3, :3]
    return np.max(np.abs(own) - box.size / 2, axis=1)


class FakeMIDIPipeline:
    """MIDIPipeline's public surface as upstream defines it, recording each call. Its fields are those of BOXES
    (instance i is box i) in MIDI's frame, seen through MIDI_HIDDEN; the layout follows upstream's
    decode_progressive output: per instance a flattened 'ij' grid over the box's bounds plus padding."""

    calls: ClassVar[list] = []
    boxes: ClassVar[tuple] = BOXES

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        cls.calls.append(("from_pretrained", pretrained_model_name_or_path, kwargs))
        return cls()

    def to(self, *args, **kwargs):
        self.calls.append(("to", args, kwargs))
        return self

    def init_custom_adapter(self, *args, **kwargs):
        self.calls.append(("init_custom_adapter", args, kwargs))

    @property
    def device(self):
        return torch.device("cpu")

    def __call__(self, image, mask, image_scene, num_inference_steps=50, timesteps=None, guidance_scale=7.0,
                 num_images_per_prompt=1, sampled_points=None, decode_progressive=False, decode_to_cpu=False,
                 generator=None, latents=None, attention_kwargs=None, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs=["latents"], output_type="mesh_vf",  # noqa: B006 - as upstream
                 return_dict=True):
        self.calls.append(("call", {"image": image, "mask": mask, "image_scene": image_scene,
                                    "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale,
                                    "decode_progressive": decode_progressive, "attention_kwargs": attention_kwargs,
                                    "generator_seed": generator.initial_seed() if generator is not None else None,
                                    "return_dict": return_dict, "output_type": output_type}))
        # Upstream's encode_image_2 reads each mask as a 2D array scaled to [0, 1], all of one size.
        stacked = torch.stack([torch.from_numpy(np.array(m) / 255.0).unsqueeze(0) for m in mask])
        assert stacked.shape[1] == 1 and stacked.ndim == 4
        logits, sizes, mins, maxs = [], [], [], []
        for box in self.boxes[:len(image)]:
            inverse = model_frame(box.corners(), MIDI_HIDDEN["scale"], MIDI_HIDDEN["yaw"], MIDI_HIDDEN["tilt"],
                                  MIDI_HIDDEN["translation"]) @ Y_UP_TO_BLENDER  # Blender model -> glTF
            low, high = inverse.min(axis=0) - 0.05, inverse.max(axis=0) + 0.05
            axes = [np.linspace(low[k], high[k], MIDI_GRID + 1) for k in range(3)]
            points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            logits.append(torch.from_numpy(box_field(points, box, MIDI_HIDDEN).astype(np.float32))[:, None])
            sizes.append(high - low)
            mins.append(low)
            maxs.append(high)
        grid = [MIDI_GRID + 1] * 3
        return torch.stack(logits), [list(grid) for _ in logits], sizes, mins, maxs


SMOOTH_CALLS: list = []


def fake_smooth_gpu(binary_array, method="auto", **kwargs):
    """midi.utils.smoothing.smooth_gpu's signature; records, and leaves the exact field as it is."""
    SMOOTH_CALLS.append((tuple(binary_array.shape), method, kwargs))
    return binary_array


@pytest.fixture
def host(monkeypatch):
    fresh = modelhost.ModelHost()
    monkeypatch.setattr(midi3d, "MODEL_HOST", fresh)
    monkeypatch.setattr(scenegen, "MODEL_HOST", fresh)
    return fresh


@pytest.fixture
def cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)


@pytest.fixture
def fake_midi(monkeypatch, tmp_path, host, cuda):
    """midi's pipeline and smoothing, torch_cluster, a CUDA GPU and local weights: the adapter's real path runs."""
    FakeMIDIPipeline.calls = []
    SMOOTH_CALLS.clear()
    for name, members in (("midi", {}), ("midi.pipelines", {}),
                          ("midi.pipelines.pipeline_midi", {"MIDIPipeline": FakeMIDIPipeline}),
                          ("midi.utils", {}), ("midi.utils.smoothing", {"smooth_gpu": fake_smooth_gpu}),
                          ("torch_cluster", {})):
        monkeypatch.setitem(sys.modules, name, fake_module(name, **members))
    (tmp_path / "model_index.json").write_text("{}")
    monkeypatch.setenv(midi3d.WEIGHTS_ENV, str(tmp_path))
    return FakeMIDIPipeline


def scene_request(picture, **kwargs) -> SceneRequest:
    rgba, segmentation = picture
    return SceneRequest(rgba, segmentation, CAMERA, names=["Stall_01", "Stall_02", "Stall_03"], **kwargs)


def test_midi_gets_each_mask_as_upstream_reads_it(fake_midi, picture):
    rgba, segmentation = picture
    Midi3DModel().generate(scene_request(picture, seed=11, settings={"steps": 20, "guidance_scale": 6.5}))
    (_, call), = [c for c in fake_midi.calls if c[0] == "call"]
    count = len(segmentation.objects)
    assert call["attention_kwargs"] == {"num_instances": count}
    assert call["decode_progressive"] is True and call["return_dict"] is False
    assert (call["num_inference_steps"], call["guidance_scale"], call["generator_seed"]) == (20, 6.5, 11)
    assert len(call["image"]) == len(call["mask"]) == len(call["image_scene"]) == count
    # A square canvas (the picture centred on white), since MIDI's image processors centre-crop to a square.
    side, top = 512, (512 - 384) // 2
    scene = np.asarray(call["image_scene"][0])
    assert call["image_scene"][0].mode == "RGB" and scene.shape == (side, side, 3)
    assert np.all(scene[:top] == 255) and np.all(scene[top + 384:] == 255)
    for index, (image, mask, obj) in enumerate(zip(call["image"], call["mask"], segmentation.objects)):
        assert mask.mode == "L" and image.mode == "RGB" and mask.size == image.size == (side, side)
        pixels, on = np.asarray(image), np.asarray(mask)
        assert set(np.unique(on)) == {0, 255}
        assert np.array_equal(on[top:top + 384] == 255, obj.mask), f"mask {index} is object {index + 1}'s"
        assert np.all(pixels[on == 0] == 255), "the instance image is white outside its mask"
        assert np.array_equal(pixels[top:top + 384][obj.mask], rgba[..., :3][obj.mask])
        assert call["image_scene"][index] is call["image_scene"][0]
    assert [s[1:] for s in SMOOTH_CALLS] == [("gaussian", {"sigma": 1.0})] * count


def test_midi_puts_each_box_where_it_stood(fake_midi, picture):
    result = Midi3DModel().generate(scene_request(picture))
    assert result.model == "midi3d" and [p.name for p in result.placed] == ["Stall_01", "Stall_02", "Stall_03"]
    assert result.fit.tilt_deg == pytest.approx(-15.0, abs=1.0) and abs(result.fit.yaw_deg) < 1.0
    assert result.fit.scale == pytest.approx(MIDI_HIDDEN["scale"], rel=0.02)
    for item, box in zip(result.placed, BOXES):
        assert np.allclose(centre_of(item)[:2], box.at, atol=POSITION_TOL_M), item.name
        assert item.world_bounds()[0][2] == pytest.approx(0.0, abs=0.01)
        assert item.size_m[2] == pytest.approx(box.size[2], abs=SIZE_TOL_M)
        assert item.mesh.colors.shape == (len(item.mesh.vertices), 4)  # neutral grey: MIDI makes no colour
        assert trimesh.Trimesh(item.mesh.vertices, item.mesh.faces).volume > 0  # faces outward
    assert result.info["gpu_seconds"] > 0 and result.info["steps"] == midi3d.DEFAULT_STEPS


def test_midi_loads_once_as_its_scripts_do(fake_midi, picture, host, tmp_path):
    Midi3DModel().generate(scene_request(picture))
    Midi3DModel().generate(scene_request(picture, seed=3))
    loads = [c for c in fake_midi.calls if c[0] != "call"]
    assert loads == [("from_pretrained", str(tmp_path), {}), ("to", ("cuda", torch.float16), {}),
                     ("init_custom_adapter", (), {"set_self_attn_module_names": list(midi3d.MI_BLOCKS)})]
    assert host.loads == [f"midi3d:{tmp_path}"]


def test_midi_availability_names_each_missing_piece_in_turn(monkeypatch, tmp_path, cuda):
    model = Midi3DModel()
    for name in ("midi", "midi.pipelines", "midi.pipelines.pipeline_midi"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert model.availability() == (False, "library MIDI-3D is not installed (midi.pipelines.pipeline_midi not "
                                           "found; see vendor/midi3d.toml)")
    for name in ("midi", "midi.pipelines"):
        monkeypatch.setitem(sys.modules, name, fake_module(name))
    monkeypatch.setitem(sys.modules, "midi.pipelines.pipeline_midi",
                        fake_module("midi.pipelines.pipeline_midi", MIDIPipeline=FakeMIDIPipeline))
    monkeypatch.setitem(sys.modules, "torch_cluster", None)
    assert model.availability() == (False, "compiled extension torch_cluster is not installed (PyPI torch-cluster "
                                           "built for this torch and CUDA (PyG publishes wheels))")
    monkeypatch.setitem(sys.modules, "torch_cluster", fake_module("torch_cluster"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert model.availability() == (False, "no CUDA GPU on this server")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv(midi3d.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(base, "cached_on_hub", lambda repo, name: False)
    assert model.availability() == (False, "weights VAST-AI/MIDI-3D are not in the Hugging Face cache: download "
                                           "them, point O3F_MIDI3D_WEIGHTS at a local copy, or set "
                                           "O3F_DOWNLOAD_WEIGHTS=1")
    monkeypatch.setenv(midi3d.WEIGHTS_ENV, str(tmp_path))
    assert model.availability() == (False, f"O3F_MIDI3D_WEIGHTS={tmp_path} has no model_index.json")
    (tmp_path / "model_index.json").write_text("{}")
    assert model.availability() == (True, f"MIDI-3D on CUDA, weights from {tmp_path}")


def zero_gpu_run(monkeypatch, module, make_request, settings) -> list:
    """Run the module's model as on ZeroGPU; returns the durations its GPU calls asked for."""
    with on_zero_gpu(monkeypatch, module) as (zero, asked):
        model = zero.Midi3DModel() if module is midi3d else zero.SceneGenModel()
        model.generate(make_request(settings))
    return asked


def test_on_zero_gpu_midi_asks_for_its_computed_duration(fake_midi, picture, monkeypatch):
    asked = zero_gpu_run(monkeypatch, midi3d, lambda s: scene_request(picture, settings=s), {"steps": 30})
    expected = midi3d.seconds_for(3, 30, midi3d.DEFAULT_GUIDANCE)
    assert asked == [gpu.requested_duration(expected)]
    assert expected == Midi3DModel().gpu_estimate(3, {"steps": 30})
    assert Midi3DModel().gpu_estimate(6, {}) > Midi3DModel().gpu_estimate(3, {})


# SceneGen through a stand-in of scenegen.pipelines.SceneGenImageToScenePipeline.

SCENEGEN_HIDDEN = {"scale": 0.8, "yaw": 65.0, "translation": np.array([-0.4, 3.1, 0.0])}
ASSET_SIZE = 0.9  # each asset, like TRELLIS's, fills about the unit cube of its own frame
BLENDER_TO_Y_UP = Y_UP_TO_BLENDER.T


class FakeSceneGenPipeline:
    """SceneGenImageToScenePipeline's public surface as upstream defines it, recording each call. run_scene builds
    its result as upstream does: a textured asset per object in its own glTF frame, composed into a trimesh.Scene
    with a transform each, in resorted order, re-centred on the first and normalised into [-1, 1]. The asset of
    the caller's object k is BOXES[k], and the frame relates to the world through SCENEGEN_HIDDEN."""

    calls: ClassVar[list] = []
    boxes: ClassVar[tuple] = BOXES

    @staticmethod
    def from_pretrained(path):
        FakeSceneGenPipeline.calls.append(("from_pretrained", path))
        return FakeSceneGenPipeline()

    def cuda(self):
        self.calls.append(("cuda",))

    def to(self, device):
        self.calls.append(("to", device))

    def run_scene(self, image, scene_image, mask_image=None, seed=42, sparse_structure_sampler_params={},  # noqa: B006
                  slat_sampler_params={}, positions_type="last", preprocess_image=True,  # noqa: B006 - as upstream
                  resorted_indices=None, simplify=0.95, texture_size=1024, use_mask=True, use_scene_image_cond=True,
                  use_vggt_feature_cond=True):
        self.calls.append(("run_scene", {"image": image, "scene_image": scene_image, "mask_image": mask_image,
                                         "seed": seed, "ss": sparse_structure_sampler_params,
                                         "slat": slat_sampler_params, "preprocess_image": preprocess_image,
                                         "resorted_indices": resorted_indices, "simplify": simplify,
                                         "texture_size": texture_size}))
        caller = {position: k for k, position in enumerate(resorted_indices)}  # sorted position -> caller's index
        assets, transforms = [], []
        hidden = np.eye(4)
        hidden[:3, :3] = SCENEGEN_HIDDEN["scale"] * rotation(SCENEGEN_HIDDEN["yaw"], 0.0)
        hidden[:3, 3] = SCENEGEN_HIDDEN["translation"]
        to_gltf, to_blender = np.eye(4), np.eye(4)
        to_gltf[:3, :3], to_blender[:3, :3] = BLENDER_TO_Y_UP, Y_UP_TO_BLENDER
        for position in range(len(image)):
            box = self.boxes[caller[position]]
            factor = ASSET_SIZE / box.size.max()
            own = trimesh.creation.box(extents=box.size * factor)
            own.apply_transform(to_gltf)  # TRELLIS's GLB frame: Y up
            texture = Image.new("RGB", (4, 4), box.colour)
            own.visual = trimesh.visual.TextureVisuals(uv=np.full((len(own.vertices), 2), 0.5), image=texture)
            world_of_own = box.to_world() @ np.diag([1 / factor] * 3 + [1.0]) @ to_blender
            transforms.append(to_gltf @ np.linalg.inv(hidden) @ world_of_own)
            assets.append(own)
        scene = trimesh.Scene()
        first = None
        for position in resorted_indices:
            scene.add_geometry(assets[position], transform=transforms[position])
            first = transforms[position] if first is None else first
        scene.apply_transform(np.linalg.inv(first))
        low, high = scene.bounds
        normalise = trimesh.transformations.compose_matrix(translate=-(low + high) / 2,
                                                           scale=[0.98 * 2 / (high - low).max()] * 3)
        scene.apply_transform(normalise)
        return {"scene": scene, "positions": np.zeros((len(image), 8)),
                "assets": [assets[position] for position in resorted_indices]}


@pytest.fixture
def fake_scenegen(monkeypatch, tmp_path, host, cuda):
    """scenegen's pipeline, TRELLIS's compiled pieces, a CUDA GPU, local SceneGen, VGGT and DINOv2 weights."""
    FakeSceneGenPipeline.calls = []
    for name, members in (("scenegen", {}), ("scenegen.pipelines",
                                             {"SceneGenImageToScenePipeline": FakeSceneGenPipeline})):
        monkeypatch.setitem(sys.modules, name, fake_module(name, **members))
    for extension, _ in scenegen.COMPILED:
        monkeypatch.setitem(sys.modules, extension, fake_module(extension))
    weights, vggt = tmp_path / "scenegen", tmp_path / "VGGT-1B"
    weights.mkdir()
    vggt.mkdir()
    (vggt / "config.json").write_text("{}")
    (weights / "pipeline.json").write_text(
        f'{{"name": "SceneGenImageToScenePipeline", "args": {{"vggt_model": "{vggt}", '
        '"image_cond_model": "dinov2_vitl14_reg"}}')
    monkeypatch.setenv(scenegen.WEIGHTS_ENV, str(weights))
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    (home / ".cache/torch/hub/facebookresearch_dinov2_main").mkdir(parents=True)
    (home / ".cache/torch/hub/checkpoints").mkdir(parents=True)
    (home / ".cache/torch/hub/checkpoints/dinov2_vitl14_reg4_pretrain.pth").write_bytes(b"")
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    return FakeSceneGenPipeline


def test_scenegen_gets_the_objects_largest_first_as_its_batch_script_hands_them(fake_scenegen, picture):
    rgba, segmentation = picture
    SceneGenModel().generate(scene_request(picture, seed=5, settings={"steps": 12, "texture_size": 512}))
    (_, call), = [c for c in fake_scenegen.calls if c[0] == "run_scene"]
    areas = [int(obj.mask.sum()) for obj in segmentation.objects]
    order = sorted(range(3), key=lambda i: -areas[i])
    assert order[0] == 1  # the big box in the middle is the query asset
    assert [order.index(k) for k in range(3)] == call["resorted_indices"]
    for position, (image, mask) in enumerate(zip(call["image"], call["mask_image"])):
        obj = segmentation.objects[order[position]]
        assert image.mode == "RGBA" and mask.mode == "RGB" and image.size == mask.size == (512, 384)
        pixels, on = np.asarray(image), np.asarray(mask)
        assert np.array_equal(pixels[..., 3] == 255, obj.mask) and np.all(pixels[~obj.mask] == 0)
        assert np.array_equal(pixels[obj.mask][:, :3], rgba[obj.mask][:, :3])
        assert np.array_equal(on[..., 0] == 255, obj.mask) and np.all(on[..., 0] == on[..., 2])
    assert call["scene_image"].mode == "RGB" and np.all(np.asarray(call["scene_image"])[rgba[..., 3] == 0] == 255)
    expected = {"steps": 12, "cfg_strength": 5.0, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0}
    assert call["ss"] == expected and call["slat"] == expected
    assert (call["seed"], call["preprocess_image"], call["texture_size"]) == (5, True, 512)
    assert call["simplify"] == scenegen.DEFAULT_SIMPLIFY


def test_scenegen_puts_each_box_where_it_stood_facing_its_own_way(fake_scenegen, picture):
    result = SceneGenModel().generate(scene_request(picture))
    assert result.model == "scenegen" and result.info["query_object"] == 2
    for item, box in zip(result.placed, BOXES):
        assert np.allclose(centre_of(item)[:2], box.at, atol=POSITION_TOL_M), item.name
        assert item.world_bounds()[0][2] == pytest.approx(0.0, abs=0.01)
        assert item.size_m == pytest.approx(box.size, abs=SIZE_TOL_M)  # its own frame: the box unturned
        assert item.yaw_deg == pytest.approx(box.yaw_deg, abs=0.5)
        assert np.all(item.mesh.colors[:, :3] == box.colour)  # the texture, read per vertex
        assert trimesh.Trimesh(item.mesh.vertices, item.mesh.faces).volume > 0


def test_scenegen_availability_names_each_missing_piece_in_turn(fake_scenegen, monkeypatch, tmp_path):
    monkeypatch.setenv("ATTN_BACKEND", "xformers")  # the operator's choice is kept and said
    model = SceneGenModel()
    assert model.availability() == (True, f"SceneGen on CUDA, weights from {tmp_path / 'scenegen'}; "
                                          "attention: xformers")
    monkeypatch.setitem(sys.modules, "kaolin", None)
    assert model.availability() == (False, "compiled extension kaolin is not installed (NVIDIA kaolin built for "
                                           "this torch and CUDA (FlexiCubes imports it))")
    monkeypatch.setitem(sys.modules, "kaolin", fake_module("kaolin"))
    checkpoint = tmp_path / "home/.cache/torch/hub/checkpoints/dinov2_vitl14_reg4_pretrain.pth"
    checkpoint.unlink()
    assert model.availability() == (False, "DINOv2 checkpoint dinov2_vitl14_reg4_pretrain.pth is not in "
                                           "torch.hub's checkpoints (or set O3F_DOWNLOAD_WEIGHTS=1)")
    (tmp_path / "home/.cache/torch/hub/facebookresearch_dinov2_main").rmdir()
    available, reason = model.availability()
    assert not available and reason.startswith("DINOv2's torch.hub code is not in ~/.cache/torch/hub/")
    monkeypatch.setenv(base.DOWNLOAD_ENV, "1")
    assert model.availability()[0]
    monkeypatch.delenv(base.DOWNLOAD_ENV)
    (tmp_path / "VGGT-1B" / "config.json").unlink()
    assert model.availability() == (False, f"VGGT weights folder {tmp_path / 'VGGT-1B'} (named in SceneGen's "
                                           "pipeline.json) has no config.json")
    (tmp_path / "scenegen" / "pipeline.json").unlink()
    assert model.availability() == (False, f"O3F_SCENEGEN_WEIGHTS={tmp_path / 'scenegen'} has no pipeline.json")
    for name in ("scenegen", "scenegen.pipelines"):
        monkeypatch.delitem(sys.modules, name)
    assert model.availability() == (False, "library SceneGen is not installed (scenegen.pipelines not found; see "
                                           "vendor/scenegen.toml)")


def test_on_zero_gpu_scenegen_asks_for_its_computed_duration(fake_scenegen, picture, monkeypatch):
    asked = zero_gpu_run(monkeypatch, scenegen, lambda s: scene_request(picture, settings=s), {"steps": 40})
    assert asked == [gpu.requested_duration(scenegen.seconds_for(3, 40))]
    assert SceneGenModel().gpu_estimate(3, {"steps": 40}) == scenegen.seconds_for(3, 40)


def test_an_unrelated_scenegen_package_is_not_mistaken_for_the_model(monkeypatch):
    monkeypatch.setitem(sys.modules, "scenegen", fake_module("scenegen"))  # PyPI's 2020 'scenegen' has no pipelines
    monkeypatch.delitem(sys.modules, "scenegen.pipelines", raising=False)
    assert SceneGenModel().availability()[1].startswith("library SceneGen is not installed")


# Choosing a model, quota, bad input.


def test_report_and_choice(fake_midi, fake_scenegen, monkeypatch):
    rows = {row["name"]: row for row in report()}
    assert set(rows) == {"midi3d", "scenegen"} and all(row["available"] for row in rows.values())
    assert choose_scene_model("auto", 3).name == "midi3d"
    assert choose_scene_model("SceneGen", 3).name == "scenegen"
    assert choose_scene_model("per_object", 3) is None
    assert choose_scene_model("auto", 3, {"texture_size": 512}).name == "scenegen"  # only SceneGen takes it
    assert choose_scene_model("auto", 17) is None  # more than either takes: the per-object chain
    with pytest.raises(InputError, match=r"max_objects=17: expected at most 16 objects for midi3d"):
        choose_scene_model("midi3d", 17)
    monkeypatch.setitem(sys.modules, "torch_cluster", None)
    assert choose_scene_model("auto", 3).name == "scenegen"
    with pytest.raises(InputError, match=r"options.scene_model='midi3d': expected an available scene model; midi3d "
                                         r"is not: compiled extension torch_cluster is not installed"):
        check_scene_model("midi3d")


def test_bad_input_is_refused_by_name_before_any_work(fake_midi, picture):
    rgba, segmentation = picture
    model = Midi3DModel()
    cases = [
        (lambda: check_scene_model("nope"), "options.scene_model='nope': expected one of auto, midi3d, scenegen, "
                                            "per_object"),
        (lambda: check_scene_model("midi3d", {"steps": 0}), "options.scene_model_options.steps=0: expected a "
                                                            "whole number from 1 to 100"),
        (lambda: check_scene_model("midi3d", {"sharpness": 2}), "options.scene_model_options.sharpness=2: expected "
                                                                "one of the keys steps, guidance_scale"),
        (lambda: check_scene_model("auto", {"steps": "many"}), "options.scene_model_options.steps='many'"),
        (lambda: check_scene_model("per_object", {"steps": 3}), "options.scene_model_options={'steps': 3}"),
        (lambda: SceneGenModel().check_settings({"texture_size": 300}),
         "options.scene_model_options.texture_size=300: expected one of 512, 1024, 2048"),
        (lambda: model.generate(scene_request(picture, seed=-1)), "seed=-1: expected a whole number"),
        (lambda: model.generate(scene_request(picture, settings={"guidance_scale": float("nan")})),
         "options.scene_model_options.guidance_scale=nan"),
        (lambda: model.generate(SceneRequest(rgba, segmentation, CAMERA, names=["A", "A", "B"])),
         "names=['A', 'A', 'B']: expected 3 different non-empty names"),
        (lambda: model.generate(SceneRequest(rgba[:200], segmentation, SceneCamera(512, 200))),
         "segmentation='masks of (512, 384) pixels': expected masks the size of the image (512x200)"),
        (lambda: model.generate(SceneRequest(rgba, segmentation, SceneCamera(640, 480))),
         "camera='640x480 pixels': expected the image's size (512x384)"),
        (lambda: model.generate(SceneRequest(rgba[..., 0], segmentation, CAMERA)), "image="),
        (lambda: model.generate(SceneRequest(rgba, "labels.png", CAMERA)),
         "segmentation='str': expected a SceneSegmentation"),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as caught:
            call()
        assert str(caught.value).startswith(message), str(caught.value)
    assert not [c for c in fake_midi.calls if c[0] == "call"]


def test_the_quota_is_checked_on_the_models_own_estimate(fake_midi):
    model = Midi3DModel()
    estimate = quota_estimate(model, 4, {}, left_s=10_000)
    assert estimate == model.gpu_estimate(4, {})
    with pytest.raises(gpu.QuotaExceeded, match=r"scene with midi3d \(4 objects\) asks for"):
        quota_estimate(model, 4, {}, left_s=estimate / 2)


# Real weights: only where the models can run.


@pytest.mark.slow
@pytest.mark.skipif(not Midi3DModel().availability()[0],
                    reason="real MIDI-3D not runnable here (library, CUDA or weights missing): "
                           + Midi3DModel().availability()[1])
def test_real_midi_keeps_left_and_right_and_near_and_far(picture):
    result = Midi3DModel().generate(scene_request(picture))
    centres = [centre_of(item) for item in result.placed]
    assert centres[0][0] < centres[1][0] < centres[2][0]
    assert centres[2][1] < centres[0][1] < centres[1][1]


@pytest.mark.slow
@pytest.mark.skipif(not SceneGenModel().availability()[0],
                    reason="real SceneGen not runnable here (library, compiled extensions, CUDA or weights missing): "
                           + SceneGenModel().availability()[1])
def test_real_scenegen_keeps_left_and_right_and_near_and_far(picture):
    result = SceneGenModel().generate(scene_request(picture))
    centres = [centre_of(item) for item in result.placed]
    assert centres[0][0] < centres[1][0] < centres[2][0]
    assert centres[2][1] < centres[0][1] < centres[1][1]


def test_the_scene_endpoint_makes_places_and_packages_what_midi_made(fake_midi, picture, tmp_path, monkeypatch):
    """Through ForgeApi.scene with MIDI-3D's stand-in (above): one GPU call makes every object, each becomes an asset
    of its own, post-processed at the height MIDI gave it and placed where MIDI put it."""
    import json
    import zipfile

    from PIL import Image

    from server.api import ForgeApi
    from server.config import load_settings

    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path / "workspace"))
    rgba, _ = picture
    Image.fromarray(rgba).save(tmp_path / "stall.png")
    api = ForgeApi(load_settings())
    options = {"scene_model": "midi3d", "vfov_deg": CAMERA.vfov_deg, "camera_height_m": CAMERA.camera_height_m,
               "pitch_deg": CAMERA.pitch_deg, "background": "alpha",
               "postprocess": {"target_triangles": 400, "texture_size": 256, "max_hulls": 2},
               "bake": {"ao_samples": 2, "texture_size": 256}, "export": {"use_fbx": False}}
    record_json, package = api.scene(str(tmp_path / "stall.png"), "Stall", options)
    record = json.loads(record_json)
    assert [s["stage"] for s in record["stages"]] == ["segment", "objects", "layout", "export"]
    assert record["stages"][1]["parameters"]["scene_model"] == "midi3d"
    assert len([c for c in fake_midi.calls if c[0] == "call"]) == 1  # every object in one call
    with zipfile.ZipFile(package) as archive:
        layout = json.loads(archive.read("scene.json"))
        names = set(archive.namelist())
    for entry, box in zip(layout["objects"], BOXES):
        assert f"{entry['name']}/SM_{entry['name']}.glb" in names
        lo, hi = np.array(entry["bounds_m"]["min"]), np.array(entry["bounds_m"]["max"])
        assert np.allclose((lo[:2] + hi[:2]) / 2, box.at, atol=0.05), entry["name"]
        assert lo[2] == pytest.approx(0.0, abs=0.01) and hi[2] - lo[2] == pytest.approx(box.size[2], abs=0.03)
        assert entry["ue5"]["scale"][2] == pytest.approx(1.0, abs=0.03)
    for entry in record["scene"]["objects"]:
        assert json.loads(api.asset(entry["asset_id"]))["generator"] == "midi3d"
