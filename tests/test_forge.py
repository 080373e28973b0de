"""The chain on real input through ForgeApi: import or generate, postprocess, bake, export, and what comes out."""

import io
import json
import zipfile

import numpy as np
import pytest
import trimesh
from PIL import Image

from server.api import ForgeApi
from server.bake.sources import sample_texture, source_from_trimesh
from server.config import load_settings
from server.errors import InputError
from server.meshfile import gltf_to_blender
from tests.test_silhouette import l_shape


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("forge") / "ws"
    import os
    previous = os.environ.get("O3F_WORKSPACE")
    os.environ["O3F_WORKSPACE"] = str(workspace)
    try:
        yield ForgeApi(load_settings())
    finally:
        if previous is None:
            os.environ.pop("O3F_WORKSPACE", None)
        else:
            os.environ["O3F_WORKSPACE"] = previous


def textured_mug(path):
    """A 'made elsewhere' textured mesh: a capped cylinder with a painted band, written as GLB."""
    body = trimesh.creation.cylinder(radius=0.4, height=1.0, sections=48)
    body = body.subdivide().subdivide()
    v = body.vertices
    uv = np.column_stack([0.5 + np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi), v[:, 2] + 0.5])
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    texture = np.zeros((128, 128, 3), np.uint8)
    texture[..., 0] = (40 + 200 * xx).astype(np.uint8)
    texture[..., 1] = (30 + 180 * yy).astype(np.uint8)
    texture[..., 2] = 90
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture),
                                                   metallicFactor=0.0, roughnessFactor=0.6)
    body.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    body.export(path)
    return path


def zip_members(path):
    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def test_imported_textured_mesh_keeps_its_colours_through_the_chain(api, tmp_path):
    source_path = textured_mug(tmp_path / "mug.glb")
    record = json.loads(api.import_mesh(str(source_path), "Mug", {"up_axis": "Y"})[0])
    asset_id = record["asset_id"]
    record = json.loads(api.postprocess(asset_id, {"target_triangles": 2000, "texture_size": 512,
                                                   "height_cm": 30, "collision": True, "max_hulls": 4}))
    post = [s for s in record["stages"] if s["stage"] == "postprocess"][-1]
    assert post["status"] == "ok"
    lods = post["parameters"]["report"]["lod_triangles"]
    assert lods[0] == pytest.approx(2000, rel=0.05) and lods[0] > lods[1] > lods[2]
    json.loads(api.bake(asset_id, {"ao_samples": 8}))
    record_json, zip_path = api.export(asset_id, "ue5", {"use_fbx": False})
    files = zip_members(zip_path)
    assert {"SM_Mug.glb", "SM_Mug_LOD1.glb", "SM_Mug_LOD2.glb", "T_Mug_BC.png", "T_Mug_N.png", "T_Mug_ORM.png",
            "import_Mug.py", "manifest.json", "preview.png"} <= set(files)
    manifest = json.loads(files["manifest.json"])
    checks = manifest["checks"]
    assert checks["checks"] and checks["ok"] == all(c["ok"] for c in checks["checks"]), checks
    assert {"name", "ok", "value", "expected"} <= set(checks["checks"][0])
    # The import script's closing self-check expects the triangles the manifest lists for each LOD.
    script = files["import_Mug.py"].decode()
    line = next(l for l in script.splitlines() if l.startswith("LOD_TRIANGLES = "))
    assert line.split("=", 1)[1].split("#")[0].strip() == str([lod["triangles"] for lod in manifest["lods"]])

    # Sample the original textured surface, find each point on the exported LOD0, read the baked colour.
    original = trimesh.load(source_path, file_type="glb")
    original = list(original.geometry.values())[0]
    source = source_from_trimesh(original)
    points, face = trimesh.sample.sample_surface(original, 3000, seed=2)
    keep = np.abs(np.arctan2(points[:, 1], points[:, 0])) < 2.9  # clear of the texture's wrap seam
    keep &= np.abs(points[:, 2]) < 0.45  # the painted side, not the caps
    points, face = points[keep], face[keep]
    bary = trimesh.triangles.points_to_barycentric(original.triangles[face], points)
    truth = source.sample(face, bary, points)["base_color"][:, :3] * 255

    lod0 = trimesh.load(io.BytesIO(files["SM_Mug.glb"]), file_type="glb")
    render = [g for name, g in lod0.geometry.items() if "UCX" not in name][0]
    # The export moved the pivot and scaled to 30 cm: map the original points the same way.
    transform = json.loads((api.ctx.store.open(asset_id).folder / "game" / "postprocess.json").read_text())["transform"]
    placed = gltf_to_blender(points) * transform["scale"] + np.asarray(transform["translation"])
    lod_vertices = gltf_to_blender(render.vertices)
    lod_mesh = trimesh.Trimesh(lod_vertices, render.faces, process=False)
    closest, _, lod_face = trimesh.proximity.closest_point(lod_mesh, placed)
    lod_bary = trimesh.triangles.points_to_barycentric(lod_mesh.triangles[lod_face], closest)
    lod_uv = np.einsum("kj,kjc->kc", lod_bary, np.asarray(render.visual.uv)[render.faces[lod_face]])
    baked = np.asarray(Image.open(io.BytesIO(files["T_Mug_BC.png"])).convert("RGB"), np.float64)
    sampled = sample_texture(baked, lod_uv)
    difference = np.abs(sampled - truth).max(axis=1)
    print(f"colour through the chain: median {np.median(difference):.2f}, p90 {np.percentile(difference, 90):.2f}")
    assert np.median(difference) < 4.0

    # Real size: 30 cm tall, standing on the ground at the origin.
    assert np.ptp(lod_vertices[:, 2]) == pytest.approx(0.30, rel=0.02)
    assert lod_vertices[:, 2].min() == pytest.approx(0.0, abs=1e-4)


