"""TRELLIS.2 adapter against a recording stand-in of trellis2.pipelines (not a verification of the model)."""

import sys
import types
from typing import ClassVar

import numpy as np
import pytest
import trimesh
from PIL import Image

from server import gpu
from server.errors import InputError
from server.generators import base, modelhost, trellis2
from server.generators.base import GenerationRequest
from server.generators.trellis2 import Trellis2Generator
from tests.fakes import fake_module, on_zero_gpu

RES = 16
NATIVE_BOX = {"extents": (0.4, 0.2, 0.8), "centre": (0.05, 0.0, 0.1)}
GREEN_VOXEL = (12, 8, 3)


class FakeTensor:
    """Just enough of a torch tensor: the adapter must bring every array back with .cpu().numpy()."""

    def __init__(self, array):
        self.array = np.asarray(array)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.array


class FakeMeshWithVoxel:
    """The assumed MeshWithVoxel contract: vertices, faces, coords, attrs, layout, voxel_size, origin."""

    def __init__(self):
        box = trimesh.creation.box(extents=NATIVE_BOX["extents"])
        box.apply_translation(NATIVE_BOX["centre"])
        self.vertices = FakeTensor(box.vertices.astype(np.float32))
        self.faces = FakeTensor(box.faces.astype(np.int32))
        grid = np.stack(np.meshgrid(*[np.arange(RES)] * 3, indexing="ij"), -1).reshape(-1, 3)
        centres = -0.5 + (grid + 0.5) / RES
        attrs = np.zeros((len(grid), 6), np.float32)
        left = centres[:, 0] < NATIVE_BOX["centre"][0]
        attrs[:, 0:3] = np.where(left[:, None], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0])  # red left half, blue right
        attrs[:, 3] = np.where(left, 0.0, 1.0)
        attrs[:, 4] = 0.25
        attrs[:, 5] = 1.0
        attrs[np.all(grid == GREEN_VOXEL, axis=1), 0:3] = [0.0, 1.0, 0.0]
        self.coords = FakeTensor(grid.astype(np.int32))
        self.attrs = FakeTensor(attrs)
        self.layout = {"base_color": slice(0, 3), "metallic": slice(3, 4), "roughness": slice(4, 5),
                       "alpha": slice(5, 6)}
        self.voxel_size = 1 / RES
        self.origin = FakeTensor(np.array([-0.5, -0.5, -0.5], np.float32))


class FakePipeline:
    """Records every call; run() has TRELLIS.2's signature, so a wrong keyword fails here as it would there."""

    calls: ClassVar[list] = []

    @classmethod
    def from_pretrained(cls, path, config_file="pipeline.json"):
        cls.calls.append(("from_pretrained", path))
        return cls()

    def cuda(self):
        self.calls.append(("cuda",))
        return self

    def run(self, image, num_samples=1, seed=42, sparse_structure_sampler_params={},  # noqa: B006 - as upstream
            shape_slat_sampler_params={}, tex_slat_sampler_params={}, preprocess_image=True,  # noqa: B006
            return_latent=False, pipeline_type=None, max_num_tokens=49152):
        self.calls.append(("run", image, {"seed": seed, "pipeline_type": pipeline_type,
                                          "sparse": sparse_structure_sampler_params,
                                          "shape": shape_slat_sampler_params, "tex": tex_slat_sampler_params}))
        return [FakeMeshWithVoxel()]


def fake_torch(has_gpu=lambda: True) -> types.ModuleType:
    return fake_module("torch", cuda=types.SimpleNamespace(is_available=has_gpu, empty_cache=lambda: None))


@pytest.fixture
def host(monkeypatch):
    """A fresh ModelHost shared by the adapters for one test."""
    fresh = modelhost.ModelHost()
    monkeypatch.setattr(trellis2, "MODEL_HOST", fresh)
    return fresh


