"""Text-to-image adapters: diffusers' real FLUX, SDXL and SD3 pipelines built from tiny random-weight configs
written here, saved to a folder and loaded through our adapter; the gate, the retry loop, availability, quota
and bad input. The tiny pipelines' builders are shared with tests/test_paint_hidden.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from server import gpu
from server.errors import InputError
from server.generators import base
from server.generators.modelhost import ModelHost
from server.text2image import generate, models, runner
from server.text2image.gate import check_background
from server.text2image.generate import ImageJob, call_arguments, generate_image
from server.text2image.models import MODELS, ModelUnavailable
from server.text2image.runner import ImagesRefused, text_to_image

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-()"


def clip_tokenizer():
    """A character-level CLIP BPE (no merges) with CLIP's own pre-processing, built without any download."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for character in CHARS:
        vocab.setdefault(character, len(vocab))
        vocab.setdefault(character + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_tokenizer():
    """A character-level T5 (SentencePiece-style Unigram) tokenizer with T5's pad, end and unknown tokens."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(character, -3.0) for character in CHARS] + [("\u2581" + character, -2.5) for character in CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


def _clip_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size, projection_dim=32,
                          max_position_embeddings=77, hidden_act="gelu")


def _t5_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0,
                                   eos_token_id=1))


def _flat_vae(latent_channels: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                         latent_channels=latent_channels, norm_num_groups=1, use_quant_conv=False,
                         use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)


def tiny_flux(folder):
    """FluxPipeline: CLIP + T5 text encoders, a one-block FLUX transformer, a one-level VAE."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    clip, t5 = clip_tokenizer(), t5_tokenizer()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=(4, 4, 8))
    FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=CLIPTextModel(_clip_config(len(clip))),
                 tokenizer=clip, text_encoder_2=_t5_encoder(len(t5)), tokenizer_2=t5, transformer=transformer,
                 vae=_flat_vae(1)).save_pretrained(folder)
    return folder


def _drawing_vae(size: int, colour: tuple[float, float, float]):
    """A one-level VAE whose decoder ignores the latents and draws a square of `colour` on white, `size` pixels
    wide: the only weights that way are chosen by hand, so a tiny pipeline makes a picture the gate can pass.

    The latents are cut off (conv_in's weights are zero; its bias puts 1 in channel 0). Each resnet adds a box blur
    of that channel, and the blur's zero padding makes the field lower near the picture's edges: it is the same
    value everywhere more than 8 pixels in, and smaller within them. conv_out turns "the interior value" into
    `colour` and anything a little below it into saturated white.
    """
    import torch

    vae = _flat_vae(1)
    decoder = vae.decoder
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.zero_()
        decoder.conv_in.bias[0] = 1.0
        box = torch.full((3, 3), 1.0 / 9.0)
        for block in (*decoder.mid_block.resnets, *decoder.up_blocks[0].resnets):
            block.norm1.weight.fill_(1.0)
            block.norm2.weight.fill_(1.0)
            block.conv1.weight[0, 0] = box
            block.conv2.weight[0, 0] = box * 0.5
        decoder.conv_norm_out.weight.fill_(1.0)
        field = decoder.conv_in(torch.zeros(1, 1, size, size))
        field = decoder.mid_block(field)
        field = decoder.up_blocks[0](field)
        interior = float(decoder.conv_act(decoder.conv_norm_out(field))[0, 0, size // 2, size // 2])
        gain = 1.0e4  # 1e-3 below the interior value is already white
        for channel, value in enumerate(colour):
            decoder.conv_out.weight[channel, 0, 1, 1] = -gain
            decoder.conv_out.bias[channel] = (2.0 * value - 1.0) + gain * interior
    return vae


def tiny_flux_that_draws(folder, size: int = 64, colour=(0.8, 0.45, 0.15)):
    """tiny_flux with _drawing_vae: its pictures (at `size`) show one square object on white, whatever the seed."""
    import torch
    from diffusers import FluxPipeline

    tiny_flux(folder)
    pipeline = FluxPipeline.from_pretrained(folder, dtype=torch.float32)
    pipeline.vae = _drawing_vae(size, colour)
    pipeline.save_pretrained(folder)
    return folder


def tiny_sdxl(folder, inpaint: bool = False):
    """StableDiffusionXLPipeline (or the inpainting one, whose UNet takes 9 channels: latents, mask, masked
    image) with two CLIP text encoders, a two-level UNet and a two-level VAE."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(1)
    clip = clip_tokenizer()
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16,
                                in_channels=9 if inpaint else 4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        latent_channels=4, norm_num_groups=8, sample_size=32)
    pipeline_class = StableDiffusionXLInpaintPipeline if inpaint else StableDiffusionXLPipeline
    pipeline_class(vae=vae, text_encoder=CLIPTextModel(_clip_config(len(clip))), tokenizer=clip,
                   text_encoder_2=CLIPTextModelWithProjection(_clip_config(len(clip))), tokenizer_2=clip_tokenizer(),
                   unet=unet, scheduler=EulerDiscreteScheduler(timestep_spacing="trailing")).save_pretrained(folder)
    return folder


def tiny_sd3(folder):
    """StableDiffusion3Pipeline: two CLIP encoders with projection and a T5, a one-layer MMDiT, a flat VAE."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(2)
    clip, t5 = clip_tokenizer(), t5_tokenizer()
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=32, pooled_projection_dim=64, out_channels=4)
    StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                             vae=_flat_vae(4), text_encoder=CLIPTextModelWithProjection(_clip_config(len(clip))),
                             tokenizer=clip, text_encoder_2=CLIPTextModelWithProjection(_clip_config(len(clip))),
                             tokenizer_2=clip_tokenizer(), text_encoder_3=_t5_encoder(len(t5)),
                             tokenizer_3=t5).save_pretrained(folder)
    return folder


