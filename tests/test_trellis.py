"""TRELLIS (v1) + DSO adapter against recording stand-ins of trellis.pipelines and peft (not a verification)."""

import sys
import types
from collections import namedtuple
from typing import ClassVar

import numpy as np
import pytest
import trimesh
from PIL import Image

from server.errors import ForgeError, InputError
from server.generators import base, modelhost, registry, trellis, trellis2
from server.generators.base import GenerationRequest
from server.generators.trellis import TrellisGenerator
from tests.fakes import fake_module
from tests.test_trellis2 import FakeTensor, fake_torch, square_view

LoadResult = namedtuple("LoadResult", "missing_keys unexpected_keys")
LORA_KEY = "base_model.model.blocks.0.attn.to_qkv.lora_A.default.weight"


class FakeMeshExtract:
    """MeshExtractResult: vertices and faces in the native frame, vertex_attrs with RGB first."""

    def __init__(self, colours=True):
        box = trimesh.creation.box(extents=(0.2, 0.4, 0.5))
        box.apply_translation((0.1, -0.05, 0.2))
        self.vertices = FakeTensor(box.vertices.astype(np.float32))
        self.faces = FakeTensor(box.faces.astype(np.int64))
        attrs = np.zeros((len(box.vertices), 6), np.float32)
        attrs[:, 0] = (box.vertices[:, 2] > 0.2).astype(np.float32)  # red top half
        attrs[:, 2] = 0.5
        self.vertex_attrs = FakeTensor(attrs) if colours else None
        self.success = True


class FakeFlowModel:
    name = "sparse structure flow"


class FakePeftModel:
    def __init__(self, model, config, log):
        self.base_model, self.config, self.log = model, config, log
        self.missing = []

    def load_state_dict(self, state, strict=True):
        self.log.append(("load_state_dict", sorted(state), strict))
        return LoadResult(self.missing, [])


class FakePipeline:
    calls: ClassVar[list] = []
    colours = True

    def __init__(self):
        self.models = {"sparse_structure_flow_model": FakeFlowModel(), "slat_flow_model": object()}

    @classmethod
    def from_pretrained(cls, path):
        cls.calls.append(("from_pretrained", path))
        return cls()

    def cuda(self):
        self.calls.append(("cuda", self.models["sparse_structure_flow_model"]))
        return self

    def run(self, image, num_samples=1, seed=42, sparse_structure_sampler_params={},  # noqa: B006 - as upstream
            slat_sampler_params={}, formats=["mesh", "gaussian", "radiance_field"],  # noqa: B006
            preprocess_image=True):
        self.calls.append(("run", [image], {"seed": seed, "formats": formats, "sparse": sparse_structure_sampler_params,
                                            "slat": slat_sampler_params}))
        return {"mesh": [FakeMeshExtract(self.colours)]}

    def run_multi_image(self, images, num_samples=1, seed=42, sparse_structure_sampler_params={},  # noqa: B006
                        slat_sampler_params={}, formats=["mesh", "gaussian", "radiance_field"],  # noqa: B006
                        preprocess_image=True, mode="stochastic"):
        self.calls.append(("run_multi_image", list(images), {
            "seed": seed, "formats": formats, "sparse": sparse_structure_sampler_params,
            "slat": slat_sampler_params, "mode": mode}))
        return {"mesh": [FakeMeshExtract(self.colours)]}


@pytest.fixture
def host(monkeypatch):
    fresh = modelhost.ModelHost()
    monkeypatch.setattr(trellis, "MODEL_HOST", fresh)
    monkeypatch.setattr(trellis2, "MODEL_HOST", fresh)
    return fresh


@pytest.fixture
def fake_trellis(monkeypatch, tmp_path, host):
    FakePipeline.calls, FakePipeline.colours = [], True
    monkeypatch.setitem(sys.modules, "trellis", fake_module("trellis"))
    monkeypatch.setitem(sys.modules, "trellis.pipelines",
                        fake_module("trellis.pipelines", TrellisImageTo3DPipeline=FakePipeline))
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    for extension, _ in trellis.COMPILED:
        monkeypatch.setitem(sys.modules, extension, fake_module(extension))
    weights = tmp_path / "trellis-image-large"
    weights.mkdir()
    (weights / "pipeline.json").write_text("{}")
    monkeypatch.setenv(trellis.WEIGHTS_ENV, str(weights))
    monkeypatch.delenv(trellis.DSO_ENV, raising=False)
    return FakePipeline


