"""The Space's real model code on a CUDA machine, with tiny random weights written here (issue 11, item 7).

Run by bench/space_gpu_check.sh on the GPU machine after it has installed the wheels it built, never alone:

    python3 bench/space_gpu_check.py --work /tmp/o3f --json $OUT/check.json [--only imports,hunyuan]

Each part is a step; a step that fails is logged with its error and the next one runs:
  1. imports: trellis2 (the pinned source tree), o_voxel, cumesh, flex_gemm, nvdiffrast, xformers, hy3dgen.
  2. TRELLIS.2: tiny models for every stage of Trellis2ImageTo3DPipeline (sparse structure flow + decoder, shape
     and texture SLat flows, the FlexiDualGrid shape decoder, the texture decoder, a DINOv3 image encoder and a
     background model for transformers' auto class), written as pipeline.json + <model>.json/.safetensors; then
     the server's own API: generate (generator trellis2, our adapter), postprocess, bake (engine cuda, sampling
     the voxel attributes) and export (UE5 zip, GLB meshes without bpy).
  3. Hunyuan3D-2: tests/test_hunyuan.py's tiny hy3dgen weights, the same API chain on CUDA.
  4. custom_rasterizer: one triangle through its CUDA rasteriser, when its wheel was installed.
  5. TRELLIS (v1): how far `import trellis.pipelines` gets with what is installed.

Attention: the server's own choice (server/generators/attention.py): flash_attn, xformers when it has CUDA kernels
for this torch, else flash_attn's API on torch's scaled_dot_product_attention (dense attention: TRELLIS.2's own
sdpa backend); printed. (Runs 3 and 4 of 2026-12-06 used an earlier per-sequence form of that stand-in and bypassed
the registry's availability, which then asked for xformers.) O3F_CHECK_FLEX_GEMM_ALGO picks
FlexGEMM's algorithm (explicit_gemm avoids Triton autotuning on a fresh machine). Figures: bench/RESULTS.md.

The tiny TRELLIS.2 weights are random except where a stage must make a surface: the sparse-structure flow's output
layer reads its own position embedding so that the decoded occupancy is a blob (a 3D cross), its decoder passes
channel 0 through, and the shape decoder's last block marks the voxels on the blob's boundary, along each axis, as
the ones whose edges FlexiDualGrid turns into quads. Every other weight is random and every kernel runs for real.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS: dict = {"steps": {}}
SELECTED: list[str] = []  # --only: run the steps whose names contain one of these words (all when empty)


def log(message: str) -> None:
    print(message, flush=True)


def step(name: str):
    """Run the decorated function now as a named step: time it, keep its result or its error, never raise."""
    def run(function):
        if SELECTED and not any(word in name for word in SELECTED):
            return function
        started = time.perf_counter()
        log(f"\n=== {name}")
        try:
            value = function()
            RESULTS["steps"][name] = {"ok": True, "seconds": round(time.perf_counter() - started, 2), "result": value}
            log(f"--- {name}: ok in {time.perf_counter() - started:.1f} s: {json.dumps(value, default=str)[:1500]}")
        except BaseException as exc:  # noqa: BLE001 - every failure is a finding to record
            RESULTS["steps"][name] = {"ok": False, "seconds": round(time.perf_counter() - started, 2),
                                      "error": f"{type(exc).__name__}: {exc}"}
            log(f"--- {name}: FAILED after {time.perf_counter() - started:.1f} s")
            traceback.print_exc()
            sys.stdout.flush()
        return function
    return run


def version_of(module: str) -> str:
    from importlib import metadata

    for name in (module, module.replace("_", "-")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "?"


# ---------------------------------------------------------------------------------------------- attention


def choose_attention() -> dict:
    """The server's own choice (server/generators/attention.py): flash_attn, xformers with its kernels, else
    flash_attn's API on torch's SDPA; the stand-in is registered now, as a pipeline load would."""
    from server.generators import attention

    return attention.prepare()


# ---------------------------------------------------------------------------------------------- TRELLIS.2


def save_model(folder: Path, name: str, model, kind: str, args: dict) -> str:
    """One model as trellis2.models.from_pretrained reads it: <name>.json {name, args} and <name>.safetensors."""
    from safetensors.torch import save_file

    (folder / f"{name}.json").write_text(json.dumps({"name": kind, "args": args}))
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              str(folder / f"{name}.safetensors"))
    return name


def conv_axis_map() -> list[int]:
    """For each coordinate axis (x, y, z), the kernel dimension of trellis2's SparseConv3d weight
    (Co, Kd, Kh, Kw, Ci) that reaches a neighbour along it, measured with flex_gemm's kernel itself."""
    import torch
    from trellis2.modules import sparse as sp

    found = []
    for axis in range(3):
        offset = [0, 0, 0]
        offset[axis] = 1
        coords = torch.tensor([[0, 5, 5, 5], [0, 5 + offset[0], 5 + offset[1], 5 + offset[2]]],
                              dtype=torch.int32, device="cuda")
        feats = torch.zeros(2, 16, device="cuda")
        feats[:, 0] = torch.tensor([1.0, 10.0])
        x = sp.SparseTensor(feats, coords)
        for dim in range(3):
            conv = sp.SparseConv3d(16, 16, 3).cuda()
            with torch.no_grad():
                conv.weight.zero_()
                conv.bias.zero_()
                tap = [1, 1, 1]
                tap[dim] = 2
                conv.weight[0, tap[0], tap[1], tap[2], 0] = 1.0
            out = conv(x).feats[:, 0].abs().sum().item()
            if out > 0:
                found.append(dim)
                break
        else:
            raise RuntimeError(f"no kernel dimension reaches the neighbour along axis {axis}")
    return found


