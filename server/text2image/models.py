"""The diffusers models behind text to image and hidden-side painting: what each needs, whether it can run
here (and why not), and the code that loads its real weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import gpu
from ..errors import ForgeError, InputError
from ..generators.base import DOWNLOAD_ENV, cached_on_hub, hf_token, library_present, weights_source

CPU_ENV = "O3F_ALLOW_CPU_MODELS"  # "1": run on the CPU where there is no GPU (slow; for tests)
INSTALL_HINT = "pip install diffusers transformers accelerate torch"
MARKER = "model_index.json"  # every diffusers pipeline folder has one


@dataclass(frozen=True)
class ModelSpec:
    """One diffusers pipeline: its weights, how it is called, its limits, its licence and GPU cost."""

    name: str
    title: str
    repo: str
    pipeline: str              # the diffusers class that loads model_index.json
    family: str                # flux, sdxl, sd3 or sdxl-inpaint: which call arguments apply
    weights_env: str           # a local folder with the pipeline (model_index.json and its subfolders)
    steps: int                 # the model card's step count
    guidance: float            # 0 for the distilled models (no classifier-free guidance, no negative prompt)
    size: int                  # the model card's square output size
    size_multiple: int         # width and height must be multiples of this
    token_limit: int           # what the prompt-bearing text encoder reads
    tokenizer: str             # the subfolder of the tokenizer that token_limit is about
    licence: str
    gated: bool = False        # the Hub asks to accept the licence first (an HF token downloads it)
    dtype: str = "bfloat16"    # on CUDA; the CPU runs float32
    variant: str | None = None  # the reduced-precision file variant published beside the full weights
    max_sequence_length: int | None = None  # passed to T5-based pipelines
    step_s: float = 1.0        # GPU seconds per denoising step at size x size (one picture)
    fixed_s: float = 2.0       # GPU seconds for text encoding and decoding at size x size (one picture)

    def seconds(self, steps: int, width: int, height: int, images: int = 1) -> float:
        """The GPU seconds one call asks for: ZeroGPU's start-up, then steps and decoding scaled by pixels."""
        scale = (width * height) / float(self.size * self.size)
        return gpu.START_UP_S + images * (self.fixed_s + steps * self.step_s) * max(scale, 0.25)


# Per-step and fixed seconds: twice what one H100 took (diffusers 0.42.1, torch 2.11 cu130, each pipeline at its
# real size with random weights, warm; vendor/*.toml [gpu]), since ZeroGPU's half RTX Pro 6000 is slower; the
# 5 s start-up of gpu.START_UP_S covers a new process's first call (FLUX: 3.6 s there against 0.83 s warm).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (
        ModelSpec("flux-schnell", "FLUX.1 [schnell] (Black Forest Labs)", "black-forest-labs/FLUX.1-schnell",
                  "FluxPipeline", "flux", "O3F_FLUX_WEIGHTS", steps=4, guidance=0.0, size=1024, size_multiple=16,
                  token_limit=256, tokenizer="tokenizer_2", licence="Apache-2.0", max_sequence_length=256,
                  step_s=0.35, fixed_s=0.3),
        ModelSpec("sdxl-turbo", "SDXL-Turbo (Stability AI)", "stabilityai/sdxl-turbo",
                  "StableDiffusionXLPipeline", "sdxl", "O3F_SDXL_TURBO_WEIGHTS", steps=1, guidance=0.0, size=512,
                  size_multiple=8, token_limit=77, tokenizer="tokenizer",
                  licence="Stability AI Non-Commercial Research Community License (sai-nc-community): "
                          "non-commercial use only",
                  dtype="float16", variant="fp16", step_s=0.25, fixed_s=0.2),
        # SD3.5 was not measured: FLUX's figures for Large (8B against 12B), less for Medium (2.5B).
        ModelSpec("sd3.5-large-turbo", "Stable Diffusion 3.5 Large Turbo (Stability AI)",
                  "stabilityai/stable-diffusion-3.5-large-turbo", "StableDiffusion3Pipeline", "sd3",
                  "O3F_SD35_LARGE_TURBO_WEIGHTS", steps=4, guidance=0.0, size=1024, size_multiple=16,
                  token_limit=256, tokenizer="tokenizer_3",
                  licence="Stability AI Community License: free below USD 1M annual revenue, an enterprise "
                          "licence above", gated=True, max_sequence_length=256, step_s=0.35, fixed_s=0.3),
        ModelSpec("sd3.5-medium", "Stable Diffusion 3.5 Medium (Stability AI)",
                  "stabilityai/stable-diffusion-3.5-medium", "StableDiffusion3Pipeline", "sd3",
                  "O3F_SD35_MEDIUM_WEIGHTS", steps=40, guidance=4.5, size=1024, size_multiple=16,
                  token_limit=256, tokenizer="tokenizer_3",
                  licence="Stability AI Community License: free below USD 1M annual revenue, an enterprise "
                          "licence above", gated=True, max_sequence_length=256, step_s=0.15, fixed_s=0.3),
    )
}
DEFAULT_MODEL = "flux-schnell"
AUTO_ORDER = ("flux-schnell", "sd3.5-large-turbo", "sdxl-turbo", "sd3.5-medium")  # free licences first