def clean_render(size: int = 64) -> np.ndarray:
    """A shaded sphere on white, clear of the edges: what a good concept picture looks like to the gate."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    nx, ny = (x - size / 2) / (size * 0.3), (y - size / 2) / (size * 0.3)
    inside = nx**2 + ny**2 <= 1
    shade = np.clip(0.3 + 0.7 * (-0.4 * nx - 0.5 * ny + 0.77 * np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))), 0, 1)
    image = np.full((size, size, 3), 255.0)
    image[inside] = np.array([200.0, 120.0, 40.0]) * shade[inside, None]
    return image.astype(np.uint8)


@pytest.fixture(scope="module")
def diffusers_ready():
    pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")
    pytest.importorskip("diffusers", reason="diffusers is not installed (pip install diffusers transformers)")
    pytest.importorskip("transformers", reason="transformers is not installed")


@pytest.fixture(scope="module")
def flux_folder(diffusers_ready, tmp_path_factory):
    return tiny_flux(tmp_path_factory.mktemp("tiny_flux"))


@pytest.fixture
def host(monkeypatch):
    """A fresh model host, so each test sees its own loads."""
    fresh = ModelHost()
    monkeypatch.setattr(generate, "MODEL_HOST", fresh)
    return fresh


@pytest.fixture
def no_hub(monkeypatch):
    """No weights in the Hugging Face cache, no download, no GPU; the CPU allowed."""
    monkeypatch.setattr(base, "cached_on_hub", lambda repo, filename: False)
    monkeypatch.setattr(models, "cached_on_hub", lambda repo, filename: False)
    monkeypatch.setattr(models, "cuda_present", lambda: False)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(base, "hf_token", lambda: None)
    monkeypatch.setattr(models, "hf_token", lambda: None)
    for spec in (*MODELS.values(), models.INPAINT):
        monkeypatch.delenv(spec.weights_env, raising=False)
    monkeypatch.setenv(models.CPU_ENV, "1")


@pytest.fixture
def flux_here(no_hub, flux_folder, monkeypatch, host):
    monkeypatch.setenv(MODELS["flux-schnell"].weights_env, str(flux_folder))
    return flux_folder


def test_flux_schnell_runs_on_the_cpu_and_the_gate_refuses_its_noise_three_times(flux_here, host):
    prompt = "a wooden barrel with iron bands"
    with pytest.raises(ImagesRefused) as refused:
        text_to_image(prompt, {"model": "flux-schnell", "size": 32, "seed": 7})
    error = refused.value
    record = error.record
    # Three attempts, the next seed each time, each refused with the gate's reason.
    assert [entry["seed"] for entry in record["attempts"]] == [7, 8, 9]
    assert all(not entry["gate"]["passed"] for entry in record["attempts"])
    assert all("not plain white" in entry["gate"]["reason"] for entry in record["attempts"])
    assert "seed 7:" in str(error) and "seed 9:" in str(error) and "flux-schnell" in str(error)
    assert len(error.images) == 3
    assert all(image.shape == (32, 32, 3) and image.dtype == np.uint8 for image in error.images)
    assert not np.array_equal(error.images[0], error.images[1])
    # Loaded once, from our folder, through diffusers' real FluxPipeline with our tiny transformer.
    assert host.loads == [f"diffusers:flux-schnell:{flux_here}:cpu"]
    pipeline = host.get(host.loads[0], lambda: None)
    assert type(pipeline).__name__ == "FluxPipeline"
    assert pipeline.transformer.config.num_layers == 1
    # The prompt was counted with the model's own T5 tokenizer and kept within its 256 tokens.
    expanded = record["prompt"]
    assert "tokenizer_2" in expanded["counted_with"]
    assert expanded["tokens"] == len(pipeline.tokenizer_2(expanded["prompt"])["input_ids"]) <= 256
    assert "barrel" in expanded["prompt"] and record["licence"] == "Apache-2.0"
    assert record["steps"] == 4 and record["guidance"] == 0.0 and record["seed"] is None
    assert record["gpu_seconds"] > 0


def test_a_preloaded_model_is_pinned_and_never_loaded_again(flux_here, host):
    assert generate.preload("auto").startswith("FLUX.1 [schnell]")
    assert host.pinned == [f"diffusers:flux-schnell:{flux_here}:cpu"]
    with pytest.raises(ImagesRefused):
        text_to_image("a wooden barrel", {"size": 32, "attempts": 1})
    assert host.loads == host.pinned and host.held is None  # the pinned one served; nothing else was loaded


def test_the_same_seed_gives_the_same_image(flux_here, host):
    job = ImageJob("flux-schnell", str(flux_here), "cpu", "a wooden barrel, plain white background", "", 3, 4,
                   0.0, 32, 32)
    first, _ = generate_image(job)
    again, _ = generate_image(job)
    other, _ = generate_image(dataclasses.replace(job, seed=4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name, builder", [("sdxl-turbo", tiny_sdxl), ("sd3.5-large-turbo", tiny_sd3),
                                           ("sd3.5-medium", tiny_sd3)])
def test_sdxl_turbo_and_sd35_run_through_the_adapter(name, builder, diffusers_ready, no_hub, host, monkeypatch,
                                                      tmp_path):
    spec = MODELS[name]
    monkeypatch.setenv(spec.weights_env, str(builder(tmp_path / name)))
    calls = []
    real = generate.call_arguments
    monkeypatch.setattr(generate, "call_arguments", lambda job: calls.append(real(job)) or calls[-1])
    with pytest.raises(ImagesRefused) as refused:
        text_to_image("a brass oil lantern", {"model": name, "size": 32, "attempts": 1, "steps": 2})
    assert len(refused.value.images) == 1 and refused.value.images[0].shape == (32, 32, 3)
    assert refused.value.record["model"] == name and refused.value.record["licence"] == spec.licence
    # The negative prompt goes only to a model that runs classifier-free guidance (SD3.5 Medium, 4.5).
    assert ("negative_prompt" in calls[0]) == (spec.guidance > 1.0)
    assert calls[0]["guidance_scale"] == spec.guidance
    assert calls[0].get("max_sequence_length") == spec.max_sequence_length


def test_the_retry_loop_returns_the_first_picture_the_gate_passes(flux_here, host, monkeypatch):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pictures = {11: noise, 12: clean_render(), 13: clean_render()}
    asked = []

    def stand_in(job):
        asked.append(job.seed)
        return pictures[job.seed], 0.5

    monkeypatch.setattr(runner, "generate_image", stand_in)
    image, record = text_to_image("a copper kettle", {"model": "flux-schnell", "seed": 11, "size": 64})
    assert asked == [11, 12]
    assert np.array_equal(image, pictures[12])
    assert record["seed"] == 12
    assert [entry["gate"]["passed"] for entry in record["attempts"]] == [False, True]
    assert record["gpu_seconds"] == 1.0


def test_the_picture_the_gate_passes_cuts_out_and_inflates_to_a_closed_mesh(flux_here, host, monkeypatch):
    """The runner's picture fits the image-to-3D chain as it is: background removal, then the silhouette
    generator (the picture is a stand-in for a real model's; the tiny model only makes noise)."""
    from server.generators.base import GenerationRequest
    from server.generators.silhouette import SilhouetteGenerator
    from server.stages.background import cut_out

    monkeypatch.setattr(runner, "generate_image", lambda job: (clean_render(128), 0.5))
    image, record = text_to_image("a copper kettle", {"model": "flux-schnell", "size": 128})
    cutout = cut_out(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), method="classical")
    generated = SilhouetteGenerator().generate(GenerationRequest({"front": cutout.rgba}, seed=record["seed"]))
    assert generated.mesh.is_watertight and len(generated.mesh.faces) > 100
    assert abs(cutout.object_fraction - np.pi * (0.3 * 128) ** 2 / 128**2) < 0.03