def test_forge_runs_the_whole_chain_from_an_image(api, tmp_path):
    image = tmp_path / "l.png"
    Image.fromarray(l_shape()).save(image)
    options = {"generate": {"resolution": 96, "target_faces": 20000}, "engine": "godot",
               "postprocess": {"target_triangles": 1500, "texture_size": 256, "max_hulls": 4},
               "bake": {"ao_samples": 4}}
    record_json, zip_path = api.forge([str(image)], "L_Block", "", "", options)
    record = json.loads(record_json)
    assert [s["stage"] for s in record["stages"]] == ["background", "generate", "postprocess", "bake", "export"]
    files = zip_members(zip_path)
    assert "L_Block.glb" in files and "manifest.json" in files
    bake = [s for s in record["stages"] if s["stage"] == "bake"][-1]
    assert bake["parameters"]["size"] == 256  # the bake takes the size post-processing unwrapped for


@pytest.mark.parametrize("options,message", [
    ({"postprocess": {"texture_size": 1000}}, "texture_size"),
    ({"postprocess": {"target_triangles": 5}}, "target_triangles"),
    ({"postprocess": {"symmetry": "z"}}, "symmetry"),
    ({"postprocess": {"height": "giraffe"}}, "height"),
    ({"engine": "cryengine"}, "engine"),
    ({"bake": {"ao_samples": 0}}, "ao_samples"),
    ({"postprocess": {"lod_ratios": [1, 0.8, 0.9]}}, "lod_ratios"),
])
def test_bad_chain_options_are_refused_before_anything_runs(api, tmp_path, options, message):
    image = tmp_path / "l.png"
    Image.fromarray(l_shape()).save(image)
    before = json.loads(api.assets())
    with pytest.raises(InputError, match=message):
        api.forge([str(image)], "Bad", "", "", options)
    assert json.loads(api.assets()) == before  # nothing half-made


