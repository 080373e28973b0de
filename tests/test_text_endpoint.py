"""Text to game asset through the API: generate_text and forge with a prompt.

The servers run diffusers' real FluxPipeline from tiny weights written by the test (tests/
test_text2image_models.py builds them), on the CPU. With random weights its pictures are noise, so the
clean-background gate refuses all three seeds and no asset is made. With a VAE whose weights are set by hand to
draw one object on white, a prompt goes through the gate, background removal, the silhouette generator,
post-processing, bake and export to a UE5 zip.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from server.local import running_server
from tests.test_text2image_models import clean_render, tiny_flux, tiny_flux_that_draws

TINY = {"generate": {"resolution": 64, "target_faces": 5000},
        "postprocess": {"target_triangles": 600, "texture_size": 256, "max_hulls": 2},
        "bake": {"ao_samples": 2, "texture_size": 256}}


def _needs_diffusers():
    for module in ("torch", "diffusers", "transformers"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the test extra installs it on 3.11)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _needs_diffusers()
    folder = tiny_flux(tmp_path_factory.mktemp("tiny_flux_api"))
    workspace = tmp_path_factory.mktemp("text_api") / "workspace"
    env = {"O3F_FLUX_WEIGHTS": str(folder), "O3F_ALLOW_CPU_MODELS": "1", "HF_HUB_OFFLINE": "1"}
    with running_server(workspace, env) as url:
        yield url, workspace


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


def _assets(workspace):
    return sorted(p.name for p in workspace.iterdir() if p.is_dir())


def test_the_tiny_models_noise_is_refused_by_the_gate_and_leaves_no_asset(client, server):
    from gradio_client.exceptions import AppError

    before = _assets(server[1])
    with pytest.raises(AppError) as refused:
        client.predict("a wooden barrel with iron bands", "", json.dumps({"text": {"size": 32, "seed": 7}}),
                       api_name="/generate_text")
    message = str(refused.value)
    assert "none of 3 pictures from flux-schnell passed the clean-background gate" in message
    assert "seed 7:" in message and "seed 8:" in message and "seed 9:" in message
    assert _assets(server[1]) == before
    calls = json.loads(client.predict(api_name="/quota"))["recent_calls"]
    assert calls[-1]["endpoint"] == "generate_text (refused)"  # ZeroGPU charges refused pictures too
    health = json.loads(client.predict(api_name="/health"))
    rows = {row["name"]: row for row in health["text_to_image"]}
    assert rows["flux-schnell"]["available"] is True and rows["flux-schnell"]["licence"] == "Apache-2.0"
    assert rows["sdxl-turbo"]["available"] is False and rows["sdxl-turbo"]["reason"]


@pytest.mark.parametrize("prompt, options, expected", [
    ("", {}, "prompt=''"),
    ("a barrel " * 1138, {}, "at most 1000 characters"),
    ("a barrel\x00", {}, "U+0000"),
    ("a wooden barrel", {"text": {"model": "dall-e-3"}}, "options.model='dall-e-3'"),
    ("a wooden barrel", {"text": {"model": "sdxl-turbo"}}, "sdxl-turbo cannot run on this server"),
    ("a wooden barrel", {"text": "fast"}, "options.text='fast'"),
    ("a wooden barrel", {"resolution": 4}, "options.resolution=4"),
    ("a wooden barrel", {"voice": "calm"}, "options='voice'"),
])
def test_bad_text_requests_are_refused_before_any_work(client, server, prompt, options, expected):
    from gradio_client.exceptions import AppError

    before = _assets(server[1])
    with pytest.raises(AppError) as refused:
        client.predict(prompt, "", json.dumps(options), api_name="/generate_text")
    assert expected in str(refused.value)
    assert _assets(server[1]) == before


def test_forge_refuses_a_prompt_and_images_together(client, server, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    Image.fromarray(clean_render(128)).save(tmp_path / "front.png")
    with pytest.raises(AppError, match="options.prompt='a barrel': expected no prompt when images are given"):
        client.predict([handle_file(str(tmp_path / "front.png"))], "X", "front", "",
                       json.dumps({"prompt": "a barrel"}), api_name="/forge")


@pytest.fixture(scope="module")
def drawing_server(tmp_path_factory):
    """A server whose tiny FLUX draws one square object on white (tests/test_text2image_models.py says how)."""
    _needs_diffusers()
    folder = tiny_flux_that_draws(tmp_path_factory.mktemp("drawing_flux"), size=64)
    workspace = tmp_path_factory.mktemp("text_draw") / "workspace"
    env = {"O3F_FLUX_WEIGHTS": str(folder), "O3F_ALLOW_CPU_MODELS": "1", "HF_HUB_OFFLINE": "1"}
    with running_server(workspace, env) as url:
        yield url, workspace


@pytest.mark.slow
def test_forge_from_a_prompt_through_every_stage_to_a_ue5_zip(drawing_server):
    from gradio_client import Client

    client = Client(drawing_server[0], verbose=False)
    record_json, package = client.predict(None, "", "", "", json.dumps({
        **TINY, "prompt": "a copper kettle", "seed": 5, "text": {"size": 64}}), api_name="/forge")
    record = json.loads(record_json)
    assert record["name"] == "Kettle" and record["status"] == "ready"
    text = record["text_to_image"]
    assert text["seed"] == 5 and text["model"] == "flux-schnell" and text["licence"] == "Apache-2.0"
    assert text["attempts"][0]["gate"]["passed"] and len(text["attempts"]) == 1
    assert "kettle" in text["prompt"]["prompt"] and text["prompt"]["subject"] == "kettle"
    assert [s["stage"] for s in record["stages"]] == ["background", "generate", "postprocess", "bake", "export"]
    with zipfile.ZipFile(package) as archive:
        assert {"SM_Kettle.fbx", "T_Kettle_BC.png", "T_Kettle_N.png", "T_Kettle_ORM.png"} <= set(archive.namelist())
        with archive.open("T_Kettle_BC.png") as handle:
            colours = np.asarray(Image.open(handle).convert("RGB"), dtype=float).reshape(-1, 3)
    # The model's colour reached the baked base colour (0.8, 0.45, 0.15 drawn; sRGB bytes about 204, 115, 38).
    assert np.abs(np.median(colours, axis=0) - [204, 115, 38]).max() < 12
    front = Image.open(drawing_server[1] / record["asset_id"] / record["inputs"][0]["file"])
    assert front.size == (64, 64)  # the model's picture is kept as the asset's front input


def test_the_same_seed_draws_the_same_picture_and_makes_the_same_mesh(drawing_server):
    from gradio_client import Client

    client = Client(drawing_server[0], verbose=False)
    meshes = []
    for _ in range(2):
        record, glb = client.predict("a tin cup", "", json.dumps({"seed": 9, "text": {"size": 64},
                                                                  "resolution": 64, "target_faces": 5000}),
                                     api_name="/generate_text")
        meshes.append(open(glb, "rb").read())
        assert json.loads(record)["text_to_image"]["seed"] == 9
    assert meshes[0] == meshes[1]


def test_the_addon_forges_from_a_prompt_when_it_has_no_images(server, drawing_server, tmp_path):
    from addon import jobs

    def forge(url: str) -> jobs.JobEvent:
        plan = jobs.forge_plan([], name="", options={**TINY, "text": {"size": 64, "seed": 3}}, prompt="a wooden barrel")
        job = jobs.Job(plan, jobs.Connection(server=url, download_dir=str(tmp_path)), asset_id=jobs.new_asset_id())
        return jobs.pump(job, timeout=600)

    made = forge(drawing_server[0])
    assert made.kind == jobs.DONE, made.message
    assert made.result["record"]["name"] == "Barrel" and made.result["package"].endswith(".zip")
    # Against the noise model the gate refuses all three pictures, and the add-on says why.
    refused = forge(server[0])
    assert refused.kind == jobs.ERROR
    assert "passed the clean-background gate" in refused.message and "seed 3:" in refused.message