@pytest.fixture
def fake_trellis2(monkeypatch, tmp_path, host):
    """trellis2.pipelines, torch with a GPU, local weights and a token: the adapter's real code path runs."""
    FakePipeline.calls = []
    monkeypatch.setitem(sys.modules, "trellis2", fake_module("trellis2"))
    monkeypatch.setitem(sys.modules, "trellis2.pipelines",
                        fake_module("trellis2.pipelines", Trellis2ImageTo3DPipeline=FakePipeline))
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    for extension, _ in trellis2.COMPILED:
        monkeypatch.setitem(sys.modules, extension, fake_module(extension))
    (tmp_path / "pipeline.json").write_text("{}")
    monkeypatch.setenv(trellis2.WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    return FakePipeline


def square_view(size=64):
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[8:56, 20:44] = (200, 120, 40, 255)
    return rgba


def run(seed=7, **settings):
    return Trellis2Generator().generate(GenerationRequest({"front": square_view()}, seed=seed, settings=settings))


@pytest.mark.parametrize("quality,pipeline_type,steps", [("fast", "512", 8), ("balanced", "1024_cascade", 12),
                                                          ("hero", "1536_cascade", 16)])
def test_presets_map_to_pipeline_type_steps_and_guidance(fake_trellis2, quality, pipeline_type, steps):
    run(seed=1234, quality=quality)
    (_, image, arguments), = [call for call in fake_trellis2.calls if call[0] == "run"]
    assert arguments["seed"] == 1234 and arguments["pipeline_type"] == pipeline_type
    assert arguments["sparse"] == {"steps": steps, "guidance_strength": 7.5, "guidance_rescale": 0.7, "rescale_t": 5.0}
    assert arguments["shape"] == {"steps": steps, "guidance_strength": 7.5, "guidance_rescale": 0.5, "rescale_t": 3.0}
    assert arguments["tex"] == {"steps": steps, "guidance_strength": 1.0, "guidance_rescale": 0.0, "rescale_t": 3.0}
    assert isinstance(image, Image.Image) and image.mode == "RGBA"
    assert np.array_equal(np.asarray(image), square_view())  # the cut-out's alpha reaches the pipeline


def test_the_pipeline_loads_once_from_the_local_weights_and_goes_to_the_gpu(fake_trellis2, host, tmp_path):
    run(seed=1)
    run(seed=2)
    loads = [call for call in fake_trellis2.calls if call[0] in ("from_pretrained", "cuda")]
    assert loads == [("from_pretrained", str(tmp_path)), ("cuda",)]
    assert host.loads == ["trellis2"] and host.held == "trellis2"
    assert [call[2]["seed"] for call in fake_trellis2.calls if call[0] == "run"] == [1, 2]


def expected_blender_point(native_point, matrix=None, height=1.0):
    """Independent arithmetic: axes by `matrix`, then the box scaled to `height` with its base centred on 0."""
    matrix = np.eye(3) if matrix is None else matrix
    corners = trimesh.creation.box(extents=NATIVE_BOX["extents"]).vertices + NATIVE_BOX["centre"]
    turned = corners @ matrix.T
    lower, upper = turned.min(axis=0), turned.max(axis=0)
    scale = height / (upper[2] - lower[2])
    base = np.array([(lower[0] + upper[0]) / 2, (lower[1] + upper[1]) / 2, lower[2]])
    return (np.asarray(native_point) @ matrix.T - base) * scale


def test_attributes_and_axes_a_known_voxel_lands_where_expected(fake_trellis2):
    result = run(height=2.0)
    volume = result.attribute_volume
    assert set(volume.values) == {"base_color", "metallic", "roughness", "alpha"}
    native_centre = -0.5 + (np.array(GREEN_VOXEL) + 0.5) / RES
    expected = expected_blender_point(native_centre, height=2.0)
    green_row = np.flatnonzero(np.all(volume.values["base_color"] == [0, 1, 0], axis=1))
    assert len(green_row) == 1
    assert np.allclose(volume.centres()[green_row[0]], expected)
    assert np.allclose(volume.sample(expected[None])["base_color"], [[0, 1, 0]], atol=1e-6)
    # The mesh shares the frame: 2 m tall, standing on z = 0, centred on the origin.
    assert result.mesh.extents[2] == pytest.approx(2.0) and result.mesh.bounds[0][2] == pytest.approx(0.0)
    assert np.allclose(result.mesh.bounds.mean(axis=0)[:2], 0.0)


def test_a_y_up_matrix_set_in_the_one_place_moves_mesh_and_volume_together(fake_trellis2, monkeypatch):
    y_up_to_z_up = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    monkeypatch.setattr(trellis2, "NATIVE_TO_BLENDER", y_up_to_z_up)
    result = run(height=1.0)
    native_centre = -0.5 + (np.array(GREEN_VOXEL) + 0.5) / RES
    expected = expected_blender_point(native_centre, y_up_to_z_up, height=1.0)
    assert np.allclose(result.attribute_volume.sample(expected[None])["base_color"], [[0, 1, 0]], atol=1e-6)
    assert result.mesh.extents[2] == pytest.approx(1.0)
    assert result.mesh.extents[1] == pytest.approx(0.8 / 0.2)  # native z (0.8) is now y; native y (0.2) is up
    assert result.mesh.volume > 0


def test_vertex_colours_and_factors_come_from_the_volume(fake_trellis2):
    result = run()
    left = result.mesh.vertices[:, 0] < 0
    assert np.all(result.colors[left, :3] == [255, 0, 0]) and np.all(result.colors[~left, :3] == [0, 0, 255])
    assert np.all(result.colors[:, 3] == 255)
    assert result.roughness == pytest.approx(0.25)
    assert result.info["pipeline_type"] == "1024_cascade"
    assert result.info["voxels"] == RES ** 3


def test_gpu_seconds_are_the_time_the_sampling_took(fake_trellis2, monkeypatch):
    readings = iter([100.0, 102.25])  # before the pipeline runs, after its mesh is read back
    monkeypatch.setattr(trellis2, "time", types.SimpleNamespace(perf_counter=lambda: next(readings)))
    assert run().info["gpu_seconds"] == 2.25


def test_settings_are_checked_before_any_work(fake_trellis2):
    with pytest.raises(InputError, match="options.quality='ultra'"):
        run(quality="ultra")
    with pytest.raises(InputError, match="one image for trellis2"):
        Trellis2Generator().check_settings({}, 2)
    assert not [call for call in fake_trellis2.calls if call[0] == "run"]


def test_availability_gives_each_reason_in_turn(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "flash_attn", None)  # conftest makes each test choose attention afresh
    generator = Trellis2Generator()
    monkeypatch.delitem(sys.modules, "trellis2.pipelines", raising=False)
    monkeypatch.delitem(sys.modules, "trellis2", raising=False)
    missing = "library TRELLIS.2 is not installed (trellis2.pipelines not found; see vendor/trellis2.toml)"
    assert generator.availability() == (False, missing)
    monkeypatch.setitem(sys.modules, "trellis2", fake_module("trellis2"))
    monkeypatch.setitem(sys.modules, "trellis2.pipelines", fake_module("trellis2.pipelines"))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert generator.availability() == (False, "PyTorch is not installed")
    gpu_flag = {"ok": False}
    monkeypatch.setitem(sys.modules, "torch", fake_torch(lambda: gpu_flag["ok"]))
    for extension, _ in trellis2.COMPILED:  # each missing compiled piece is named, with the wheel it comes from
        monkeypatch.setitem(sys.modules, extension, None)
    assert generator.availability() == (False, "compiled extension o_voxel is not installed (the o_voxel wheel of "
                                               "vendor/wheels.toml; tools/build_space_wheels.sh builds it)")
    for extension, _ in trellis2.COMPILED:
        monkeypatch.setitem(sys.modules, extension, fake_module(extension))
    # Attention needs no library of its own: without flash_attn or working xformers, torch's SDPA serves.
    monkeypatch.setitem(sys.modules, "xformers", fake_module("xformers", __version__="0.0.35", _has_cpp_library=False))
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert generator.availability() == (False, "no CUDA GPU on this server")
    gpu_flag["ok"] = True
    monkeypatch.delenv(trellis2.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(base, "cached_on_hub", lambda repo, name: False)
    available, reason = generator.availability()
    assert not available and "weights microsoft/TRELLIS.2-4B are not in the Hugging Face cache" in reason
    monkeypatch.setenv(trellis2.WEIGHTS_ENV, str(tmp_path))
    assert generator.availability() == (False, f"{trellis2.WEIGHTS_ENV}={tmp_path} has no pipeline.json")
    (tmp_path / "pipeline.json").write_text("{}")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    available, reason = generator.availability()
    assert not available and reason.startswith("HF_TOKEN is not set")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert generator.availability() == (True, f"TRELLIS.2-4B on CUDA, weights from {tmp_path}; attention: torch sdpa")


def test_on_zero_gpu_the_sampling_asks_for_the_generation_estimate(fake_trellis2, monkeypatch):
    with on_zero_gpu(monkeypatch, trellis2) as (zero, asked):
        zero.Trellis2Generator().generate(GenerationRequest({"front": square_view()}, settings={"quality": "hero"}))
    assert asked == [gpu.requested_duration(gpu.generation_seconds("hero", 1))]


@pytest.mark.skipif(not Trellis2Generator().availability()[0],
                    reason="real TRELLIS.2 not runnable here (library, CUDA, weights or HF_TOKEN missing): "
                           + Trellis2Generator().availability()[1])
def test_real_weights_make_a_mesh_with_a_volume():
    result = Trellis2Generator().generate(GenerationRequest({"front": square_view(256)}, settings={"quality": "fast"}))
    assert len(result.mesh.faces) > 1000 and result.attribute_volume is not None
    assert result.info["gpu_seconds"] > 0


def test_a_served_model_loads_at_start_up_and_no_generation_loads_it_again(fake_trellis2, host):
    from server.generators.registry import serve_models, served_names

    assert served_names({}, on_zero_gpu=True) == ["trellis2", "hunyuan3d-2"]
    assert served_names({}, on_zero_gpu=False) == []
    assert served_names({"O3F_SERVE_MODELS": ""}, on_zero_gpu=True) == []
    report = serve_models(["trellis2", "silhouette"])
    assert report == {"trellis2": "TRELLIS.2-4B loaded", "silhouette": "nothing to load (no weights)"}
    assert host.pinned == [trellis2.MODEL_KEY] and host.loads == [trellis2.MODEL_KEY]
    run()
    run()
    assert host.loads == [trellis2.MODEL_KEY], "a pinned model is never loaded again"
    with pytest.raises(InputError, match="O3F_SERVE_MODELS='nope'"):
        serve_models(["nope"])


def test_vertices_no_face_uses_neither_size_nor_place_the_mesh():
    from server.generators.base import placed_in_blender

    box = trimesh.creation.box(extents=(1.0, 2.0, 4.0))
    stray = np.array([[50.0, 50.0, 50.0], [-80.0, 0.0, -90.0]])  # grid vertices the decoder left unused
    vertices = np.vstack([stray, box.vertices])
    mesh, scale, _ = placed_in_blender(vertices, box.faces + len(stray), np.eye(3), 2.0)
    assert len(mesh.vertices) == len(box.vertices) and mesh.is_watertight
    assert scale == pytest.approx(0.5) and np.ptp(mesh.vertices, axis=0) == pytest.approx([0.5, 1.0, 2.0])
    assert mesh.bounds[0][2] == pytest.approx(0.0)


def test_dinov3_blocks_moved_by_transformers_5_are_found_where_trellis2_reads_them():
    from types import SimpleNamespace

    blocks = ["block0", "block1"]
    moved = SimpleNamespace(model=SimpleNamespace(model=SimpleNamespace(layer=blocks)))
    trellis2._layers_where_trellis2_reads_them(moved)
    assert moved.model.layer is blocks
    untouched = SimpleNamespace(model=SimpleNamespace(layer=["own"], model=SimpleNamespace(layer=blocks)))
    trellis2._layers_where_trellis2_reads_them(untouched)
    assert untouched.model.layer == ["own"]
    trellis2._layers_where_trellis2_reads_them(None)  # a pipeline without an image encoder is left alone