def test_stages_out_of_order_say_what_to_run_first(api, tmp_path):
    image = tmp_path / "l.png"
    Image.fromarray(l_shape()).save(image)
    asset_id = json.loads(api.generate([str(image)], "Early", "silhouette", "", "", 0,
                                       {"resolution": 64, "target_faces": 5000})[0])["asset_id"]
    with pytest.raises(Exception, match="postprocess first"):
        api.bake(asset_id, {})
    with pytest.raises(Exception, match="postprocess first"):
        api.export(asset_id, "ue5", {})
    with pytest.raises(InputError, match="engine"):
        api.export(asset_id, "Frostbite", {})


def test_stable_pose_turns_a_cone_standing_on_its_tip(api, tmp_path):
    cone = trimesh.creation.cone(radius=0.3, height=0.8, sections=32)
    cone.apply_transform(trimesh.transformations.rotation_matrix(np.pi, [1, 0, 0]))  # tip down
    path = tmp_path / "cone.ply"
    cone.export(path)
    asset_id = json.loads(api.import_mesh(str(path), "Cone", {"up_axis": "Z"})[0])["asset_id"]
    options = {"target_triangles": 200, "texture_size": 256, "collision": False, "height": "keep"}
    as_authored = json.loads(api.postprocess(asset_id, options))
    report = as_authored["stages"][-1]["parameters"]["report"]
    assert report["stability"]["stable"] is False
    turned = json.loads(api.postprocess(asset_id, {**options, "stable_pose": True}))
    report = turned["stages"][-1]["parameters"]["report"]
    assert report["stability"]["stable"] is True
    rotation = np.asarray(report["transform"]["rotation"])
    assert rotation[2] @ np.array([0, 0, -1.0]) > 0.9  # the old downward tip now points up


def test_a_triangle_soup_gets_a_clear_error_and_keeps_the_asset_intact(api, tmp_path):
    rng = np.random.default_rng(4)
    corners = rng.random((300, 3, 3))
    soup = trimesh.Trimesh(corners.reshape(-1, 3), np.arange(900).reshape(-1, 3), process=False)
    path = tmp_path / "soup.ply"
    soup.export(path)
    asset_id = json.loads(api.import_mesh(str(path), "Soup", {"up_axis": "Z"})[0])["asset_id"]
    folder = api.ctx.store.open(asset_id).folder
    before = (folder / "high_poly.glb").read_bytes()
    with pytest.raises(Exception) as caught:
        api.postprocess(asset_id, {"target_triangles": 200, "texture_size": 256})
    assert "repair" in str(caught.value).lower() or "watertight" in str(caught.value).lower()
    record = json.loads(api.asset(asset_id))
    assert record["status"] == "error" and record["stages"][-1]["error"]
    assert not (folder / "game" / "lods.npz").exists()
    assert (folder / "high_poly.glb").read_bytes() == before


def test_export_can_bring_the_placed_high_poly_for_inspection(api, tmp_path):
    image = tmp_path / "l.png"
    Image.fromarray(l_shape()).save(image)
    options = {"generate": {"resolution": 64, "target_faces": 8000}, "engine": "ue5",
               "postprocess": {"target_triangles": 800, "texture_size": 256, "collision": False, "height_cm": 50},
               "bake": {"ao_samples": 2}, "export": {"use_fbx": False}}
    record_json, _ = api.forge([str(image)], "Inspect", "", "", options)
    asset_id = json.loads(record_json)["asset_id"]
    _, path = api.export(asset_id, "ue5", {"use_fbx": False, "include_high_poly": True})
    files = zip_members(path)
    assert path.endswith("_inspect.zip") and "high_poly.glb" in files and "SM_Inspect.glb" in files
    high = list(trimesh.load(io.BytesIO(files["high_poly.glb"]), file_type="glb").geometry.values())[0]
    lod0 = list(trimesh.load(io.BytesIO(files["SM_Inspect.glb"]), file_type="glb").geometry.values())[0]
    assert np.allclose(high.bounds, lod0.bounds, atol=0.01)  # same place and size as the LODs
