"""Every endpoint through gradio_client against `python -m server` in a subprocess, bad input included."""

import json
import zipfile
import time

import numpy as np
import pytest
import trimesh
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from server.generators.registry import report as generator_report
from server.meshfile import gltf_to_blender
from server.local import running_server
from tests.test_silhouette import l_shape, load_glb, normalised_points, two_way_distance


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("api") / "workspace"
    workspace.mkdir()
    with running_server(workspace) as url:
        yield url, workspace


@pytest.fixture(scope="module")
def client(server):
    return Client(server[0], verbose=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = {}
    Image.fromarray(l_shape()).save(folder / "l_shape.png")
    paths["good"] = folder / "l_shape.png"
    data = paths["good"].read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    paths["truncated"] = folder / "truncated.png"
    (folder / "notes.png").write_text("this is a text file, not a picture\n")
    paths["text"] = folder / "notes.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "pixel.png")
    paths["tiny"] = folder / "pixel.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(folder / "empty.png")
    paths["empty"] = folder / "empty.png"
    return paths


def forge(client, files, name="Thing", generator="auto", views="", preset="", seed=0, options=""):
    return client.predict([handle_file(str(f)) for f in files], name, generator, views, preset, seed,
                          json.dumps(options) if isinstance(options, dict) else options, api_name="/generate")


def test_health_lists_every_generator_with_a_reason(client):
    health = json.loads(client.predict(api_name="/health"))
    assert health["status"] == "ok" and health["version"]
    # The server runs here, in this environment: it must publish the verdicts the registry reaches here.
    assert health["generators"] == generator_report()
    assert "rembg" in health["background_removal"]


def test_generate_one_image_then_asset_history_and_quota(client, images):
    record_json, glb_path = forge(client, [images["good"]], name="L Shape!", options={"resolution": 96})
    record = json.loads(record_json)
    assert record["name"] == "L_Shape" and record["status"] == "ready"
    assert [s["stage"] for s in record["stages"]] == ["background", "generate"]
    assert all(s["status"] == "ok" for s in record["stages"])
    mesh = load_glb(glb_path)
    assert mesh.is_watertight and mesh.visual.vertex_attributes["color"].shape[1] == 4
    same = json.loads(client.predict(record["asset_id"], api_name="/asset"))
    assert same["asset_id"] == record["asset_id"] and same["outputs"]["high_poly"] == "high_poly.glb"
    history = json.loads(client.predict(api_name="/assets"))
    assert history[0]["asset_id"] == record["asset_id"]
    quota = json.loads(client.predict(api_name="/quota"))
    assert quota["daily_limit_seconds"] == 2400 and quota["calls_today"] >= 1
    presets = json.loads(client.predict(api_name="/presets"))
    assert "prop_UE5_standard" in presets and "character_UE5_hero" in presets


BAD_INPUTS = [
    ("truncated", {}, "images\\[0\\]"),
    ("text", {}, "images\\[0\\]"),
    ("tiny", {}, "at least 32 pixels"),
    ("empty", {}, "no object"),
    ("good", {"generator": "dreamfusion"}, "generator='dreamfusion'"),
    ("good", {"views": "side"}, "views='side'"),
    ("good", {"preset": "ultra"}, "preset='ultra'"),
    ("good", {"options": "{not json"}, "options="),
    ("good", {"options": {"colour": 3}}, "options='colour'"),
    ("good", {"options": {"thickness": 99}}, "options.thickness=99"),
    ("good", {"seed": -4}, "seed=-4"),
]


@pytest.mark.parametrize("image,kwargs,message", BAD_INPUTS, ids=[f"{i}-{m}" for i, _, m in BAD_INPUTS])
def test_bad_input_gets_a_clear_error_and_the_server_keeps_serving(client, images, image, kwargs, message):
    with pytest.raises(AppError, match=message):
        forge(client, [images[image]], **kwargs)
    assert json.loads(client.predict(api_name="/health"))["status"] == "ok"


def test_more_than_four_images_and_duplicate_views_are_refused(client, images):
    with pytest.raises(AppError, match="1 to 4 images"):
        forge(client, [images["good"]] * 5)
    with pytest.raises(AppError, match="each label at most once"):
        forge(client, [images["good"]] * 2, views="front,front")
    with pytest.raises(AppError, match="asset_id"):
        client.predict("../../etc/passwd", api_name="/asset")


@pytest.mark.parametrize("image", ["truncated", "empty"])
def test_bad_input_leaves_no_half_made_asset(client, server, images, image):
    """A corrupt file is refused before anything exists; a picture with no object is refused once the
    background is cut out, and the asset made for it is removed."""
    before = {p.name for p in server[1].iterdir()}
    with pytest.raises(AppError):
        forge(client, [images[image]])
    assert {p.name for p in server[1].iterdir()} == before


def start_slow_job(client, images, asset_id):
    """Submit a heavy generate under a chosen id and return once the server says it is running."""
    job = client.submit([handle_file(str(images["good"]))], "Slow", "silhouette", "", "", 0,
                        json.dumps({"asset_id": asset_id, "resolution": 512, "target_faces": 400000}),
                        api_name="/generate")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if json.loads(client.predict(asset_id, api_name="/asset"))["status"] == "running":
                break
        except AppError:
            pass
        time.sleep(0.2)
    return job


def test_cancel_stops_a_running_job_and_marks_the_asset(client, images):
    asset_id = "20261122T000000-cafe0001"
    job = start_slow_job(client, images, asset_id)
    reply = json.loads(client.predict(asset_id, api_name="/cancel"))
    assert reply["cancel_requested"] is True
    with pytest.raises(AppError, match="cancelled"):
        job.result(timeout=120)
    record = json.loads(client.predict(asset_id, api_name="/asset"))
    assert record["status"] == "cancelled"
    assert "high_poly" not in record["outputs"]


@pytest.mark.slow
def test_four_labelled_renders_through_the_api_give_the_true_shape(client, house_glb, house_views):
    order = ["front", "left", "back", "right"]
    record_json, glb_path = forge(client, [house_views[v] for v in order], name="House", views=",".join(order),
                                  generator="silhouette", options={"resolution": 192, "target_faces": 60000})
    made = load_glb(glb_path)
    assert made.is_watertight
    made.vertices = gltf_to_blender(made.vertices)
    truth = trimesh.load(house_glb, force="mesh")
    truth.vertices = gltf_to_blender(truth.vertices)
    error = two_way_distance(normalised_points(made), normalised_points(truth))
    print(f"API visual hull two-way distance: {error:.4f} of the diagonal")
    assert error < 0.02


def test_import_mesh_round_trip(client, tmp_path):
    box = trimesh.creation.box((0.4, 0.6, 1.0))
    box.visual.vertex_colors = np.tile([10, 200, 30, 255], (len(box.vertices), 1)).astype(np.uint8)
    path = tmp_path / "box.ply"
    box.export(path)
    record_json, glb_path = client.predict(handle_file(str(path)), "Box", json.dumps({"up_axis": "Z"}),
                                           api_name="/import_mesh")
    record = json.loads(record_json)
    assert record["generator"] == "import" and record["mesh"]["faces"] == 12
    loaded = load_glb(glb_path)
    assert np.allclose(np.sort(loaded.extents), [0.4, 0.6, 1.0], atol=1e-5)
    assert loaded.extents[1] == pytest.approx(1.0)  # Z-up PLY became Y-up glTF
    with pytest.raises(AppError, match="options.up_axis"):
        client.predict(handle_file(str(tmp_path / "box.ply")), "Box", json.dumps({"up_axis": "W"}),
                       api_name="/import_mesh")


def test_the_server_serves_while_a_job_runs(client, images):
    job = client.submit([handle_file(str(images["good"]))], "Busy", "silhouette", "", "", 0,
                        json.dumps({"resolution": 256}), api_name="/generate")
    health = json.loads(client.predict(api_name="/health"))  # answered by its own worker, not queued behind
    assert health["status"] == "ok"
    json.loads(job.result(timeout=300)[0])


def test_postprocess_bake_export_through_the_api(client, images):
    record, _ = forge(client, [images["good"]], name="Chain", options={"resolution": 96, "target_faces": 20000})
    asset_id = json.loads(record)["asset_id"]
    summary, preview = client.predict(asset_id, 2000, api_name="/decimate_preview")
    count = int(summary.split()[0])
    assert summary == f"{count} triangles" and count == pytest.approx(2000, rel=0.05)
    assert load_glb(preview).faces.shape[0] == count
    options = {"target_triangles": 1500, "texture_size": 256, "max_hulls": 2, "height": "crate"}
    record = json.loads(client.predict(asset_id, json.dumps(options), api_name="/postprocess"))
    assert record["stages"][-1]["stage"] == "postprocess" and record["stages"][-1]["status"] == "ok"
    record = json.loads(client.predict(asset_id, json.dumps({"ao_samples": 4}), api_name="/bake"))
    assert record["stages"][-1]["stage"] == "bake" and record["stages"][-1]["status"] == "ok"
    record, package = client.predict(asset_id, "UE5", "{}", api_name="/export")
    with zipfile.ZipFile(package) as bundle:
        names = set(bundle.namelist())
    assert {"SM_Chain.fbx", "SM_Chain_LOD1.fbx", "SM_Chain_LOD2.fbx", "T_Chain_BC.png", "T_Chain_N.png",
            "T_Chain_ORM.png", "import_Chain.py", "manifest.json", "preview.png"} <= names
    with pytest.raises(AppError, match="engine"):
        client.predict(asset_id, "unreal4", "{}", api_name="/export")
    with pytest.raises(AppError, match="texture_size"):
        client.predict(asset_id, json.dumps({"texture_size": 300}), api_name="/postprocess")


def test_a_killed_server_leaves_finished_assets_intact_and_says_what_was_cut_off(tmp_path, images):
    import signal

    from server.local import server_process

    workspace = tmp_path / "workspace"
    with server_process(workspace) as (url, process):
        client = Client(url, verbose=False)
        done_json, done_glb = forge(client, [images["good"]], name="Kept", options={"resolution": 64})
        done = json.loads(done_json)
        kept_bytes = (workspace / done["asset_id"] / "high_poly.glb").read_bytes()
        asset_id = "20261122T000000-dead0001"
        start_slow_job(client, images, asset_id)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    with server_process(workspace) as (url, _):
        client = Client(url, verbose=False)
        cut = json.loads(client.predict(asset_id, api_name="/asset"))
        assert cut["status"] == "interrupted"
        assert any(stage["status"] == "interrupted" for stage in cut["stages"])
        kept = json.loads(client.predict(done["asset_id"], api_name="/asset"))
        assert kept["status"] == "ready"
        assert (workspace / done["asset_id"] / "high_poly.glb").read_bytes() == kept_bytes
        assert json.loads(client.predict(api_name="/health"))["status"] == "ok"


@pytest.mark.parametrize("text, expected", [
    ("[" * 100_000 + "]" * 100_000, "at most 100000 characters"),
    ("[" * 40_000 + "]" * 40_000, "nested at most a few levels"),
    ('{"target_triangles": NaN}', "a number from"),
    ('{"target_triangles": Infinity}', "a number from"),
])
def test_hostile_options_text_gets_a_named_refusal(text, expected):
    from server.errors import InputError
    from server.options import parse_options, number_option

    with pytest.raises(InputError, match=expected):
        number_option(parse_options(text, {"target_triangles"}), "target_triangles", 100, 500_000, True)
