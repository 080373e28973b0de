"""Text to image for image-to-3D: expand the prompt, generate, gate, retry with the next seed, or refuse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .. import gpu
from ..errors import InputError, RefusedInput
from .expand import ExpandedPrompt, expand_prompt
from .gate import GateSettings, check_background
from .generate import ImageJob, generate_image, image_seconds, pipeline_for
from .instruct import describer
from .models import ModelSpec, choose, device
from .prompt import check_prompt
from .tokens import load_counter

MAX_ATTEMPTS = 3
OPTION_KEYS = ("model", "seed", "attempts", "size", "steps", "expander")
MAX_SEED = 2**32 - 1


class ImagesRefused(RefusedInput):
    """Every seed tried gave a picture the gate refused: the reasons are in the message, the pictures in
    `images` (RGB uint8, in the order tried) and the whole run in `record`."""

    def __init__(self, message: str, images: list[np.ndarray], record: dict):
        super().__init__(message)
        self.images = images
        self.record = record


@dataclass(frozen=True)
class TextSettings:
    """Checked options of text_to_image (see its docstring)."""

    model: str = "auto"
    seed: int = 0
    attempts: int = MAX_ATTEMPTS
    size: int | None = None
    steps: int | None = None
    expander: str = "template"


def _whole(options: dict, key: str, default, low: int, high: int):
    value = options.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or not low <= value <= high:
        raise InputError(f"options.{key}", value, f"a whole number from {low} to {high}")
    return int(value)


def check_options(options: dict | None) -> TextSettings:
    """Every option checked by name before any work; unknown keys are refused, not ignored."""
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise InputError("options", type(options).__name__, "a JSON object of text-to-image options")
    for key in options:
        if key not in OPTION_KEYS:
            raise InputError("options", key, f"only these keys: {', '.join(OPTION_KEYS)}")
    model = options.get("model", "auto")
    if not isinstance(model, str):
        raise InputError("options.model", model, "a model name (a string)")
    expander = options.get("expander", "template")
    if expander not in ("template", "instruct"):
        raise InputError("options.expander", expander, "'template' or 'instruct'")
    return TextSettings(model, _whole(options, "seed", 0, 0, MAX_SEED),
                        _whole(options, "attempts", MAX_ATTEMPTS, 1, MAX_ATTEMPTS),
                        _whole(options, "size", None, 16, 2048), _whole(options, "steps", None, 1, 100), expander)


def _size(spec: ModelSpec, size: int | None) -> int:
    size = spec.size if size is None else size
    if size % spec.size_multiple or size < 2 * spec.size_multiple:
        raise InputError("options.size", size, f"a multiple of {spec.size_multiple} from {2 * spec.size_multiple} "
                                               f"to 2048 for {spec.name}")
    return size


def plan(prompt: str, options: dict | None = None) -> tuple[ExpandedPrompt, ImageJob, TextSettings]:
    """Everything checked and decided before any GPU work: the expanded prompt and the first attempt's job."""
    text = check_prompt(prompt)
    settings = check_options(options)
    spec, source = choose(settings.model)
    size = _size(spec, settings.size)
    chosen = describer(settings.expander)
    expanded = expand_prompt(text, token_limit=spec.token_limit, counter=load_counter(source, spec.tokenizer),
                             describer=chosen)
    job = ImageJob(spec.name, source, device(), expanded.prompt, expanded.negative, settings.seed,
                   settings.steps or spec.steps, spec.guidance, size, size)
    return expanded, job, settings


def gpu_estimate(prompt: str, options: dict | None = None) -> float:
    """GPU seconds the first attempt asks for (each retry asks as much again, and is checked before it runs)."""
    _, job, _ = plan(prompt, options)
    return image_seconds(job)


def text_to_image(prompt: str, options: dict | None = None, *,
                  progress: Callable[[float, str], None] | None = None,
                  check_cancelled: Callable[[], None] | None = None,
                  quota_left_s: float | None = None,
                  gate: GateSettings = GateSettings()) -> tuple[np.ndarray, dict]:
    """A concept picture for image-to-3D from a prompt: (RGB uint8 image, record).

    options: model ('auto' = the first that can run of flux-schnell, sd3.5-large-turbo, sdxl-turbo,
    sd3.5-medium), seed (0), attempts (1 to 3, default 3), size (the model's: 1024, SDXL-Turbo 512), steps
    (the model's), expander ('template' or 'instruct'). Each attempt uses the next seed; the first picture the
    clean-background gate passes is returned. When none passes, ImagesRefused carries the reasons, the
    pictures and the record. With quota_left_s, an attempt whose GPU request does not fit what is left is
    refused (gpu.QuotaExceeded) before it runs. The record holds the expanded prompt, the model and licence,
    every seed tried with its gate verdict, and the GPU seconds measured and to charge.
    """
    report = progress or (lambda fraction, message: None)
    cancelled = check_cancelled or (lambda: None)
    expanded, first, settings = plan(prompt, options)
    spec = first.spec
    record = {"prompt": expanded.record(), "model": spec.name, "title": spec.title, "repo": spec.repo,
              "licence": spec.licence, "device": first.device, "steps": first.steps, "guidance": first.guidance,
              "width": first.width, "height": first.height, "seed": None, "attempts": [],
              "gpu_seconds": 0.0, "gpu_charge_s": 0.0}
    images: list[np.ndarray] = []
    for attempt in range(settings.attempts):
        cancelled()
        job = replace(first, seed=(settings.seed + attempt) % (MAX_SEED + 1))
        estimate = image_seconds(job)
        if quota_left_s is not None:
            gpu.check_quota(estimate, quota_left_s - record["gpu_charge_s"],
                            f"text to image ({spec.name}, seed {job.seed})")
        if attempt == 0:
            report(0.05, f"loading {spec.title}")
            pipeline_for(first)  # outside the GPU call: ZeroGPU keeps the weights in the parent process
        report(0.1 + 0.8 * attempt / settings.attempts, f"{spec.name}: seed {job.seed} "
                                                         f"(attempt {attempt + 1} of {settings.attempts})")
        image, seconds = generate_image(job)
        record["gpu_seconds"] = round(record["gpu_seconds"] + seconds, 3)
        record["gpu_charge_s"] = round(record["gpu_charge_s"] + gpu.charged_seconds(seconds, estimate), 3)
        verdict = check_background(image, gate)
        record["attempts"].append({"seed": job.seed, "gate": verdict.record(), "gpu_seconds": round(seconds, 3)})
        images.append(image)
        if verdict.passed:
            record["seed"] = job.seed
            report(1.0, f"seed {job.seed} passed the gate: {verdict.reason}")
            return image, record
    reasons = "; ".join(f"seed {entry['seed']}: {entry['gate']['reason']}" for entry in record["attempts"])
    raise ImagesRefused(f"text to image: none of {len(images)} pictures from {spec.name} passed the "
                        f"clean-background gate ({reasons}). Try another prompt or seed.", images, record)