def test_a_request_over_the_quota_is_refused_before_any_model_loads(flux_here, host, monkeypatch):
    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: False)
    with pytest.raises(gpu.QuotaExceeded) as refused:
        text_to_image("a wooden barrel", {"model": "flux-schnell", "size": 32}, quota_left_s=2)
    assert "text to image (flux-schnell, seed 0)" in str(refused.value)
    assert host.loads == []


def test_call_arguments_follow_each_model_card():
    def job(name):
        spec = MODELS[name]
        return ImageJob(name, "folder", "cuda", "p", "n", 0, spec.steps, spec.guidance, spec.size, spec.size)

    flux = call_arguments(job("flux-schnell"))
    assert (flux["num_inference_steps"], flux["guidance_scale"], flux["max_sequence_length"]) == (4, 0.0, 256)
    assert "negative_prompt" not in flux and (flux["width"], flux["height"]) == (1024, 1024)
    turbo = call_arguments(job("sdxl-turbo"))
    assert (turbo["num_inference_steps"], turbo["guidance_scale"], turbo["width"]) == (1, 0.0, 512)
    assert "max_sequence_length" not in turbo
    medium = call_arguments(job("sd3.5-medium"))
    assert medium["negative_prompt"] == "n" and medium["guidance_scale"] == 4.5


