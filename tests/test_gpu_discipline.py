"""GPU discipline in the pipeline: quota refusals before any asset or stage, GPU seconds recorded and charged,
and a generator's attribute volume followed by the bake through postprocess placement."""

import dataclasses
import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from server import gpu
from server.asset import AssetStore
from server.bake.engine import BakeSettings
from server.bake.sources import sample_texture
from server.config import load_settings
from server.errors import InputError
from server.generators import registry
from server.generators.base import GeneratedMesh
from server.generators.volume import AttributeVolume, PlacedVolume, volume_source
from server.images import save_png
from server.jobs import CancelFlags, Context
from server.options import post_settings
from server.presets import get_preset
from server.quota import QuotaLedger
from server.runners import bake as bake_runner
from server.runners.generate import GenerateJob, run_generate
from server.runners.postprocess import run_postprocess
from server.runners.stored import load_game_mesh
from tests.test_silhouette import l_shape

SPLIT_Z = 0.5  # the volume is red below this height (in the generator's frame) and blue above
RED, BLUE, GREEN = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0, 200, 0, 255)


def split_volume(lower, upper, size=0.025) -> AttributeVolume:
    """A dense block of voxels over the box: red and dielectric below SPLIT_Z, blue and metallic above."""
    start = np.floor(np.asarray(lower) / size).astype(int) - 2
    stop = np.ceil(np.asarray(upper) / size).astype(int) + 2
    coords = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(start, stop)], indexing="ij"), -1).reshape(-1, 3)
    below = (coords[:, 2] + 0.5) * size < SPLIT_Z
    values = {"base_color": np.where(below[:, None], RED, BLUE), "metallic": (~below)[:, None].astype(float),
              "roughness": np.full((len(coords), 1), 0.3), "alpha": np.ones((len(coords), 1))}
    return AttributeVolume(coords, values, size, np.zeros(3))


class StubModel:
    """A GPU generator stand-in: a box off the centre line, green vertex colours, a red/blue attribute volume."""

    name, title, module, max_views, uses_gpu = "trellis2", "stub model", "trellis2", 1, True

    def __init__(self, gpu_seconds=12.5):
        self.calls = 0
        self.gpu_seconds = gpu_seconds

    def availability(self):
        return True, "stub"

    def generate(self, request):
        self.calls += 1
        box = trimesh.creation.box(extents=(0.6, 0.4, 1.0))
        box.apply_translation((0.3, 0.0, 0.5))
        box = box.subdivide().subdivide().subdivide().subdivide()
        colours = np.tile(np.array(GREEN, np.uint8), (len(box.vertices), 1))
        return GeneratedMesh(box, colours, 0.0, 0.8, {"gpu_seconds": self.gpu_seconds},
                             attribute_volume=split_volume(*box.bounds))


@pytest.fixture
def ctx(tmp_path):
    settings = dataclasses.replace(load_settings(), workspace=tmp_path / "ws")
    store = AssetStore(settings.workspace)
    return Context(settings, store, CancelFlags(), QuotaLedger(settings.workspace / "quota.json", 600))


@pytest.fixture
def stub(monkeypatch):
    model = StubModel()
    monkeypatch.setitem(registry.GENERATORS, "trellis2", model)
    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: False)
    return model


def job(tmp_path, generator="trellis2", quality="hero"):
    path = tmp_path / "view.png"
    path.write_bytes(save_png(l_shape(128)))
    return GenerateJob(images=[path], views=["front"], name="Crate", kind="prop", generator=generator,
                       preset=get_preset(None), seed=3, settings={"quality": quality, "resolution": 48},
                       background="auto")


def no_progress(fraction, message):
    return None


def test_a_model_generate_over_the_quota_is_refused_before_any_asset(ctx, stub, tmp_path):
    ctx.quota.record("generate", None, 540.0)  # 60 s left; hero asks for 95
    with pytest.raises(gpu.QuotaExceeded, match="ZeroGPU quota exceeded: generate with trellis2 asks for 95 s "
                                                "of GPU time and 60 s are left today"):
        run_generate(ctx, job(tmp_path, quality="hero"), no_progress)
    assert stub.calls == 0 and ctx.store.history() == []
    record, _ = run_generate(ctx, job(tmp_path, quality="fast"), no_progress)  # 25 s fits
    assert record["status"] == "ready"


def test_a_generators_own_estimate_is_what_the_guard_checks(ctx, stub, tmp_path):
    ctx.quota.record("generate", None, 540.0)  # 60 s left
    asked = []
    stub.gpu_estimate = lambda settings, views: asked.append((settings["quality"], views)) or 85.0
    with pytest.raises(gpu.QuotaExceeded, match="asks for 85 s"):
        run_generate(ctx, job(tmp_path, quality="fast"), no_progress)
    assert asked == [("fast", 1)] and stub.calls == 0 and ctx.store.history() == []


