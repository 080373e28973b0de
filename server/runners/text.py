"""The text run: a prompt -> a concept picture that passed the clean-background gate -> the generate run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .. import gpu
from ..images import save_png
from ..jobs import Context, Progress
from ..text2image import ExpandedPrompt, ImagesRefused, text_to_image
from ..text2image.generate import image_seconds
from ..text2image.runner import plan
from .generate import GenerateJob, run_generate


def check_text(prompt: str, options: dict, ctx: Context) -> ExpandedPrompt:
    """Everything about the text step that can be refused before an asset exists: the prompt, its options, the
    model this server can run (with every model's reason when none can), and today's GPU quota for one picture.
    Returns the expanded prompt (its subject names the asset when no name is given)."""
    expanded, job, _ = plan(prompt, options)
    gpu.check_quota(image_seconds(job), ctx.quota.left_today(), "text to image")
    return expanded


def run_generate_text(ctx: Context, prompt: str, text_options: dict, job: GenerateJob,
                      progress: Progress) -> tuple[dict, Path]:
    """Picture from the prompt (up to three seeds through the gate), then `job` (its images filled in) generates.

    The GPU seconds are charged to the ledger also when every picture was refused, as ZeroGPU charges them; a
    refusal leaves no asset. The asset records the expanded prompt, the seed, the model and the gate's verdicts
    under "text_to_image", and the picture as its front input.
    """
    asset_id = job.asset_id or ctx.store.new_id()
    with ctx.flags.claim(asset_id) as check:
        try:
            image, record = text_to_image(prompt, text_options, check_cancelled=check,
                                          quota_left_s=ctx.quota.left_today(),
                                          progress=lambda fraction, message: progress(0.4 * fraction, message))
        except ImagesRefused as refused:
            ctx.quota.record("generate_text (refused)", None, refused.record.get("gpu_charge_s", 0.0))
            raise
        ctx.quota.record("generate_text", asset_id, record.get("gpu_charge_s", 0.0))
        with tempfile.TemporaryDirectory(prefix="o3f-text-") as scratch:
            picture = Path(scratch) / "front.png"
            rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
            picture.write_bytes(save_png(rgba))
            job.images, job.views, job.asset_id = [picture], ["front"], asset_id
            _, glb = run_generate(ctx, job, lambda fraction, message: progress(0.4 + 0.6 * fraction, message))
        asset = ctx.store.open(asset_id, job.owner)
        asset.update(lambda stored: stored.update(text_to_image=record))
    return asset.read(), glb
