"""Hunyuan3D-2 adapter: hy3dgen's real pipeline on tiny random weights (CPU), presets, views, GPU discipline."""

import enum
import gc
import importlib
import importlib.machinery
import importlib.util
import pickle
import sys
import types
import weakref

import numpy as np
import pytest
import safetensors.torch
from PIL import Image

from server import gpu
from server.cache import StageCache
from server.errors import ForgeError, InputError
from server.gameready import PostSettings, postprocess
from server.generators import hunyuan
from server.generators.base import GenerationRequest
from server.generators.modelhost import ModelHost
from server.meshdata import MeshArrays

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")
pytest.importorskip("hy3dgen", reason="hy3dgen is not installed (the test extra installs it on 3.11)")

REAL_ROOTS = hunyuan.variant_sources(hunyuan.VARIANTS["2.0-turbo"], download=False)  # looked up before any test moves the caches
DINO = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "mlp_ratio": 2, "image_size": 28,
        "patch_size": 14}
VAE = {"num_latents": 16, "embed_dim": 8, "width": 16, "heads": 2, "num_decoder_layers": 1, "num_freqs": 1,
       "geo_decoder_ln_post": False}
FAST = {"steps": 2, "octree_resolution": 32, "target_faces": 2000}


def _torchvision_stand_in() -> dict:
    """PyPI's torchvision is built for CUDA torch and does not import beside the CPU wheel; hy3dgen's image
    encoder only needs Compose, Resize, CenterCrop and Normalize from it, written here on torch."""
    functional = torch.nn.functional

    class InterpolationMode(enum.Enum):
        BILINEAR = "bilinear"

    class Compose:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, image):
            for step in self.steps:
                image = step(image)
            return image

    class Resize:
        def __init__(self, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
            self.size = size

        def __call__(self, image):
            height, width = image.shape[-2:]
            scale = self.size / min(height, width)
            return functional.interpolate(image, size=(round(height * scale), round(width * scale)),
                                          mode="bilinear", antialias=True, align_corners=False)

    class CenterCrop:
        def __init__(self, size):
            self.size = size

        def __call__(self, image):
            top = (image.shape[-2] - self.size) // 2
            left = (image.shape[-1] - self.size) // 2
            return image[..., top:top + self.size, left:left + self.size]

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = mean, std

        def __call__(self, image):
            mean = torch.tensor(self.mean, dtype=image.dtype).view(-1, 1, 1)
            std = torch.tensor(self.std, dtype=image.dtype).view(-1, 1, 1)
            return (image - mean) / std

    package = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    for name, module in (("torchvision", package), ("torchvision.transforms", transforms)):
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for cls in (InterpolationMode, Compose, Resize, CenterCrop, Normalize):
        setattr(transforms, cls.__name__, cls)
    package.transforms = transforms
    return {"torchvision": package, "torchvision.transforms": transforms}


@pytest.fixture(scope="module", autouse=True)
def shapegen():
    """hy3dgen.shapegen imported, with the torchvision stand-in only where torchvision cannot be imported."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        # transformers resolves its models first, while torchvision is still absent to it; the stand-in
        # is only there while hy3dgen's conditioner imports it, then leaves sys.modules.
        from transformers import CLIPVisionModelWithProjection, Dinov2Model  # noqa: F401

        stand_in = _torchvision_stand_in()
        sys.modules.update(stand_in)
        try:
            import hy3dgen.shapegen
        finally:
            for name in stand_in:
                sys.modules.pop(name, None)
    import hy3dgen.shapegen

    return hy3dgen.shapegen


def _tiny_config(multiview: bool) -> dict:
    encoder = {"type": "DinoImageEncoderMV" if multiview else "DinoImageEncoder",
               "kwargs": {"config": DINO, "image_size": 28, **({"view_num": 4} if multiview else {})}}
    return {
        "model": {"target": "hy3dgen.shapegen.models.Hunyuan3DDiT",
                  "params": {"in_channels": VAE["embed_dim"], "context_in_dim": DINO["hidden_size"], "hidden_size": 16,
                             "mlp_ratio": 2.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1, "axes_dim": [8],
                             "theta": 10000, "qkv_bias": True, "guidance_embed": False}},
        "vae": {"target": "hy3dgen.shapegen.models.ShapeVAE", "params": VAE},
        "conditioner": {"target": "hy3dgen.shapegen.models.SingleImageEncoder",
                        "params": {"main_image_encoder": encoder}},
        "scheduler": {"target": "hy3dgen.shapegen.schedulers.FlowMatchEulerDiscreteScheduler",
                      "params": {"num_train_timesteps": 1000}},
        "image_processor": {"target": "hy3dgen.shapegen.preprocessors."
                                      + ("MVImageProcessorV2" if multiview else "ImageProcessorV2"),
                            "params": {"size": 32}},
    }


def _shape_the_decoder(vae) -> None:
    """Random decoders put the zero level anywhere or nowhere. Make the occupancy logit
    cos(pi x) + cos(pi y) + cos(pi z) - 2.3 (positive inside a ball of radius about 0.4, as the real logits
    are positive inside) plus a small term that still depends on the sampled latents, so every seed gives a
    surface and different seeds give different ones. Fourier features here: x, y, z, sin(pi *), cos(pi *)."""
    decoder = vae.geo_decoder
    with torch.no_grad():
        decoder.query_proj.weight[0].zero_()
        decoder.query_proj.weight[0, 6:9] = 1.0
        decoder.query_proj.bias[0] = 0.0
        decoder.cross_attn_decoder.mlp.c_proj.weight.zero_()
        decoder.cross_attn_decoder.mlp.c_proj.bias.zero_()
        decoder.cross_attn_decoder.attn.c_proj.weight.mul_(0.2)
        decoder.cross_attn_decoder.attn.c_proj.bias.zero_()
        decoder.output_proj.weight.zero_()
        decoder.output_proj.weight[0, 0] = 1.0
        decoder.output_proj.bias.fill_(-2.3)


def _write_tiny_model(folder, multiview: bool, seed: int) -> None:
    """A subfolder as hy3dgen's from_pretrained reads it: config.yaml and model.fp16.safetensors holding
    'model.', 'vae.' and 'conditioner.' state dicts."""
    import safetensors.torch
    import yaml
    from hy3dgen.shapegen.pipelines import instantiate_from_config

    config = _tiny_config(multiview)
    torch.manual_seed(seed)
    parts = {name: instantiate_from_config(config[name]) for name in ("model", "vae", "conditioner")}
    _shape_the_decoder(parts["vae"])
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    tensors = {f"{part}.{key}": value.contiguous() for part, module in parts.items()
               for key, value in module.state_dict().items()}
    safetensors.torch.save_file(tensors, str(folder / "model.fp16.safetensors"))


def _write_tiny_vae(folder, seed: int) -> None:
    """A FlashVDM VAE subfolder as ShapeVAE.from_pretrained reads it: config.yaml with params, bare state dict."""
    import safetensors.torch
    import yaml
    from hy3dgen.shapegen.models import ShapeVAE

    torch.manual_seed(seed)
    vae = ShapeVAE(**VAE)
    _shape_the_decoder(vae)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"target": "hy3dgen.shapegen.models.ShapeVAE",
                                                        "params": VAE}))
    safetensors.torch.save_file({k: v.contiguous() for k, v in vae.state_dict().items()},
                                str(folder / "model.fp16.safetensors"))


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, shapegen):
    """One folder with the subfolders of three repositories side by side, as $O3F_HUNYUAN_WEIGHTS takes it."""
    root = tmp_path_factory.mktemp("hunyuan_weights")
    _write_tiny_model(root / "hunyuan3d-dit-v2-0", multiview=False, seed=1)
    _write_tiny_model(root / "hunyuan3d-dit-v2-0-turbo", multiview=False, seed=2)
    _write_tiny_vae(root / "hunyuan3d-vae-v2-0-turbo", seed=3)
    _write_tiny_model(root / "hunyuan3d-dit-v2-mv", multiview=True, seed=4)
    return root


@pytest.fixture
def host(monkeypatch):
    """A fresh ModelHost per test, so no pipeline outlives the test that loaded it."""
    fresh = ModelHost()
    monkeypatch.setattr(hunyuan, "MODEL_HOST", fresh)
    yield fresh
    fresh.release()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty weight caches: nothing on this machine but what the test puts there."""
    import huggingface_hub.constants

    monkeypatch.delenv("O3F_HUNYUAN_WEIGHTS", raising=False)
    monkeypatch.delenv("O3F_DOWNLOAD_WEIGHTS", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path / "hy3dgen_cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    return tmp_path


@pytest.fixture
def weights(tiny_weights, caches, monkeypatch):
    monkeypatch.setenv("O3F_HUNYUAN_WEIGHTS", str(tiny_weights))
    return tiny_weights


def disc(size=64, colour=(200, 60, 40)):
    """A cut-out square RGBA view: a coloured disc on transparency."""
    yy, xx = np.mgrid[0:size, 0:size]
    rgba = np.zeros((size, size, 4), np.uint8)
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    rgba[inside] = (*colour, 255)
    return rgba


def run(views, seed=0, **settings):
    request = GenerationRequest({label: disc() for label in views}, seed=seed, settings={**FAST, **settings})
    return hunyuan.Hunyuan3DGenerator().generate(request)


def _picked(settings, views):
    chosen = hunyuan.plan(settings, views)
    return chosen.variant, chosen.steps, chosen.octree_resolution


def test_quality_presets_pick_the_variant_steps_and_octree():
    assert _picked({"quality": "fast"}, 1) == ("2.0-turbo", 5, 256)
    assert _picked({}, 1) == ("2.0", 30, 256)
    assert _picked({"quality": "hero"}, 1) == ("2.0", 50, 384)
    assert _picked({"quality": "fast"}, 3) == ("mv-turbo", 5, 256)
    assert _picked({"quality": "hero"}, 4) == ("mv", 50, 384)
    assert _picked({"quality": "fast", "variant": "mini-turbo", "steps": 8, "octree_resolution": 64}, 1) == \
        ("mini-turbo", 8, 64)
    assert hunyuan.plan({}, 1).target_faces == 200_000 and hunyuan.plan({}, 1).texture is False


@pytest.mark.parametrize("settings, views, argument", [
    ({"quality": "ultra"}, 1, "options.quality"),
    ({"variant": "mv"}, 1, "options.variant"),
    ({"variant": "2.0"}, 2, "options.variant"),
    ({"variant": "3.0"}, 1, "options.variant"),
    ({"steps": 0}, 1, "options.steps"),
    ({"octree_resolution": 8.5}, 1, "options.octree_resolution"),
    ({"texture": "yes"}, 1, "options.texture"),
    ({"height": -1}, 1, "options.height"),
])
def test_bad_settings_are_refused_naming_the_argument(settings, views, argument):
    with pytest.raises(InputError) as caught:
        hunyuan.plan(settings, views)
    assert caught.value.argument == argument


def test_view_labels_become_the_mv_models_dict_keys_and_top_is_refused():
    images = hunyuan.model_images({"front": disc(), "left": disc(), "back": disc(), "right": disc()})
    assert list(images) == ["front", "left", "back", "right"]
    assert all(image.mode == "RGBA" and image.size == (64, 64) for image in images.values())
    single = hunyuan.model_images({"front": disc()})
    assert single.mode == "RGBA" and np.array_equal(np.asarray(single), disc())
    with pytest.raises(InputError, match="no top view") as caught:
        hunyuan.model_images({"front": disc(), "top": disc()})
    assert caught.value.argument == "views" and caught.value.value == "top"
    with pytest.raises(InputError, match="'front' for a single image"):
        hunyuan.model_images({"left": disc()})
    with pytest.raises(InputError, match="RGBA uint8"):
        hunyuan.model_images({"front": disc()[..., :3]})
    with pytest.raises(ForgeError, match="no object"):
        hunyuan.model_images({"front": np.zeros((32, 32, 4), np.uint8)})


def test_one_view_end_to_end_on_the_cpu_then_through_post_processing(weights, host, tmp_path):
    result = run(["front"], seed=3, height=1.5)
    mesh = result.mesh
    assert len(mesh.faces) > 100 and mesh.is_watertight and mesh.volume > 0
    lower, upper = mesh.bounds
    assert lower[2] == pytest.approx(0.0, abs=1e-9) and upper[2] - lower[2] == pytest.approx(1.5)
    assert np.allclose((lower[:2] + upper[:2]) / 2, 0.0, atol=1e-9)
    assert result.colors.shape == (len(mesh.vertices), 4) and (result.colors == hunyuan.NEUTRAL_GREY).all()
    info = result.info
    assert (info["variant"], info["steps"], info["octree_resolution"], info["device"]) == ("2.0", 2, 32, "cpu")
    assert info["gpu_seconds"] > 0 and "European Union" in info["licence"] and info["texture"].startswith("not asked")

    high = MeshArrays(mesh.vertices, mesh.faces, colors=result.colors)
    settings = PostSettings(target_triangles=300, texture_size=256, collision=False, height_cm=150)
    game = postprocess(high, "hunyuan-tiny", settings, StageCache(tmp_path / "cache"), lambda *a: None, lambda: None)
    lod0 = game.lods[0]
    assert lod0.face_count == pytest.approx(300, rel=0.1) and lod0.face_count > game.lods[-1].face_count
    assert lod0.uv is not None and lod0.uv.shape == (len(lod0.vertices), 2)
    assert 0.0 <= lod0.uv.min() and lod0.uv.max() <= 1.0
    assert game.report["deviation_m"] and set(game.report["timings_s"]) >= {"repair_cleanup", "decimate", "unwrap"}


def test_same_seed_same_mesh_and_another_seed_another(weights, host):
    first, again, other = run(["front"], seed=7), run(["front"], seed=7), run(["front"], seed=8)
    assert np.array_equal(first.mesh.vertices, again.mesh.vertices)
    assert np.array_equal(first.mesh.faces, again.mesh.faces)
    assert first.mesh.vertices.shape != other.mesh.vertices.shape or \
        not np.allclose(first.mesh.vertices, other.mesh.vertices)


def test_two_to_four_views_run_the_mv_model_with_its_view_dict(weights, host):
    result = run(["front", "left", "back"], seed=1)
    assert result.info["variant"] == "mv" and result.info["views"] == ["front", "left", "back"]
    assert len(result.mesh.faces) > 100 and result.mesh.is_watertight
    pipeline = host._model
    assert type(pipeline.image_processor).__name__ == "MVImageProcessorV2"
    with pytest.raises(InputError, match="no top view"):
        run(["front", "top"])


# Blender axes: the marker colour of each side that has one (sRGB); -X and the top and bottom stay grey.
MARKERS = {(0, 1): (0.85, 0.10, 0.10), (1, -1): (0.10, 0.20, 0.85), (1, 1): (0.10, 0.70, 0.15)}  # (axis, sign)
MARKER_NAMES = {(0.85, 0.10, 0.10): "red +X", (0.10, 0.20, 0.85): "blue -Y", (0.10, 0.70, 0.15): "green +Y"}


def _marked_box_glb(path):
    """A 0.8 x 0.6 x 0.5 m box, Z up, each face one colour: +X red, -Y (the front) blue, +Y green, the others
    grey, so each of the four side views shows a colour no other one does (the camera on -X: grey only)."""
    import trimesh

    box = trimesh.creation.box(extents=(0.8, 0.6, 0.5))
    box.unmerge_vertices()
    colours = np.full((len(box.faces), 3), 0.6)
    for face, normal in enumerate(box.face_normals):
        axis = int(np.argmax(np.abs(normal)))
        colours[face] = MARKERS.get((axis, int(np.sign(normal[axis]))), (0.6, 0.6, 0.6))
    linear = np.where(colours <= 0.04045, colours / 12.92, ((colours + 0.055) / 1.055) ** 2.4)
    vertex_colours = np.zeros((len(box.vertices), 4), np.uint8)
    for face, corners in enumerate(box.faces):
        vertex_colours[corners] = (*np.round(linear[face] * 255).astype(np.uint8), 255)
    # glTF is Y up: a Blender point (x, y, z) is written as (x, z, -y), which Blender's importer turns back.
    written = box.vertices @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    trimesh.Trimesh(written, box.faces, vertex_colors=vertex_colours, process=False).export(path)
    return path


def _marker_seen(image) -> str:
    """Which marker colour covers most of the object in an RGBA image, or 'grey' when none does."""
    rgba = np.asarray(image.convert("RGBA"), np.float64) / 255
    rgb = rgba[rgba[..., 3] > 0.5][:, :3]
    assert len(rgb) > 100, "the object is not in the view"
    shares = {name: (np.abs(rgb - colour).max(axis=1) < 0.12).mean() for colour, name in MARKER_NAMES.items()}
    name, share = max(shares.items(), key=lambda item: item[1])
    others = sorted(shares.values())[:-1]
    if share > 0.5 and max(others) < 0.05:
        return name
    assert share < 0.05, f"a mixed view: {shares}"
    return "grey"


@pytest.fixture(scope="module")
def marked_box_views(tmp_path_factory):
    """Blender's orthographic front, left, back and right renders (RGBA arrays) of the marked box."""
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed; cannot render test views")
    from blender_render import render_views

    folder = tmp_path_factory.mktemp("marked_box")
    paths = render_views(_marked_box_glb(folder / "box.glb"), folder / "views",
                         views=("front", "left", "back", "right"), size=96, samples=8)
    return {label: np.asarray(Image.open(path).convert("RGBA")) for label, path in paths.items()}


def test_mv_gets_our_right_view_as_its_left_and_our_left_as_its_right(weights, host, marked_box_views,
                                                                      shapegen, monkeypatch):
    # The renders are the truth: the camera on +X (our "right") sees the red +X side, the one on -X grey.
    seen_by_us = {label: _marker_seen(Image.fromarray(rgba)) for label, rgba in marked_box_views.items()}
    assert seen_by_us == {"front": "blue -Y", "left": "grey", "back": "green +Y", "right": "red +X"}

    handed = []
    processor = shapegen.preprocessors.MVImageProcessorV2
    original = processor.__call__

    def recording(self, image_dict, *args, **kwargs):
        handed.append(dict(image_dict))
        return original(self, image_dict, *args, **kwargs)

    monkeypatch.setattr(processor, "__call__", recording)
    request = GenerationRequest(dict(marked_box_views), seed=0, settings=FAST)
    result = hunyuan.Hunyuan3DGenerator().generate(request)
    assert result.info["variant"] == "mv" and result.info["views"] == ["front", "left", "back", "right"]
    assert len(handed) == 1 and set(handed[0]) == {"front", "left", "back", "right"}
    # Hunyuan3D-2mv's "left" shows the object's left side (+X for an object facing -Y): our right view.
    seen_by_hy3dgen = {key: _marker_seen(image) for key, image in handed[0].items()}
    assert seen_by_hy3dgen == {"front": "blue -Y", "left": "red +X", "back": "green +Y", "right": "grey"}
    assert np.array_equal(np.asarray(handed[0]["left"]), marked_box_views["right"])
    assert np.array_equal(np.asarray(handed[0]["right"]), marked_box_views["left"])


def test_fast_runs_the_turbo_dit_with_the_flashvdm_vae_from_its_own_folder(weights, host):
    result = run(["front"], seed=2, quality="fast")
    assert result.info["variant"] == "2.0-turbo" and result.info["steps"] == 2  # FAST overrides the 5 steps
    pipeline = host._model
    assert type(pipeline.vae.volume_decoder).__name__ == "FlashVDMVolumeDecoding"
    turbo_vae = safetensors.torch.load_file(str(weights / "hunyuan3d-vae-v2-0-turbo" / "model.fp16.safetensors"))
    assert torch.equal(pipeline.vae.post_kl.weight, turbo_vae["post_kl.weight"])
    assert len(result.mesh.faces) > 100


def test_one_model_is_held_at_a_time_and_the_previous_one_is_let_go(weights, host):
    run(["front"])
    run(["front"], seed=1)
    single_key = host.held
    assert host.loads == [single_key] and ":2.0:" in single_key
    single = weakref.ref(host._model)
    run(["front", "right"])
    assert host.loads == [single_key, host.held] and ":mv:" in host.held
    gc.collect()
    assert single() is None


def test_the_gpu_call_takes_and_returns_picklable_cpu_data(weights, host):
    sources = hunyuan.variant_sources(hunyuan.VARIANTS["2.0"])
    job = hunyuan.SampleJob("2.0", sources, "cpu", hunyuan.model_images({"front": disc()}), 5, 2, 32, "balanced")
    restored = pickle.loads(pickle.dumps(job))
    vertices, faces, seconds = hunyuan.sample(restored)
    assert vertices.dtype == np.float32 and faces.dtype == np.int64 and len(faces) > 0 and seconds > 0
    assert np.abs(vertices).max() <= 1.01  # hy3dgen's box before our axes and scale
    pickle.loads(pickle.dumps((vertices, faces)))


def test_the_gpu_duration_comes_from_the_quality_and_the_view_count(monkeypatch):
    one = hunyuan.SampleJob("2.0", ("/w",), "cpu", None, 0, 30, 256, "hero")
    four = hunyuan.SampleJob("mv", ("/w",), "cpu", {k: None for k in hunyuan.MV_KEYS}, 0, 30, 256, "fast")
    assert hunyuan.sample_seconds(one) == gpu.generation_seconds("hero", 1)  # fewer steps than hero's 50
    assert hunyuan.sample_seconds(four) == pytest.approx(gpu.generation_seconds("fast", 4) * 30 / 5)
    finer = hunyuan.SampleJob("2.0", ("/w",), "cpu", None, 0, 50, 768, "hero")
    assert hunyuan.sample_seconds(finer) == pytest.approx(gpu.generation_seconds("hero", 1) + hunyuan.DECODE_S * 7)
    generator = hunyuan.Hunyuan3DGenerator()
    monkeypatch.setattr(hunyuan, "paint_status", lambda: (False, "no custom_rasterizer"))
    plain = generator.gpu_estimate({"quality": "balanced"}, 1)
    assert generator.gpu_estimate({"quality": "balanced", "texture": True}, 1) == plain  # painting cannot run
    monkeypatch.setattr(hunyuan, "paint_status", lambda: (True, "ready"))
    assert generator.gpu_estimate({"quality": "balanced", "texture": True}, 1) == plain + gpu.START_UP_S + gpu.PAINT_S

    durations = {}

    def fake_gpu(duration):
        def wrap(function):
            durations[function.__name__] = duration
            return function
        return wrap

    spaces = types.ModuleType("spaces")
    spaces.__spec__ = importlib.machinery.ModuleSpec("spaces", None)
    spaces.GPU = fake_gpu
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    try:
        importlib.reload(hunyuan)
        assert durations["sample"](four) == gpu.requested_duration(gpu.generation_seconds("fast", 4) * 30 / 5)
        assert durations["paint"](None) == gpu.requested_duration(gpu.START_UP_S + gpu.PAINT_S)
    finally:
        monkeypatch.undo()
        importlib.reload(hunyuan)


def _only_installed(monkeypatch, *missing):
    # torchvision counts as present: PyPI's does not import beside the CPU torch wheel, the stand-in does.
    monkeypatch.setattr(hunyuan, "library_present", lambda module: module not in missing)


def test_availability_says_why_not_each_reason_its_own(weights, monkeypatch, caches):
    generator = hunyuan.Hunyuan3DGenerator()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("O3F_ALLOW_CPU_MODELS", raising=False)
    reasons = []
    for missing in ("hy3dgen", "torch", "torchvision"):
        with monkeypatch.context() as patch:
            _only_installed(patch, missing)
            reasons.append(generator.availability())
    _only_installed(monkeypatch)
    reasons.append(generator.availability())
    monkeypatch.setenv("O3F_ALLOW_CPU_MODELS", "1")
    monkeypatch.setenv("O3F_HUNYUAN_WEIGHTS", str(caches / "empty"))
    reasons.append(generator.availability())
    assert [available for available, _ in reasons] == [False] * 5
    texts = [reason for _, reason in reasons]
    assert texts[0] == "hy3dgen is not installed (pip install hy3dgen==2.0.2)"
    assert "PyTorch is not installed" in texts[1] and "torchvision is not installed" in texts[2]
    assert texts[3].startswith("no CUDA GPU") and "O3F_ALLOW_CPU_MODELS=1" in texts[3]
    assert texts[4].startswith("no Hunyuan3D-2 weights") and "nothing is downloaded" in texts[4]
    assert len(set(texts)) == 5

    monkeypatch.setenv("O3F_HUNYUAN_WEIGHTS", str(weights))
    available, reason = generator.availability()
    assert available and "variants 2.0, 2.0-turbo, mv cached;" in reason and "mv-turbo" not in reason
    assert "texture painting needs a CUDA GPU" in reason and "European Union" in reason and "South Korea" in reason
    monkeypatch.setenv("O3F_DOWNLOAD_WEIGHTS", "1")
    available, reason = generator.availability()
    assert available and "O3F_DOWNLOAD_WEIGHTS=1 downloads the others on first use" in reason
    assert hunyuan.variant_sources(hunyuan.VARIANTS["mv-turbo"]) == ("tencent/Hunyuan3D-2mv", str(weights))


def test_weights_are_found_in_the_hugging_face_cache_without_downloading(tiny_weights, caches, monkeypatch):
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError("availability must not download")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    assert hunyuan.variant_sources(hunyuan.VARIANTS["mv"]) is None
    repo = caches / "hf_cache" / "models--tencent--Hunyuan3D-2mv"
    snapshot = repo / "snapshots" / ("ab" * 20)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("ab" * 20)
    (snapshot / "hunyuan3d-dit-v2-mv").mkdir(parents=True)
    for name in hunyuan.SHAPE_FILES:
        (snapshot / "hunyuan3d-dit-v2-mv" / name).write_bytes((tiny_weights / "hunyuan3d-dit-v2-mv" / name).read_bytes())
    assert hunyuan.variant_sources(hunyuan.VARIANTS["mv"]) == (str(snapshot),)
    assert hunyuan.variant_sources(hunyuan.VARIANTS["mv-turbo"]) is None  # its DiT and FlashVDM VAE are not there


def test_a_missing_variant_is_refused_before_any_work_and_named(weights, host):
    generator = hunyuan.Hunyuan3DGenerator()
    generator.check_settings({"quality": "fast"}, 1)
    with pytest.raises(InputError, match="mini-turbo needs tencent/Hunyuan3D-2mini/hunyuan3d-dit-v2-mini-turbo, "
                                         "tencent/Hunyuan3D-2mini/hunyuan3d-vae-v2-mini-turbo") as caught:
        generator.check_settings({"quality": "fast", "variant": "mini-turbo"}, 1)
    assert caught.value.argument == "options.quality"
    with pytest.raises(InputError, match="1 to 4 for hunyuan3d-2"):
        generator.check_settings({}, 5)
    with pytest.raises(InputError):
        run(["front"], quality="fast", variant="mini-turbo")
    assert host.loads == []


def test_texture_asked_without_painting_stays_neutral_grey(weights, host):
    result = run(["front"], texture=True)
    assert result.info["texture"].startswith("not painted (texture painting needs a CUDA GPU)")
    assert (result.colors == hunyuan.NEUTRAL_GREY).all()


@pytest.mark.slow
@pytest.mark.skipif(REAL_ROOTS is None, reason="the real Hunyuan3D-2 turbo weights are not in the Hugging Face "
                    "cache or $O3F_HUNYUAN_WEIGHTS (tencent/Hunyuan3D-2: hunyuan3d-dit-v2-0-turbo and "
                    "hunyuan3d-vae-v2-0-turbo)")
def test_real_weights_make_a_tall_thing_tall(host):
    bottle = np.zeros((256, 256, 4), np.uint8)
    bottle[20:236, 100:156] = (40, 120, 60, 255)
    request = GenerationRequest({"front": bottle}, seed=0, settings={"quality": "fast", "octree_resolution": 128})
    result = hunyuan.Hunyuan3DGenerator().generate(request)
    extents = result.mesh.extents
    assert len(result.mesh.faces) > 1000
    assert extents[2] > 1.8 * extents[0]  # Z up: the bottle stands (not lying along Y or X)