def test_a_failed_gpu_call_is_still_charged_on_zero_gpu(ctx, stub, tmp_path, monkeypatch):
    def fails(request):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(stub, "generate", fails)
    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: True)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_generate(ctx, job(tmp_path, quality="fast"), no_progress)
    last = ctx.quota.summary()["recent_calls"][-1]
    assert last["endpoint"] == "generate (failed)" and last["gpu_seconds"] == gpu.requested_duration(
        gpu.generation_seconds("fast", 1))


def test_the_silhouette_generator_is_free(ctx, tmp_path):
    ctx.quota.record("generate", None, 600.0)
    record, _ = run_generate(ctx, job(tmp_path, generator="silhouette"), no_progress)
    generate = [s for s in record["stages"] if s["stage"] == "generate"][-1]
    assert generate["gpu_seconds"] == 0.0 and ctx.quota.used_today() == 600.0


def test_gpu_seconds_are_recorded_in_the_asset_and_the_ledger(ctx, stub, tmp_path, monkeypatch):
    record, glb = run_generate(ctx, job(tmp_path, quality="balanced"), no_progress)
    generate = [s for s in record["stages"] if s["stage"] == "generate"][-1]
    assert generate["gpu_seconds"] == 12.5 and generate["gpu_charged_seconds"] == 12.5
    assert ctx.quota.summary()["recent_calls"][-1]["gpu_seconds"] == 12.5
    # On ZeroGPU the quota is charged the requested duration, not the measured one.
    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: True)
    record, _ = run_generate(ctx, job(tmp_path, quality="balanced"), no_progress)
    generate = [s for s in record["stages"] if s["stage"] == "generate"][-1]
    asked = gpu.requested_duration(gpu.generation_seconds("balanced", 1))
    assert generate["gpu_seconds"] == 12.5 and generate["gpu_charged_seconds"] == asked
    assert ctx.quota.used_today() == pytest.approx(12.5 + asked)
    # The high poly is the generator's mesh as it came (no decimation) and carries no WebP (or any) image.
    data = glb.read_bytes()
    assert b"image/webp" not in data and b'"images"' not in data
    assert record["outputs"]["attributes"] == "attributes.npz"


def placed_and_baked(ctx, stub, tmp_path, quota=None, engine="cpu"):
    record, _ = run_generate(ctx, job(tmp_path, quality="fast"), no_progress)
    asset = ctx.store.open(record["asset_id"])
    settings = post_settings({"target_triangles": 600, "texture_size": 256, "height_cm": 250, "collision": False},
                             None)
    run_postprocess(asset, settings, no_progress, lambda: None)
    stats = bake_runner.run_bake(asset, BakeSettings(size=256, ao_samples=4), engine, no_progress, lambda: None, quota)
    return asset, stats


def test_the_baked_maps_follow_the_volume_in_the_high_polys_own_frame(ctx, stub, tmp_path):
    asset, _ = placed_and_baked(ctx, stub, tmp_path)
    lods, _, state = load_game_mesh(asset)
    transform = state["transform"]
    assert transform["scale"] == pytest.approx(2.5, rel=0.01)  # placement really moved and scaled the mesh
    lod0 = lods[0]
    surface = trimesh.Trimesh(lod0.vertices, lod0.faces, process=False)
    points, face = trimesh.sample.sample_surface_even(surface, 4000, seed=1)
    bary = trimesh.triangles.points_to_barycentric(surface.triangles[face], points)
    uv = np.einsum("kj,kjc->kc", bary, lod0.uv[lod0.faces[face]])
    z = PlacedVolume(None, transform).original_points(points)[:, 2]
    clear = np.abs(z - SPLIT_Z) > 0.05
    below = (z < SPLIT_Z)[clear]
    uv = uv[clear]
    base = sample_texture(np.asarray(Image.open(asset.folder / "textures/base_color.png")) / 255.0, uv)
    metallic = sample_texture(np.asarray(Image.open(asset.folder / "textures/metallic.png"))[..., None] / 255.0, uv)
    red = (base[:, 0] > 0.7) & (base[:, 2] < 0.3)
    blue = (base[:, 2] > 0.7) & (base[:, 0] < 0.3)
    assert below.any() and (~below).any()
    assert np.mean(red == below) > 0.95 and np.mean(blue == ~below) > 0.95
    assert np.mean(base[:, 1] > 0.5) < 0.01  # the green vertex colours are not what was baked
    assert np.mean((metallic[:, 0] > 0.8) == ~below) > 0.95
    bake = [s for s in asset.read()["stages"] if s["stage"] == "bake"][-1]
    assert bake["parameters"]["attributes"] == "volume" and bake["gpu_seconds"] == 0.0