INPAINT = ModelSpec("sdxl-inpaint", "SDXL 1.0 Inpainting 0.1 (Hugging Face diffusers)",
                    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "StableDiffusionXLInpaintPipeline",
                    "sdxl-inpaint", "O3F_SDXL_INPAINT_WEIGHTS", steps=20, guidance=8.0, size=1024, size_multiple=8,
                    token_limit=77, tokenizer="tokenizer", licence="CreativeML Open RAIL++-M",
                    dtype="float16", variant="fp16", step_s=0.08, fixed_s=0.5)


def cuda_present() -> bool:
    if gpu.on_zero_gpu():
        return True
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def runtime_status() -> tuple[bool, str]:
    """Whether diffusers can run here (weights aside), and on what: CUDA, or the CPU where allowed."""
    for module, what in (("diffusers", "diffusers"), ("transformers", "transformers"), ("torch", "PyTorch")):
        if not library_present(module):
            return False, f"{what} is not installed ({INSTALL_HINT})"
    if cuda_present():
        return True, "CUDA"
    if os.environ.get(CPU_ENV) == "1":
        return True, f"the CPU ({CPU_ENV}=1: slow, for tests)"
    return False, f"no CUDA GPU on this server ({CPU_ENV}=1 allows the CPU, for tests)"


def device() -> str:
    return "cuda" if cuda_present() else "cpu"


def source_of(spec: ModelSpec) -> tuple[str | None, str]:
    """(what from_pretrained loads: a local folder or the Hub repository, how it was found), or (None, why
    there are no weights). Nothing is downloaded unless O3F_DOWNLOAD_WEIGHTS=1."""
    source, how = weights_source(spec.weights_env, spec.repo, MARKER)
    if source == spec.repo and spec.gated and not cached_on_hub(spec.repo, MARKER) and not hf_token():
        return None, f"{spec.repo} is gated: accept its licence on the Hub and set HF_TOKEN to download it"
    return source, how


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """(True, what it will run on and from where) or (False, why it cannot run here); the licence is named."""
    ready, where = runtime_status()
    if not ready:
        return False, f"{where}. Licence: {spec.licence}"
    source, how = source_of(spec)
    if source is None:
        return False, f"{how}. Licence: {spec.licence}"
    return True, f"on {where}: {how}. Licence: {spec.licence}"


def report() -> list[dict]:
    """One row per text-to-image model (for health): name, title, repo, licence, available, reason."""
    rows = []
    for spec in MODELS.values():
        available, reason = availability(spec)
        rows.append({"name": spec.name, "title": spec.title, "repo": spec.repo, "licence": spec.licence,
                     "available": available, "reason": reason})
    return rows


def choose(name: str = "auto") -> tuple[ModelSpec, str]:
    """The model to run and its weights source: `name`, or with 'auto' the first of AUTO_ORDER that can run.
    An unknown name is an InputError; a model that cannot run here is a ForgeError that says why."""
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER:
            spec = MODELS[candidate]
            available, reason = availability(spec)
            if available:
                return spec, source_of(spec)[0]
            reasons.append(f"{candidate}: {reason}")
        raise ModelUnavailable("no text-to-image model can run on this server; " + "; ".join(reasons))
    if not isinstance(name, str) or name not in MODELS:
        raise InputError("options.model", name, f"'auto' or one of {', '.join(MODELS)}")
    spec = MODELS[name]
    available, reason = availability(spec)
    if not available:
        raise ModelUnavailable(f"text-to-image model {name} cannot run on this server: {reason}")
    return spec, source_of(spec)[0]


class ModelUnavailable(ForgeError):
    """No model to run: nothing is generated and nothing pretends (the message says what is missing)."""


def _variant(spec: ModelSpec, source: str) -> str | None:
    """The reduced-precision variant where its files are there (a local folder may hold only full weights)."""
    if spec.variant is None:
        return None
    folder = Path(source)
    if folder.is_dir():
        return spec.variant if any(folder.glob(f"*/*.{spec.variant}.safetensors")) else None
    return spec.variant


def load_pipeline(spec: ModelSpec, source: str, where: str):
    """The diffusers pipeline with its real weights from `source` (a folder, or the repository in the Hugging
    Face cache; downloaded only with O3F_DOWNLOAD_WEIGHTS=1), in bfloat16/float16 on CUDA, float32 on the CPU."""
    import diffusers
    import torch

    pipeline_class = getattr(diffusers, spec.pipeline)
    dtype = getattr(torch, spec.dtype) if where == "cuda" else torch.float32
    kwargs = {_dtype_argument(): dtype}
    if where == "cuda" and _variant(spec, source):
        kwargs["variant"] = spec.variant
    if not Path(source).is_dir():
        kwargs["local_files_only"] = os.environ.get(DOWNLOAD_ENV) != "1"
        if spec.gated and hf_token():
            kwargs["token"] = hf_token()
    pipeline = pipeline_class.from_pretrained(source, **kwargs)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(where)


def _dtype_argument() -> str:
    """diffusers took `dtype` in place of `torch_dtype` in 2026 (huggingface/diffusers#14205; the old name warns
    until 1.0); older releases know only `torch_dtype`. The deprecation's message marks the newer ones."""
    import importlib

    try:
        deprecation = importlib.import_module("diffusers.utils.deprecation_utils")
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def model_key(spec: ModelSpec, source: str, where: str) -> str:
    return f"diffusers:{spec.name}:{source}:{where}"