def test_availability_says_why_a_model_cannot_run(no_hub, monkeypatch, tmp_path):
    flux = MODELS["flux-schnell"]
    available, reason = models.availability(flux)
    assert not available and "not in the Hugging Face cache" in reason and flux.weights_env in reason
    assert "Apache-2.0" in reason
    monkeypatch.setenv(flux.weights_env, str(tmp_path))
    available, reason = models.availability(flux)
    assert not available and "has no model_index.json" in reason
    monkeypatch.delenv(models.CPU_ENV)
    available, reason = models.availability(flux)
    assert not available and "no CUDA GPU" in reason
    monkeypatch.setattr(models, "library_present", lambda module: module != "diffusers")
    available, reason = models.availability(flux)
    assert not available and "diffusers is not installed" in reason and "pip install diffusers" in reason


def test_a_gated_model_needs_a_token_to_download(no_hub, monkeypatch):
    monkeypatch.setenv(base.DOWNLOAD_ENV, "1")
    available, reason = models.availability(MODELS["sd3.5-large-turbo"])
    assert not available and "gated" in reason and "HF_TOKEN" in reason
    available, reason = models.availability(MODELS["flux-schnell"])
    assert available and "download" in reason


def test_health_rows_name_every_model_with_its_licence(no_hub):
    rows = {row["name"]: row for row in models.report()}
    assert set(rows) == {"flux-schnell", "sdxl-turbo", "sd3.5-large-turbo", "sd3.5-medium"}
    assert rows["flux-schnell"]["licence"] == "Apache-2.0"
    assert "Non-Commercial" in rows["sdxl-turbo"]["licence"]
    assert all("Community License" in rows[name]["licence"] for name in ("sd3.5-large-turbo", "sd3.5-medium"))
    assert not any(row["available"] for row in rows.values())