@pytest.fixture
def fake_peft(monkeypatch, tmp_path):
    """peft and safetensors stand-ins, and a DSO LoRA file on disk."""
    log = []
    made = []

    class LoraConfig:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    def get_peft_model(model, config):
        log.append(("get_peft_model", model, config.kwargs))
        made.append(FakePeftModel(model, config, log))
        return made[-1]

    def load_file(path):
        log.append(("load_file", path))
        return {LORA_KEY: np.zeros((64, 8))}

    monkeypatch.setitem(sys.modules, "peft", fake_module("peft", LoraConfig=LoraConfig, get_peft_model=get_peft_model))
    monkeypatch.setitem(sys.modules, "safetensors", fake_module("safetensors"))
    monkeypatch.setitem(sys.modules, "safetensors.torch", fake_module("safetensors.torch", load_file=load_file))
    lora = tmp_path / trellis.DSO_FILE
    lora.write_bytes(b"not read by the stand-in")
    monkeypatch.setenv(trellis.DSO_ENV, str(tmp_path))
    return types.SimpleNamespace(log=log, made=made, path=lora)


def views(*labels, size=48):
    return {label: square_view(size) + np.uint8(index) for index, label in enumerate(labels)}


def generate(view_images, seed=5, **settings):
    return TrellisGenerator().generate(GenerationRequest(view_images, seed=seed, settings=settings))


@pytest.mark.parametrize("quality,steps", [("fast", 8), ("balanced", 12), ("hero", 25)])
def test_one_view_calls_run_with_the_preset_steps_and_the_seed(fake_trellis, quality, steps):
    generate(views("front"), seed=99, quality=quality)
    (name, images, arguments), = [call for call in fake_trellis.calls if call[0].startswith("run")]
    assert name == "run" and arguments["seed"] == 99 and arguments["formats"] == ["mesh"]
    assert arguments["sparse"] == {"steps": steps, "cfg_strength": 7.5}
    assert arguments["slat"] == {"steps": steps, "cfg_strength": 3.0}
    assert isinstance(images[0], Image.Image) and images[0].mode == "RGBA"


def test_several_views_go_to_run_multi_image_in_view_order_with_the_mode(fake_trellis):
    given = views("back", "front", "left")
    generate(given, seed=3, multiview_mode="multidiffusion")
    (name, images, arguments), = [call for call in fake_trellis.calls if call[0].startswith("run")]
    assert name == "run_multi_image" and arguments["mode"] == "multidiffusion" and arguments["seed"] == 3
    assert [np.asarray(image)[0, 0, 0] for image in images] == [given[v][0, 0, 0] for v in ("front", "left", "back")]
    result = generate(given)
    assert result.info["multiview_mode"] == "stochastic" and result.info["views"] == 3


def test_dso_wraps_the_sparse_structure_flow_model_with_the_published_lora(fake_trellis, fake_peft, host):
    result = generate(views("front"), must_stand=True)
    (_, model, config), = [entry for entry in fake_peft.log if entry[0] == "get_peft_model"]
    assert isinstance(model, FakeFlowModel)
    assert config == {"r": 64, "lora_alpha": 128, "lora_dropout": 0.0,
                      "target_modules": ["to_q", "to_kv", "to_out", "to_qkv"]}
    assert ("load_file", str(fake_peft.path)) in fake_peft.log
    assert ("load_state_dict", [LORA_KEY], False) in fake_peft.log
    pipeline = host.get("trellis+dso", lambda: pytest.fail("the DSO pipeline should be held"))
    assert pipeline.models["sparse_structure_flow_model"] is fake_peft.made[0]
    # The LoRA is in place before the pipeline moves to the GPU, so its layers move too.
    (_, flow_at_cuda), = [call for call in fake_trellis.calls if call[0] == "cuda"]
    assert flow_at_cuda is fake_peft.made[0]
    assert result.info["dso"] is True and host.held == "trellis+dso"


def test_a_lora_that_does_not_fit_is_refused(fake_trellis, fake_peft, monkeypatch):
    original = FakePeftModel.load_state_dict

    def missing(self, state, strict=True):
        original(self, state, strict)
        return LoadResult([LORA_KEY], [])

    monkeypatch.setattr(FakePeftModel, "load_state_dict", missing)
    with pytest.raises(ForgeError, match="does not fit TRELLIS's flow model"):
        generate(views("front"), must_stand=True)