def write_tiny_trellis2(folder: Path) -> dict:
    """Every model, the image encoder, the background model and pipeline.json of a tiny TRELLIS.2 pipeline."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import DetrConfig, DetrForSegmentation, DINOv3ViTConfig, DINOv3ViTModel, ResNetConfig
    from trellis2 import models

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cond = 32  # the image encoder's width, read by every flow's cross-attention
    DINOv3ViTModel(DINOv3ViTConfig(hidden_size=cond, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                   patch_size=16, image_size=512, num_register_tokens=4)).save_pretrained(folder / "dino")
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1],
                            out_features=["stage1", "stage2", "stage3", "stage4"])
    DetrForSegmentation(DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False, backbone_config=backbone,
                                   d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=8,
                                   decoder_attention_heads=8, encoder_ffn_dim=16, decoder_ffn_dim=16,
                                   num_queries=2)).save_pretrained(folder / "rembg")
    saved = {}

    # Sparse structure flow (16^3 latent, 8 channels) with an absolute position embedding. Blocks add nothing
    # (zero gates, zero cross-attention output, zero input layer), so its velocity is out_layer(LN(pos_emb)):
    # row 0 makes x_0[0] = noise + A * (sum over axes of cos(f (p - 7.5)) - tau), a blob around the centre.
    ss_args = {"resolution": 16, "in_channels": 8, "model_channels": 64, "cond_channels": cond, "out_channels": 8,
               "num_blocks": 1, "num_heads": 2, "mlp_ratio": 2, "pe_mode": "ape", "dtype": "bfloat16",
               "share_mod": False, "initialization": "vanilla"}
    flow = models.SparseStructureFlowModel(**ss_args)
    freq_dim = ss_args["model_channels"] // 3 // 2  # AbsolutePositionEmbedder: per axis sin(f_k p), cos(f_k p)
    freqs = 1.0 / (10000 ** (np.arange(freq_dim) / freq_dim))
    k, centre, tau, strength = 1, 7.5, 2.7, 20.0
    row = np.zeros(ss_args["model_channels"])
    for axis in range(3):
        base = axis * 2 * freq_dim
        row[base + k] = math.sin(freqs[k] * centre)              # sin(f p) sin(f c)
        row[base + freq_dim + k] = math.cos(freqs[k] * centre)   # cos(f p) cos(f c)
    row[freq_dim + freq_dim - 1] -= tau                         # cos of the lowest frequency: 1 within 4e-6
    row[3 * 2 * freq_dim] = -row.sum()                          # a padding channel (always 0): the row sums to 0,
    with torch.no_grad():                                       # so LayerNorm's mean drops out
        for block in flow.blocks:
            block.cross_attn.to_out.weight.zero_()
            block.cross_attn.to_out.bias.zero_()
        flow.input_layer.weight.zero_()
        flow.input_layer.bias.zero_()
        flow.out_layer.weight.zero_()
        flow.out_layer.bias.zero_()
        flow.out_layer.weight[0] = torch.tensor(-strength * row, dtype=torch.float32)  # x_0 = x_1 - v
    saved["sparse_structure_flow_model"] = save_model(folder, "ss_flow", flow, "SparseStructureFlowModel", ss_args)

    # Its decoder: 16^3 -> 32^3, channel 0 copied (nearest) and its sign kept by the channel LayerNorm.
    dec_args = {"out_channels": 1, "latent_channels": 8, "num_res_blocks": 1, "channels": [16, 16],
                "num_res_blocks_middle": 1}
    decoder = models.SparseStructureDecoder(**dec_args)
    with torch.no_grad():
        decoder.input_layer.weight.zero_()
        decoder.input_layer.bias.zero_()
        decoder.input_layer.weight[0, 0, 1, 1, 1] = 1.0
        for block in decoder.blocks:
            if hasattr(block, "conv") and block.conv.out_channels == 8 * 16:
                block.conv.weight.zero_()
                block.conv.bias.zero_()
                for sub in range(8):  # pixel_shuffle_3d: output channel c reads input channels 8c .. 8c+7
                    block.conv.weight[sub, 0, 1, 1, 1] = 1.0
        out_conv = decoder.out_layer[-1]
        out_conv.weight.zero_()
        out_conv.bias.fill_(-0.1)
        out_conv.weight[0, 0, 1, 1, 1] = 1.0
    saved["sparse_structure_decoder"] = save_model(folder, "ss_dec", decoder, "SparseStructureDecoder", dec_args)

    # Shape and texture SLat flows: random (rope, shared modulation, qk RMS norm as the real ones), small output.
    shape_args = {"resolution": 32, "in_channels": 8, "model_channels": 64, "cond_channels": cond, "out_channels": 8,
                  "num_blocks": 1, "num_heads": 2, "mlp_ratio": 2, "pe_mode": "rope", "dtype": "bfloat16",
                  "share_mod": True, "qk_rms_norm": True, "qk_rms_norm_cross": True}
    tex_args = dict(shape_args, in_channels=16)
    for key, name, args in (("shape_slat_flow_model_512", "shape_flow", shape_args),
                            ("tex_slat_flow_model_512", "tex_flow", tex_args)):
        model = models.SLatFlowModel(**args)
        with torch.no_grad():
            model.out_layer.weight.normal_(0, 0.05)
        saved[key] = save_model(folder, name, model, "SLatFlowModel", args)

    # Shape decoder (FlexiDualGrid): 32 -> 512 through four nearest upsamplings that keep every child; its latent
    # is ignored (from_latent is a constant +K/-K pair) and the last block computes, per axis, 1.5 minus the number
    # of neighbours along that axis: positive on the blob's boundary. Output channels 3:6 (edge flags) read it.
    levels, width = 5, 16
    fdg_args = {"resolution": 512, "model_channels": [width] * levels, "latent_channels": 8,
                "num_blocks": [0] * (levels - 1) + [1], "block_type": ["SparseResBlock3d"] * levels,
                "up_block_type": ["SparseResBlockUpsample3d"] * (levels - 1), "block_args": [{}] * levels}
    fdg = models.FlexiDualGridVaeDecoder(**fdg_args)
    axis_dim = conv_axis_map()
    big = 100.0
    feature = torch.zeros(width)
    feature[0], feature[1] = big, -big
    silu_of_norm = F.silu(F.layer_norm(feature, (width,), eps=1e-6))[0].item()
    with torch.no_grad():
        fdg.from_latent.weight.zero_()
        fdg.from_latent.bias.copy_(feature)
        for level in fdg.blocks[:-1]:
            up = level[-1]
            up.to_subdiv.weight.zero_()
            up.to_subdiv.bias.fill_(1.0)
        last = fdg.blocks[-1][0]
        last.conv1.weight.zero_()
        last.conv1.bias.zero_()
        last.conv2.weight.zero_()
        last.conv2.bias.zero_()
        for axis in range(3):
            for side in (0, 2):
                tap = [1, 1, 1]
                tap[axis_dim[axis]] = side
                last.conv1.weight[2 + axis, tap[0], tap[1], tap[2], 0] = -1.0 / silu_of_norm
            last.conv1.bias[2 + axis] = 1.5
            last.conv2.weight[2 + axis, 1, 1, 1, 2 + axis] = 100.0
        last.conv1.bias[5], last.conv1.bias[6] = 10.0, -10.0  # keeps LayerNorm's scale steady
        fdg.output_layer.weight.zero_()
        fdg.output_layer.bias.zero_()  # dual vertices at voxel centres, constant split weights
        for axis in range(3):
            fdg.output_layer.weight[3 + axis, 2 + axis] = 1.0
    saved["shape_slat_decoder"] = save_model(folder, "shape_dec", fdg, "FlexiDualGridVaeDecoder", fdg_args)

    # Texture decoder: random; it follows the shape decoder's subdivisions (guide_subs), as the real one does
    # with channel-to-space up blocks, so every surface voxel gets base colour, metallic, roughness and alpha.
    tex_dec_args = {"out_channels": 6, "model_channels": [width] * levels, "latent_channels": 8,
                    "num_blocks": [0] * (levels - 1) + [1], "block_type": ["SparseResBlock3d"] * levels,
                    "up_block_type": ["SparseResBlockC2S3d"] * (levels - 1), "block_args": [{}] * levels,
                    "pred_subdiv": False}
    tex_dec = models.SparseUnetVaeDecoder(**tex_dec_args)
    saved["tex_slat_decoder"] = save_model(folder, "tex_dec", tex_dec, "SparseUnetVaeDecoder", tex_dec_args)

    def sampler(steps: int) -> dict:
        return {"name": "FlowEulerGuidanceIntervalSampler", "args": {"sigma_min": 1e-5},
                "params": {"steps": steps, "guidance_strength": 3.0, "guidance_rescale": 0.5,
                           "guidance_interval": [0.6, 1.0], "rescale_t": 3.0}}

    norm = {"mean": [0.0] * 8, "std": [1.0] * 8}
    pipeline = {"name": "Trellis2ImageTo3DPipeline", "args": {
        "models": saved,
        "sparse_structure_sampler": sampler(8), "shape_slat_sampler": sampler(8), "tex_slat_sampler": sampler(8),
        "shape_slat_normalization": norm, "tex_slat_normalization": norm,
        "image_cond_model": {"name": "DinoV3FeatureExtractor", "args": {"model_name": str(folder / "dino")}},
        "rembg_model": {"name": "BiRefNet", "args": {"model_name": str(folder / "rembg")}},
        "low_vram": False, "default_pipeline_type": "512"}}
    (folder / "pipeline.json").write_text(json.dumps(pipeline, indent=1))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"folder": str(folder), "bytes": size, "conv_axis_to_kernel_dim": axis_dim,
            "models": sorted(saved)}


def dinov3_compat() -> dict:
    """TRELLIS.2's DinoV3FeatureExtractor walks `model.layer`; newer transformers keep the layers under
    `model.model.layer`. Say which this transformers does, and alias it where it is missing (said so)."""
    import transformers
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    info = {"transformers": transformers.__version__}
    probe = DINOv3ViTModel(DINOv3ViTConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                           num_attention_heads=2, patch_size=16, image_size=32))
    if hasattr(probe, "layer"):
        info["layer"] = "model.layer exists, as TRELLIS.2 expects"
        return info
    original = DINOv3ViTModel.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        # A plain attribute (not a registered submodule): the same layers under the name TRELLIS.2 reads.
        object.__setattr__(self, "layer", self.model.layer)

    DINOv3ViTModel.__init__ = init
    info["layer"] = ("INCOMPATIBLE: DINOv3ViTModel has no .layer in this transformers (it is .model.layer); "
                     "TRELLIS.2's DinoV3FeatureExtractor.extract_features fails on it; aliased for this run")
    return info


def sample_image(path: Path) -> Path:
    """A cut-out picture with transparency (so no background model runs): a red cylinder-like shape."""
    import numpy as np
    from PIL import Image

    size = 256
    yy, xx = np.mgrid[0:size, 0:size]
    rgba = np.zeros((size, size, 4), np.uint8)
    inside = (np.abs(xx - size / 2) < size * 0.3) & (np.abs(yy - size / 2) < size * 0.38)
    rgba[inside] = (180, 60, 40, 255)
    rgba[inside & (np.abs(yy - size / 2) < 6)] = (40, 40, 40, 255)
    Image.fromarray(rgba).save(path)
    return path


def chain(api, name: str, generator: str, images: list[Path], views: str, options: dict, work: Path) -> dict:
    """generate -> postprocess -> bake (CUDA) -> export (UE5) through the server's API; figures of each stage."""
    figures = {}
    started = time.perf_counter()
    record, glb = api.generate([str(p) for p in images], name=name, generator=generator, views=views,
                               preset="prop_UE5_standard", seed=1, options=json.dumps(options))
    record = json.loads(record)
    figures["generate_s"] = round(time.perf_counter() - started, 2)
    figures["high_poly"] = record.get("mesh", {})
    asset_id = record["asset_id"]
    started = time.perf_counter()
    api.postprocess(asset_id, json.dumps({"target_triangles": 3000, "texture_size": 1024, "max_hulls": 4}))
    figures["postprocess_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    baked = json.loads(api.bake(asset_id, json.dumps({"engine": os.environ.get("O3F_CHECK_BAKE_ENGINE", "cuda"), "texture_size": 1024, "ao_samples": 16})))
    figures["bake_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    _, zip_path = api.export(asset_id, "ue5")
    figures["export_s"] = round(time.perf_counter() - started, 2)
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read(next(n for n in names if n.endswith("manifest.json"))))
    figures["zip"] = {"file": Path(zip_path).name, "bytes": Path(zip_path).stat().st_size, "files": names}
    figures["manifest_keys"] = sorted(manifest)[:40]
    figures["stages"] = [_stage_summary(run) for run in baked.get("stages", [])]
    (work / f"{name}_record.json").write_text(json.dumps(baked, indent=1, default=str))
    return figures


def _stage_summary(run: dict) -> dict:
    """One stage run of the asset record, without its parameters and outputs."""
    keep = ("stage", "status", "wall_seconds", "gpu_seconds", "gpu_charged_seconds", "stats", "error")
    summary = {k: run[k] for k in keep if k in run}
    if run.get("stage") == "bake":
        summary["parameters"] = run.get("parameters")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/o3f-check"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--trellis2-src", type=Path, default=None, help="folder holding trellis2/ (pinned tree)")
    parser.add_argument("--trellis-src", type=Path, default=None, help="folder holding trellis/ (TRELLIS v1)")
    parser.add_argument("--only", default="", help="comma-separated words: run only the steps whose names hold one "
                                                    "(e.g. imports,hunyuan,custom_rasterizer)")
    args = parser.parse_args()
    SELECTED.extend(word for word in args.only.split(",") if word)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    for source in (args.trellis2_src, args.trellis_src):
        if source:
            sys.path.insert(0, str(source))
    os.environ.setdefault("O3F_WORKSPACE", str(work / "workspace"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    RESULTS["machine"] = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    log(json.dumps(RESULTS["machine"]))

    @step("attention")
    def _():
        return choose_attention()

    @step("imports")
    def _():
        found = {}
        for module in ("flex_gemm", "cumesh", "o_voxel", "nvdiffrast.torch", "xformers", "trellis2.pipelines",
                       "hy3dgen.shapegen", "custom_rasterizer", "transformers", "diffusers", "pymeshlab", "mujoco",
                       "cupy"):
            try:
                imported = __import__(module, fromlist=["_"])
                found[module] = {"ok": True, "version": version_of(module.split(".")[0]),
                                 "file": str(getattr(imported, "__file__", ""))}
            except Exception as exc:  # noqa: BLE001
                found[module] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
        return found

    @step("flex_gemm algorithm")
    def _():
        # TRELLIS.2 defaults to masked_implicit_gemm_splitk (Triton kernels, autotuned per shape: minutes on a
        # new machine for new shapes); O3F_CHECK_FLEX_GEMM_ALGO=explicit_gemm (gather + matmul) keeps this
        # check within its time on the lent machine. The neighbour maps come from flex_gemm's CUDA kernels.
        from trellis2.modules.sparse.conv import config

        chosen = os.environ.get("O3F_CHECK_FLEX_GEMM_ALGO", config.FLEX_GEMM_ALGO)
        default, config.FLEX_GEMM_ALGO = config.FLEX_GEMM_ALGO, chosen
        return {"trellis2_default": default, "used": chosen}

    @step("dinov3 layer names")
    def _():
        return dinov3_compat()

    weights = work / "trellis2_tiny"

    @step("trellis2 tiny weights")
    def _():
        return write_tiny_trellis2(weights)

    try:
        from server.api import ForgeApi
        from server.generators import registry
    except Exception:  # noqa: BLE001 - without the server nothing below can run; say why and stop
        traceback.print_exc()
        RESULTS["server_import"] = traceback.format_exc()
        if args.json:
            args.json.write_text(json.dumps(RESULTS, indent=1, default=str))
        return 1

    picture = sample_image(work / "front.png")

    @step("trellis2 health")
    def _():
        os.environ["O3F_TRELLIS2_WEIGHTS"] = str(weights)
        # The tiny pipeline loads nothing gated; the adapter only checks that a token is configured.
        os.environ.setdefault("HF_TOKEN", "unused-by-the-tiny-pipeline")
        return {g["name"]: g for g in registry.report()}.get("trellis2")

    @step("trellis2 chain (adapter, postprocess, CUDA bake, UE5 zip)")
    def _():
        api = ForgeApi()
        return chain(api, "Trellis2Tiny", "trellis2", [picture], "front",
                     {"quality": "fast", "background": "alpha"}, work)

    @step("trellis2 second run, same process (pipeline held)")
    def _():
        from server.generators import trellis2 as adapter
        from server.generators.base import GenerationRequest
        import numpy as np
        from PIL import Image

        rgba = np.asarray(Image.open(picture).convert("RGBA"))
        started = time.perf_counter()
        result = adapter.Trellis2Generator().generate(GenerationRequest({"front": rgba}, seed=2,
                                                                         settings={"quality": "fast"}))
        return {"seconds": round(time.perf_counter() - started, 2), "faces": len(result.mesh.faces),
                "voxels": result.info.get("voxels"), "gpu_seconds": result.info.get("gpu_seconds"),
                "watertight": bool(result.mesh.is_watertight)}

    @step("hunyuan3d-2 tiny weights")
    def _():
        sys.path.insert(0, str(ROOT / "tests"))
        import tests.test_hunyuan as th

        root = work / "hunyuan_tiny"
        if not root.exists():
            th._write_tiny_model(root / "hunyuan3d-dit-v2-0", multiview=False, seed=1)
            th._write_tiny_model(root / "hunyuan3d-dit-v2-0-turbo", multiview=False, seed=2)
            th._write_tiny_vae(root / "hunyuan3d-vae-v2-0-turbo", seed=3)
            th._write_tiny_model(root / "hunyuan3d-dit-v2-mv", multiview=True, seed=4)
        os.environ["O3F_HUNYUAN_WEIGHTS"] = str(root)
        return {"folder": str(root), "health": {g["name"]: g for g in registry.report()}.get("hunyuan3d-2")}

    @step("hunyuan3d-2 chain on CUDA (one view)")
    def _():
        api = ForgeApi()
        return chain(api, "HunyuanTiny", "hunyuan3d-2", [picture], "front",
                     {"steps": 2, "octree_resolution": 64, "target_faces": 2000, "background": "alpha"}, work)

    @step("hunyuan3d-2mv chain on CUDA (front, left, back)")
    def _():
        api = ForgeApi()
        return chain(api, "HunyuanMvTiny", "hunyuan3d-2", [picture, picture, picture], "front,left,back",
                     {"steps": 2, "octree_resolution": 64, "target_faces": 2000, "background": "alpha"}, work)

    @step("custom_rasterizer (Hunyuan3D-Paint's rasteriser)")
    def _():
        import custom_rasterizer as cr

        vertices = torch.tensor([[[-0.5, -0.5, 0.5, 1.0], [0.5, -0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0]]],
                                device="cuda")
        faces = torch.tensor([[0, 1, 2]], dtype=torch.int32, device="cuda")
        findices, barycentric = cr.rasterize(vertices, faces, (64, 64))
        covered = int((findices > 0).sum())
        return {"covered_pixels": covered, "of": 64 * 64,
                "paint": "not run: Hunyuan3D-Paint needs its delight and paint diffusion pipelines (tokenizers, "
                         "UNet2.5D); this script writes no tiny weights for them"}

    @step("trellis (v1) import")
    def _():
        os.environ.setdefault("SPCONV_ALGO", "native")
        import trellis.pipelines  # noqa: F401

        return {"imported": True}

    RESULTS["cuda_max_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=1, default=str))
    log("\n=== summary")
    for name, outcome in RESULTS["steps"].items():
        log(f"{'ok  ' if outcome['ok'] else 'FAIL'} {outcome['seconds']:7.1f} s  {name}"
            + ("" if outcome["ok"] else f"  ({outcome['error'][:200]})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