BAD_PROMPTS = [
    ("", "a description of the object"),
    ("   \n\t ", "a description of the object"),
    ("a barrel " * 1138, "at most 1000 characters"),  # 10 kB
    ("a barrel\x00", "U+0000"),
    ("\x1b[31ma red barrel", "U+001B"),
    ("a\u200bbarrel", "U+200B"),
    ("a barrel \u202egnirts", "U+202E"),
    ("12345 !!!", "no letters"),
    (42, "a string"),
]


@pytest.mark.parametrize("prompt, expected", BAD_PROMPTS)
def test_bad_prompts_are_refused_by_name_before_any_work(prompt, expected, flux_here, host):
    with pytest.raises(InputError) as refused:
        text_to_image(prompt, {"model": "flux-schnell"})
    assert refused.value.argument == "prompt" and expected in str(refused.value)
    assert host.loads == []


@pytest.mark.parametrize("options, argument, expected", [
    ({"model": "dall-e-3"}, "options.model", "one of flux-schnell"),
    ({"seed": -1}, "options.seed", "whole number"),
    ({"seed": 1.5}, "options.seed", "whole number"),
    ({"attempts": 4}, "options.attempts", "from 1 to 3"),
    ({"size": 1000}, "options.size", "multiple of 16"),
    ({"steps": 0}, "options.steps", "from 1 to 100"),
    ({"expander": "gpt"}, "options.expander", "'template' or 'instruct'"),
    ({"colour": "red"}, "options", "only these keys"),
    ("fast", "options", "a JSON object"),
])
def test_bad_options_are_refused_by_name_before_any_work(options, argument, expected, flux_here, host):
    with pytest.raises(InputError) as refused:
        text_to_image("a wooden barrel", options)
    assert refused.value.argument == argument and expected in str(refused.value)
    assert host.loads == []


def test_without_any_model_the_request_is_refused_with_every_reason(no_hub, host):
    with pytest.raises(ModelUnavailable) as refused:
        text_to_image("a wooden barrel")
    message = str(refused.value)
    assert message.startswith("no text-to-image model can run on this server")
    for name in MODELS:
        assert f"{name}: " in message
    with pytest.raises(ModelUnavailable, match="sdxl-turbo cannot run on this server"):
        text_to_image("a wooden barrel", {"model": "sdxl-turbo"})
    assert host.loads == []


def test_the_gate_verdict_on_the_models_noise_is_a_refusal_with_measures(flux_here, host):
    job = ImageJob("flux-schnell", str(flux_here), "cpu", "a barrel", "", 0, 4, 0.0, 64, 64)
    image, _ = generate_image(job)
    verdict = check_background(image)
    assert not verdict.passed and verdict.border_white < 0.95


@pytest.mark.skipif(not models.availability(MODELS["flux-schnell"])[0] or not models.cuda_present(),
                    reason="FLUX.1-schnell's real weights and a CUDA GPU are not on this machine")
def test_real_flux_schnell_makes_a_picture_the_gate_passes():
    image, record = text_to_image("a wooden barrel with iron bands")
    assert check_background(image).passed
    assert record["seed"] == record["attempts"][-1]["seed"] and record["attempts"][-1]["gate"]["passed"]