def test_must_stand_without_the_lora_is_refused_before_any_work(fake_trellis, monkeypatch):
    monkeypatch.setattr(base, "cached_on_hub", lambda repo, name: False)
    monkeypatch.setattr(trellis, "cached_on_hub", lambda repo, name: False)
    with pytest.raises(InputError, match="options.must_stand=True: expected false on this server"):
        registry.choose("trellis", 1, "prop", {"must_stand": True})
    assert fake_trellis.calls == []


def test_the_host_keeps_one_model_at_a_time(fake_trellis, fake_peft, host, monkeypatch, tmp_path):
    generate(views("front"))
    generate(views("front"))
    generate(views("front"), must_stand=True)
    monkeypatch.setitem(sys.modules, "trellis2", fake_module("trellis2"))
    from tests.test_trellis2 import FakePipeline as FakePipeline2

    monkeypatch.setitem(sys.modules, "trellis2.pipelines",
                        fake_module("trellis2.pipelines", Trellis2ImageTo3DPipeline=FakePipeline2))
    monkeypatch.setenv(trellis2.WEIGHTS_ENV, str(tmp_path))
    trellis2.Trellis2Generator().generate(GenerationRequest({"front": square_view()}))
    generate(views("front"))
    assert host.loads == ["trellis", "trellis+dso", "trellis2", "trellis"] and host.held == "trellis"


def test_axes_scale_and_vertex_colours(fake_trellis):
    result = generate(views("front"), height=1.5)
    mesh = result.mesh
    assert mesh.extents[2] == pytest.approx(1.5) and mesh.bounds[0][2] == pytest.approx(0.0)
    # A known native corner: (0.2, 0.15, 0.45) is the box's +x, +y top corner; scale 1.5 / 0.5 = 3.
    expected = (np.array([0.2, 0.15, 0.45]) - np.array([0.1, -0.05, -0.05])) * 3.0
    assert np.min(np.linalg.norm(mesh.vertices - expected, axis=1)) < 1e-6
    top = mesh.vertices[:, 2] > 0.75
    assert np.all(result.colors[top, :3] == [255, 0, 128]) and np.all(result.colors[~top, :3] == [0, 0, 128])
    assert result.info["vertex_colors"] is True and result.attribute_volume is None
    FakePipeline.colours = False
    grey = generate(views("front"))
    assert np.all(grey.colors[:, :3] == 200) and grey.info["vertex_colors"] is False


def test_availability_reasons(monkeypatch, tmp_path):
    generator = TrellisGenerator()
    monkeypatch.delitem(sys.modules, "trellis.pipelines", raising=False)
    monkeypatch.setitem(sys.modules, "trellis", types.ModuleType("trellis"))  # PyPI's namesake: not a package
    available, reason = generator.availability()
    assert not available and reason.startswith("library TRELLIS is not installed (trellis.pipelines not found")
    monkeypatch.setitem(sys.modules, "trellis.pipelines", fake_module("trellis.pipelines"))
    monkeypatch.setitem(sys.modules, "torch", fake_torch(lambda: False))
    monkeypatch.setitem(sys.modules, "spconv", None)
    monkeypatch.setitem(sys.modules, "xformers", fake_module("xformers"))
    assert generator.availability() == (False, "compiled extension spconv is not installed (PyPI spconv-cu126, "
                                               "its sparse convolutions)")
    monkeypatch.setitem(sys.modules, "spconv", fake_module("spconv"))
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert generator.availability() == (False, "no CUDA GPU on this server")
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    monkeypatch.delenv(trellis.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(base, "cached_on_hub", lambda repo, name: False)
    monkeypatch.setattr(trellis, "cached_on_hub", lambda repo, name: False)
    available, reason = generator.availability()
    assert not available and "JeffreyXiang/TRELLIS-image-large are not in the Hugging Face cache" in reason
    monkeypatch.setenv(base.DOWNLOAD_ENV, "1")
    monkeypatch.delenv(trellis.DSO_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "peft", None)
    available, reason = generator.availability()
    assert available and "download from the Hub on first use" in reason and "must_stand: DSO needs peft" in reason


@pytest.mark.skipif(not TrellisGenerator().availability()[0],
                    reason="real TRELLIS not runnable here (library, CUDA or weights missing): "
                           + TrellisGenerator().availability()[1])
def test_real_weights_make_a_coloured_mesh():
    result = TrellisGenerator().generate(GenerationRequest({"front": square_view(256)}, settings={"quality": "fast"}))
    assert len(result.mesh.faces) > 1000 and result.info["gpu_seconds"] > 0
