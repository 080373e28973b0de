"""One text-to-image call on the GPU: a prompt and a seed in, an RGB picture out (ZeroGPU-ready)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import gpu
from ..generators.modelhost import MODEL_HOST
from .models import MODELS, choose, device, load_pipeline, model_key


@dataclass(frozen=True)
class ImageJob:
    """The GPU call's input: picklable CPU data only (ZeroGPU runs the call in another process)."""

    model: str
    source: str
    device: str
    prompt: str
    negative: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int

    @property
    def spec(self):
        return MODELS[self.model]

    @property
    def key(self) -> str:
        return model_key(self.spec, self.source, self.device)


def pipeline_for(job: ImageJob):
    """The loaded pipeline (loaded once, outside any GPU call; the model host keeps one model at a time)."""
    return MODEL_HOST.get(job.key, partial(load_pipeline, job.spec, job.source, job.device))


def preload(name: str = "auto") -> str:
    """Load the text-to-image model now and keep it for good (a Space at start-up: weights load outside any GPU
    call and stay beside the pinned image-to-3D models); says what was loaded. ModelUnavailable says why not."""
    spec, source = choose(name)
    where = device()
    MODEL_HOST.pin(model_key(spec, source, where), partial(load_pipeline, spec, source, where))
    return f"{spec.title} loaded from {source} on {where}"


def call_arguments(job: ImageJob) -> dict:
    """The pipeline's keyword arguments for this model family: the negative prompt only where guidance uses
    it (the distilled models run without classifier-free guidance), T5's sequence length where there is one."""
    spec = job.spec
    arguments = {"prompt": job.prompt, "num_inference_steps": job.steps, "guidance_scale": job.guidance,
                 "width": job.width, "height": job.height, "output_type": "np"}
    if spec.max_sequence_length is not None:
        arguments["max_sequence_length"] = spec.max_sequence_length
    if spec.family in ("sdxl", "sd3") and job.guidance > 1.0:
        arguments["negative_prompt"] = job.negative
    return arguments


def image_seconds(job: ImageJob) -> float:
    return job.spec.seconds(job.steps, job.width, job.height)


@gpu.gpu_task(duration=image_seconds)
def generate_image(job: ImageJob) -> tuple[np.ndarray, float]:
    """(RGB uint8 picture, seconds the call took). The seed drives a CPU generator, so a seed gives the same
    starting noise on every device."""
    import torch

    started = time.perf_counter()
    pipeline = pipeline_for(job)
    generator = torch.Generator(device="cpu").manual_seed(int(job.seed))
    images = pipeline(generator=generator, **call_arguments(job)).images
    picture = np.clip(np.rint(np.asarray(images[0], np.float32) * 255.0), 0, 255).astype(np.uint8)
    if job.device == "cuda":
        torch.cuda.empty_cache()
    return picture, time.perf_counter() - started