def test_a_cuda_bake_over_the_quota_is_refused_before_the_stage(ctx, stub, tmp_path, monkeypatch):
    asset, _ = placed_and_baked(ctx, stub, tmp_path)
    stages_before = len(asset.read()["stages"])
    ctx.quota.record("other", None, 600.0)
    monkeypatch.setattr(bake_runner, "resolve_engine", lambda engine: "cuda")
    with pytest.raises(gpu.QuotaExceeded, match="ZeroGPU quota exceeded: bake on the CUDA engine asks for"):
        bake_runner.run_bake(asset, BakeSettings(size=256, ao_samples=4), "cuda", no_progress, lambda: None, ctx.quota)
    assert len(asset.read()["stages"]) == stages_before
    monkeypatch.undo()
    bake_runner.run_bake(asset, BakeSettings(size=256, ao_samples=4), "cpu", no_progress, lambda: None, ctx.quota)
    assert asset.read()["stages"][-1]["status"] == "ok"  # the CPU bake is free


def test_a_cuda_bake_records_and_charges_its_gpu_seconds(ctx, stub, tmp_path, monkeypatch):
    real_bake = bake_runner.bake
    used = []

    def bake_on_the_stand_in_gpu(high, low, settings, engine, check=None):
        used.append(engine)
        maps = real_bake(high, low, settings, "cpu", check)
        maps.stats["engine"] = "cuda"  # as the CUDA engine reports it
        return maps

    monkeypatch.setattr(bake_runner, "resolve_engine", lambda engine: "cuda")
    monkeypatch.setattr(bake_runner, "bake", bake_on_the_stand_in_gpu)
    asset, _ = placed_and_baked(ctx, stub, tmp_path, quota=ctx.quota, engine="cuda")
    bake = asset.read()["stages"][-1]
    assert used == ["cuda"] and bake["gpu_seconds"] > 0 and bake["parameters"]["device"] == "cuda"
    last = ctx.quota.summary()["recent_calls"][-1]
    assert last["endpoint"] == "bake" and last["gpu_seconds"] == pytest.approx(bake["gpu_charged_seconds"], abs=1e-3)


def test_the_volume_field_undoes_rotation_scale_and_translation():
    volume = split_volume((0, -0.2, 0), (0.6, 0.2, 1.0))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    transform = {"rotation": rotation.tolist(), "scale": 2.5, "translation": [0.4, -1.0, 0.2]}
    points = np.random.default_rng(0).uniform((0, -0.2, 0), (0.6, 0.2, 1.0), (500, 3))
    placed = points @ rotation.T * 2.5 + np.array(transform["translation"])
    source = volume_source(volume, json.loads(json.dumps(transform)))
    sampled = source.sample(None, None, placed)
    direct = volume.sample(points)
    assert np.allclose(sampled["base_color"][:, :3], direct["base_color"]) and not source.has_opacity
    assert np.allclose(sampled["metallic"], direct["metallic"][:, 0])


def test_the_volume_round_trips_and_missing_voxels_take_the_nearest():
    volume = split_volume((0, 0, 0), (0.1, 0.1, 1.0))
    again = AttributeVolume.from_bytes(volume.to_bytes())
    assert np.array_equal(again.coords, volume.coords) and again.voxel_size == volume.voxel_size
    far_below = np.array([[0.05, 0.05, -3.0]])
    assert np.allclose(again.sample(far_below)["base_color"], [RED])
    flipped = volume.permuted(np.diag([1.0, -1.0, -1.0]))
    assert np.allclose(flipped.sample(np.array([[0.05, -0.05, -0.9]]))["base_color"], [BLUE])
    assert np.allclose(flipped.sample(np.array([[0.05, -0.05, -0.1]]))["base_color"], [RED])


def test_forge_refuses_a_bake_engine_this_server_cannot_run_before_generating(ctx, tmp_path, monkeypatch):
    from server.api import ForgeApi
    from server.bake import gpu_runtime

    monkeypatch.setattr(gpu_runtime, "cuda_engine_status", lambda: (False, "no CUDA GPU on this server"))
    api = ForgeApi(ctx.settings)
    view = tmp_path / "front.png"
    view.write_bytes(save_png(l_shape(128)))
    with pytest.raises(InputError, match="options.engine.*cuda.*no CUDA GPU on this server"):
        api.forge([str(view)], "Crate", "front", "", {"bake": {"engine": "cuda"}})
    assert api.ctx.store.history() == []

