"""SDXL inpainting of rendered views on the GPU: the pictures, their masks and a prompt in, painted pictures out
(the diffusion half of hidden-side painting; server/stages/paint_hidden.py decides what to paint)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import gpu
from ..generators.modelhost import MODEL_HOST
from .models import INPAINT, ModelUnavailable, availability, device, load_pipeline, model_key, source_of

DEFAULT_PROMPT = "the same object seen from another side, matching colours and materials, seamless surface texture"
NEGATIVE_PROMPT = "background, shadow, text, watermark, seams, frame, border, blurry, low quality"


@dataclass(frozen=True)
class InpaintJob:
    """One GPU call for every view (ZeroGPU charges a start-up per call): picklable CPU data only."""

    source: str
    device: str
    images: tuple[np.ndarray, ...]   # RGB uint8, square, all the same size
    masks: tuple[np.ndarray, ...]    # bool, True where the model paints
    prompt: str
    negative: str
    strength: float
    steps: int
    guidance: float
    seed: int

    @property
    def key(self) -> str:
        return model_key(INPAINT, self.source, self.device)

    @property
    def resolution(self) -> int:
        return int(self.images[0].shape[0])


def denoising_steps(steps: int, strength: float) -> int:
    """The steps the pipeline really runs: img2img-style inpainting skips the first (1 - strength) of them."""
    return max(1, math.ceil(steps * strength))


def inpaint_seconds(job: InpaintJob) -> float:
    return INPAINT.seconds(denoising_steps(job.steps, job.strength), job.resolution, job.resolution,
                           images=len(job.images))


def inpaint_pipeline(job: InpaintJob):
    return MODEL_HOST.get(job.key, partial(load_pipeline, INPAINT, job.source, job.device))


def preload() -> str:
    """Load the inpainting model now and keep it for good (a Space at start-up, outside any GPU call)."""
    ready, reason = availability(INPAINT)
    if not ready:
        raise ModelUnavailable(f"{INPAINT.name} cannot run on this server: {reason}")
    source, where = source_of(INPAINT)[0], device()
    MODEL_HOST.pin(model_key(INPAINT, source, where), partial(load_pipeline, INPAINT, source, where))
    return f"{INPAINT.title} loaded from {source} on {where}"


@gpu.gpu_task(duration=inpaint_seconds)
def inpaint_views(job: InpaintJob) -> tuple[tuple[np.ndarray, ...], float]:
    """(painted RGB uint8 pictures in the order given, seconds the call took); view i uses seed + i."""
    import torch
    from PIL import Image

    started = time.perf_counter()
    pipeline = inpaint_pipeline(job)
    count = len(job.images)
    generators = [torch.Generator(device="cpu").manual_seed(job.seed + index) for index in range(count)]
    result = pipeline(prompt=[job.prompt] * count, negative_prompt=[job.negative] * count,
                      image=[Image.fromarray(image) for image in job.images],
                      mask_image=[Image.fromarray(mask.astype(np.uint8) * 255) for mask in job.masks],
                      height=job.resolution, width=job.resolution, strength=job.strength,
                      num_inference_steps=job.steps, guidance_scale=job.guidance, generator=generators,
                      output_type="np").images
    painted = tuple(np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)
                    for image in result)
    if job.device == "cuda":
        torch.cuda.empty_cache()
    return painted, time.perf_counter() - started
