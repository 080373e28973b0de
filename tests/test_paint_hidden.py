"""Hidden sides painted: which texels the generation views saw on a box with one UV chart per side (known
truth), the classical fill, and diffusers' real SDXL inpainting pipeline with tiny random weights on the CPU:
only hidden texels change, visible ones stay exactly as they were, colours stay continuous across UV seams."""

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from server import gpu
from server.bake.padding import Dilation
from server.bake.uvraster import rasterize_uv
from server.errors import InputError
from server.generators import base
from server.generators.modelhost import ModelHost
from server.meshdata import MeshArrays
from server.stages import paint_hidden as stage
from server.stages.paint_hidden import PaintSettings, hidden_texels, paint_hidden, paint_seconds
from server.text2image import inpaint, models

SIZE = 96
MAGENTA = np.array([255, 0, 255], np.uint8)
# side: (outward normal, chart u axis, chart v axis); u x v = normal, so the two triangles face outward.
SIDES = {
    "front": ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
    "back": ((0, 1, 0), (-1, 0, 0), (0, 0, 1)),
    "left": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "right": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "top": ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
    "bottom": ((0, 0, -1), (1, 0, 0), (0, -1, 0)),
}


def charted_box(half=0.5, centre=(0.0, 0.0, 0.5), cells=(3, 3), first_cell=0, subdivisions=4):
    """A box with each side its own UV chart (one cell of a grid, with a gutter), sides split into
    subdivisions x subdivisions quads: (mesh, chart index of each face)."""
    columns, rows = cells
    vertices, faces, uv, chart_of_face = [], [], [], []
    steps = np.linspace(-1.0, 1.0, subdivisions + 1)
    for chart, (normal, u_axis, v_axis) in enumerate(SIDES.values()):
        cell = first_cell + chart
        column, row = cell % columns, cell // columns
        base_index = len(vertices)
        for t in steps:
            for s in steps:
                point = np.asarray(centre) + half * (np.asarray(normal) + s * np.asarray(u_axis)
                                                     + t * np.asarray(v_axis))
                vertices.append(point)
                gutter = 0.08
                uv.append(((column + gutter + (s + 1) / 2 * (1 - 2 * gutter)) / columns,
                           (row + gutter + (t + 1) / 2 * (1 - 2 * gutter)) / rows))
        width = subdivisions + 1
        for j in range(subdivisions):
            for i in range(subdivisions):
                a = base_index + j * width + i
                faces += [(a, a + 1, a + width + 1), (a, a + width + 1, a + width)]
                chart_of_face += [chart, chart]
    return MeshArrays(np.array(vertices), np.array(faces), uv=np.array(uv)), np.array(chart_of_face)


def chart_map(low: MeshArrays, chart_of_face: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Each texel's chart index (-1 outside every chart)."""
    coverage = rasterize_uv(low.uv, low.faces, size)
    charts = np.full((size, size), -1)
    charts[coverage.rows, coverage.cols] = chart_of_face[coverage.face]
    return charts


def painted_box_map(low: MeshArrays, chart_of_face: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The front side wears a wood-like pattern made from its 3D position; every other side is magenta (the
    wrong colour a generator may have smeared there); the gutters are padded as a bake pads them."""
    coverage = rasterize_uv(low.uv, low.faces, size)
    points = coverage.interpolate(low.vertices, low.faces)
    front = chart_of_face[coverage.face] == 0
    colours = np.tile(MAGENTA.astype(np.float64), (len(points), 1))
    x, z = points[front, 0], points[front, 2]
    grain = 0.5 + 0.5 * np.sin(18.0 * z + 3.0 * x)
    colours[front] = np.stack([150 + 60 * grain + 30 * x, 90 + 40 * grain, 40 + 20 * z], axis=1)
    image = np.zeros((size, size, 3))
    image[coverage.rows, coverage.cols] = colours
    return np.clip(np.rint(Dilation(coverage.mask())(image)), 0, 255).astype(np.uint8)


def beyond_the_fade(low, visibility) -> np.ndarray:
    """Hidden texels farther from every seen texel than the fade that blends the old colours into the new."""
    surface = stage.texel_surface(low, visibility.hidden.shape[0])
    seen = visibility.seen[surface.rows, surface.cols]
    distance, _ = cKDTree(surface.points[seen]).query(surface.points)
    far = np.zeros_like(visibility.hidden)
    reach = (stage.FEATHER_TEXELS + 1.0) * surface.texel_length
    far[surface.rows, surface.cols] = ~seen & (distance > reach)
    return far


def seam_steps(low, chart_of_face, image, select):
    """(mean colour step between twin texels on the two sides of a UV seam, the step the colours' own slope
    beside the seam predicts over the same distance, number of twins), over texels where `select` is true.

    Twins are texels of different charts within 1.5 texels on the surface (centres beside a seam lie up to about
    1.4 texels apart across it). The slope on each side is the change from the twin to its neighbour one texel
    farther from the seam. A colour that runs on across the seam steps by about the slope times the distance;
    two charts painted apart step by much more."""
    surface = stage.texel_surface(low, image.shape[0])
    charts = chart_map(low, chart_of_face, image.shape[0])[surface.rows, surface.cols]
    chosen = select[surface.rows, surface.cols]
    colours = image[surface.rows, surface.cols, :3].astype(np.float64) / 255.0
    points, texel = surface.points, surface.texel_length
    tree = cKDTree(points)
    pairs = np.array(sorted(tree.query_pairs(1.5 * texel)))
    pairs = pairs[chosen[pairs[:, 0]] & chosen[pairs[:, 1]] & (charts[pairs[:, 0]] != charts[pairs[:, 1]])]

    def outward(i, j):
        near = [k for k in tree.query_ball_point(points[i], 1.1 * texel)
                if k != i and charts[k] == charts[i] and chosen[k]]
        return max(near, key=lambda k: np.linalg.norm(points[k] - points[j])) if near else None

    steps, predicted = [], []
    for i, j in pairs:
        i2, j2 = outward(i, j), outward(j, i)
        if i2 is None or j2 is None:
            continue
        slope = (np.abs(colours[i] - colours[i2]).mean() / (np.linalg.norm(points[i] - points[i2]) / texel)
                 + np.abs(colours[j] - colours[j2]).mean() / (np.linalg.norm(points[j] - points[j2]) / texel)) / 2
        steps.append(np.abs(colours[i] - colours[j]).mean())
        predicted.append(slope * np.linalg.norm(points[i] - points[j]) / texel)
    return float(np.mean(steps)), float(np.mean(predicted)), len(steps)


@pytest.fixture(scope="module")
def box():
    return charted_box()


def test_the_front_view_sees_exactly_the_front_side(box):
    low, chart_of_face = box
    charts = chart_map(low, chart_of_face)
    visibility = hidden_texels(low, SIZE, ["front"])
    assert np.array_equal(visibility.seen, charts == 0)
    assert np.array_equal(visibility.hidden, charts > 0)
    assert visibility.seen_by == {"front": int((charts == 0).sum())}
    assert abs(visibility.hidden_share - 5 / 6) < 0.02


def test_more_views_see_their_own_sides(box):
    low, chart_of_face = box
    charts = chart_map(low, chart_of_face)
    names = list(SIDES)
    visibility = hidden_texels(low, SIZE, ["front", "left", "top"])
    expected = np.isin(charts, [names.index("front"), names.index("left"), names.index("top")])
    assert np.array_equal(visibility.seen, expected)
    # Our "left" is the camera on -X (Blender's view names): it sees the -X side, not +X.
    assert visibility.seen_by["left"] == int((charts == names.index("left")).sum())


def test_the_views_follow_the_turn_the_mesh_was_given(box):
    low, chart_of_face = box
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about Z
    turned = MeshArrays(low.vertices @ quarter.T, low.faces, uv=low.uv)
    charts = chart_map(low, chart_of_face)
    assert np.array_equal(hidden_texels(turned, SIZE, ["front"], rotation=quarter).seen, charts == 0)
    assert not hidden_texels(turned, SIZE, ["front"]).seen[charts == 0].any()  # unturned: another side


def test_a_side_behind_another_object_is_hidden(box):
    near, near_charts = charted_box(cells=(4, 4), first_cell=0)
    far, far_charts = charted_box(half=0.3, centre=(0.0, 2.0, 0.5), cells=(4, 4), first_cell=6)
    low = MeshArrays(np.vstack([near.vertices, far.vertices]),
                     np.vstack([near.faces, far.faces + len(near.vertices)]), uv=np.vstack([near.uv, far.uv]))
    charts = chart_map(low, np.concatenate([near_charts, far_charts + 6]))
    visibility = hidden_texels(low, SIZE, ["front"])
    assert visibility.seen[charts == 0].all()  # the near box's front
    assert not visibility.seen[charts == 6].any()  # the far box's front faces the camera but is behind
    assert visibility.hidden[charts == 6].all()


def test_the_classical_fill_repaints_only_hidden_texels(box):
    low, chart_of_face = box
    image = painted_box_map(low, chart_of_face)
    result = paint_hidden(image, low, ["front"])
    visible, hidden = result.visibility.seen, result.visibility.hidden
    far = beyond_the_fade(low, result.visibility)
    assert far.sum() > 0.6 * hidden.sum()
    assert result.image.dtype == np.uint8 and result.image.shape == image.shape
    assert np.array_equal(result.image[visible], image[visible])
    magenta = (np.abs(result.image[far].astype(int) - MAGENTA).sum(axis=1) < 60)
    assert not magenta.any()
    palette = image[visible].astype(int)
    assert (result.image[far] >= palette.min(axis=0) - 2).all()
    assert (result.image[far] <= palette.max(axis=0) + 2).all()
    # Beside the seen side the old colour fades out: partly kept one texel away, gone beyond the fade.
    changed = np.abs(result.image.astype(int) - image.astype(int)).sum(axis=2)
    assert (changed[hidden & ~far] > 0).mean() > 0.9 and (changed[far] > 100).all()
    assert result.record["method"] == "classical" and result.record["painted"].startswith("classical")
    assert result.record["hidden_texels"] == int(hidden.sum()) and result.record["gpu_seconds"] == 0.0


def test_the_classical_fill_is_continuous_across_uv_seams(box, monkeypatch):
    low, chart_of_face = box
    image = painted_box_map(low, chart_of_face)
    result = paint_hidden(image, low, ["front"])
    far = beyond_the_fade(low, result.visibility)
    step, predicted, count = seam_steps(low, chart_of_face, result.image, far)
    assert count > 100
    assert step <= 2.0 * predicted + 0.005, (step, predicted)
    assert step < 0.02  # under 5 of 255 levels
    # Telea fills each chart apart in UV space: without the blend on the surface the charts meet at a step.
    monkeypatch.setattr(stage, "SEAM_PASSES", 0)
    raw = paint_hidden(image, low, ["front"])
    raw_step, raw_predicted, _ = seam_steps(low, chart_of_face, raw.image, far)
    assert raw_step > 2.0 * raw_predicted + 0.005, (raw_step, raw_predicted)


def test_float_rgba_maps_come_back_as_float_rgba(box):
    low, chart_of_face = box
    image = painted_box_map(low, chart_of_face)
    rgba = np.dstack([image.astype(np.float32) / 255.0, np.ones(image.shape[:2], np.float32)])
    result = paint_hidden(rgba, low, ["front"])
    visible = result.visibility.seen
    assert result.image.dtype == np.float32 and result.image.shape == (SIZE, SIZE, 4)
    assert np.array_equal(result.image[visible], rgba[visible])
    assert np.allclose(result.image[..., 3][result.visibility.covered], 1.0)


# SDXL inpainting with tiny random weights: diffusers' real StableDiffusionXLInpaintPipeline on the CPU.


@pytest.fixture(scope="module")
def inpaint_folder(tmp_path_factory):
    pytest.importorskip("torch", reason="PyTorch is not installed (the test extra installs it on 3.11)")
    pytest.importorskip("diffusers", reason="diffusers is not installed (pip install diffusers transformers)")
    from tests.test_text2image_models import tiny_sdxl

    return tiny_sdxl(tmp_path_factory.mktemp("tiny_sdxl_inpaint"), inpaint=True)


@pytest.fixture
def no_weights(monkeypatch):
    monkeypatch.setattr(base, "cached_on_hub", lambda repo, filename: False)
    monkeypatch.setattr(models, "cached_on_hub", lambda repo, filename: False)
    monkeypatch.setattr(models, "cuda_present", lambda: False)
    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: False)
    monkeypatch.delenv(base.DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv(models.INPAINT.weights_env, raising=False)
    monkeypatch.setenv(models.CPU_ENV, "1")


@pytest.fixture
def inpainter(inpaint_folder, no_weights, monkeypatch):
    """The tiny inpainting pipeline as this server's SDXL inpainting weights; every job the GPU call gets."""
    monkeypatch.setenv(models.INPAINT.weights_env, str(inpaint_folder))
    host = ModelHost()
    monkeypatch.setattr(inpaint, "MODEL_HOST", host)
    jobs = []
    real = inpaint.inpaint_views

    def spy(job):
        jobs.append(job)
        return real(job)

    monkeypatch.setattr(inpaint, "inpaint_views", spy)
    return host, jobs


DIFFUSION = PaintSettings(method="diffusion", prompt="weathered oak planks", strength=0.8, steps=2,
                          resolution=64, guidance=5.0, seed=3)


def test_sdxl_inpainting_repaints_only_hidden_texels(box, inpainter):
    host, jobs = inpainter
    low, chart_of_face = box
    image = painted_box_map(low, chart_of_face)
    result = paint_hidden(image, low, ["front"], DIFFUSION)
    visible, hidden = result.visibility.seen, beyond_the_fade(low, result.visibility)
    assert result.record["painted"] == "sdxl-inpaint over back, left, right, top, bottom"
    assert host.loads and type(host.get(host.loads[0], lambda: None)).__name__ == "StableDiffusionXLInpaintPipeline"
    assert np.array_equal(result.image[visible], image[visible])
    assert not (np.abs(result.image[hidden].astype(int) - MAGENTA).sum(axis=1) < 60).any()
    classical = paint_hidden(image, low, ["front"])
    assert np.abs(result.image[hidden].astype(int) - classical.image[hidden]).mean() > 1.0  # the model painted
    assert result.record["gpu_seconds"] > 0 and result.record["gpu_estimate_s"] == paint_seconds(["front"], DIFFUSION)


def test_the_model_starts_from_the_assets_own_colours_and_the_settings(box, inpainter):
    _, jobs = inpainter
    low, chart_of_face = box
    paint_hidden(painted_box_map(low, chart_of_face), low, ["front"], DIFFUSION)
    (job,) = jobs
    assert len(job.images) == 5 and all(image.shape == (64, 64, 3) for image in job.images)
    assert (job.prompt, job.strength, job.steps, job.guidance, job.seed) == ("weathered oak planks", 0.8, 2, 5.0, 3)
    for picture, mask in zip(job.images, job.masks):
        assert mask.any()
        # What the model starts from is the classical fill of the visible colours: no magenta anywhere.
        assert not (np.abs(picture.astype(int) - MAGENTA).sum(axis=2) < 60).any()
        # Outside the object the picture is white and never painted.
        assert not mask[0].any() and (picture[0] == 255).all()


def test_sdxl_inpainting_stays_continuous_across_uv_seams(box, inpainter):
    low, chart_of_face = box
    result = paint_hidden(painted_box_map(low, chart_of_face), low, ["front"], DIFFUSION)
    far = beyond_the_fade(low, result.visibility)
    step, predicted, count = seam_steps(low, chart_of_face, result.image, far)
    assert count > 100
    assert step <= 2.0 * predicted + 0.005, (step, predicted)


VIEW_COLOURS = {"back": (220, 40, 40), "left": (40, 40, 220), "right": (40, 200, 40), "top": (230, 230, 40),
                "bottom": (40, 220, 220)}


def test_sides_painted_from_different_views_meet_without_a_step(box, inpainter, monkeypatch):
    """Each view paints a flat colour of its own (a stand-in for the model's call): where two views' sides meet,
    on a box edge that is also a UV seam, the colours run into each other instead of stepping."""
    low, chart_of_face = box
    order = stage.paint_views(("front",))

    def flat(job):
        return tuple(np.full_like(image, VIEW_COLOURS[name]) for name, image in zip(order, job.images)), 0.1

    monkeypatch.setattr(inpaint, "inpaint_views", flat)
    settings = PaintSettings(method="diffusion", resolution=64, match_colours=False)
    result = paint_hidden(painted_box_map(low, chart_of_face), low, ["front"], settings)
    far = beyond_the_fade(low, result.visibility)
    step, predicted, count = seam_steps(low, chart_of_face, result.image, far)
    assert count > 100
    assert step <= 2.0 * predicted + 0.005, (step, predicted)
    # In the middle of each side (flat normals there) the side wears its own view's colour.
    surface = stage.texel_surface(low, SIZE)
    for name, (normal, _, _) in SIDES.items():
        if name != "front":
            middle = np.linalg.norm(surface.points - (np.array([0, 0, 0.5]) + 0.5 * np.array(normal)), axis=1) < 0.1
            colours = result.image[surface.rows[middle], surface.cols[middle]].astype(float)
            assert len(colours) and np.abs(colours - VIEW_COLOURS[name]).max() <= 2, name
    # With normals that are not shared across the seams (each side keeps its own), and no blend on the surface,
    # the same paint steps at the seams: the measure sees a step when there is one.
    monkeypatch.setattr(stage, "welded_vertex_normals",
                        lambda vertices, faces: trimesh.Trimesh(vertices, faces, process=False).vertex_normals)
    monkeypatch.setattr(stage, "SEAM_PASSES", 0)
    raw = paint_hidden(painted_box_map(low, chart_of_face), low, ["front"], settings)
    raw_step, raw_predicted, _ = seam_steps(low, chart_of_face, raw.image, far)
    assert raw_step > 2.0 * raw_predicted + 0.005, (raw_step, raw_predicted)


def test_a_preloaded_inpainting_model_is_pinned_and_used(box, inpainter, inpaint_folder):
    host, jobs = inpainter
    assert inpaint.preload().endswith(f"loaded from {inpaint_folder} on cpu")
    low, chart_of_face = box
    paint_hidden(painted_box_map(low, chart_of_face), low, ["front", "left", "top", "right"], DIFFUSION)
    assert len(jobs) == 1 and len(jobs[0].images) == 2  # back and bottom
    assert host.loads == host.pinned and host.held is None


def test_without_inpainting_weights_the_classical_fill_runs_and_says_why(box, no_weights):
    with pytest.raises(models.ModelUnavailable, match="sdxl-inpaint cannot run on this server"):
        inpaint.preload()
    low, chart_of_face = box
    image = painted_box_map(low, chart_of_face)
    result = paint_hidden(image, low, ["front"], DIFFUSION)
    assert result.record["painted"].startswith("classical (the inpainting model cannot run: ")
    assert models.INPAINT.weights_env in result.record["painted"]
    assert np.array_equal(result.image, paint_hidden(image, low, ["front"]).image)


def test_an_inpainting_request_over_the_quota_is_refused_before_any_model_loads(box, inpainter):
    host, jobs = inpainter
    low, chart_of_face = box
    with pytest.raises(gpu.QuotaExceeded) as refused:
        paint_hidden(painted_box_map(low, chart_of_face), low, ["front"], DIFFUSION, quota_left_s=1)
    assert "hidden-side painting (5 views)" in str(refused.value)
    assert host.loads == [] and jobs == []


def test_the_quota_estimate_is_shown_before_the_paint_runs():
    assert paint_seconds(["front"]) == 0.0  # classical: no GPU
    five = paint_seconds(["front"], DIFFUSION)
    one = paint_seconds(["front", "left", "back", "right", "top"], DIFFUSION)
    assert five > one > gpu.START_UP_S
    larger = paint_seconds(["front"], PaintSettings(method="diffusion", resolution=1024))
    assert larger > five
    weaker = paint_seconds(["front"], PaintSettings(method="diffusion", resolution=1024, strength=0.3))
    assert weaker < larger  # img2img-style inpainting runs only strength x steps


@pytest.mark.parametrize("call, argument", [
    (lambda low, image: paint_hidden(image, low, ["side"]), "views"),
    (lambda low, image: paint_hidden(image, low, []), "views"),
    (lambda low, image: paint_hidden(image, low, "front"), "views"),
    (lambda low, image: paint_hidden(image[:, :50], low, ["front"]), "base_color"),
    (lambda low, image: paint_hidden(image.astype(np.float32), low, ["front"]), "base_color"),
    (lambda low, image: paint_hidden(image, MeshArrays(low.vertices, low.faces), ["front"]), "low_poly.uv"),
    (lambda low, image: paint_hidden(image, low, ["front"], PaintSettings(method="magic")), "paint.method"),
    (lambda low, image: paint_hidden(image, low, ["front"], PaintSettings(strength=0)), "paint.strength"),
    (lambda low, image: paint_hidden(image, low, ["front"], PaintSettings(strength=1.5)), "paint.strength"),
    (lambda low, image: paint_hidden(image, low, ["front"], PaintSettings(resolution=100)), "paint.resolution"),
    (lambda low, image: paint_hidden(image, low, ["front"], PaintSettings(prompt="oak\x1b[0m")), "paint.prompt"),
    (lambda low, image: paint_hidden(image, low, ["front"], rotation=np.ones((3, 3))), "rotation"),
])
def test_bad_input_is_refused_by_name(box, call, argument):
    low, chart_of_face = box
    with pytest.raises(InputError) as refused:
        call(low, painted_box_map(low, chart_of_face))
    assert refused.value.argument == argument


def test_bake_paints_the_sides_no_view_saw_when_asked(tmp_path, monkeypatch):
    """Through the API: bake with paint_hidden repaints only texels the front view did not see, and says so."""
    import json

    from PIL import Image, ImageDraw

    from server.api import ForgeApi
    from server.config import load_settings
    from server.errors import InputError

    monkeypatch.setenv("O3F_WORKSPACE", str(tmp_path / "workspace"))
    picture = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(picture).ellipse([30, 20, 130, 140], fill=(40, 160, 60, 255))
    ImageDraw.Draw(picture).rectangle([60, 50, 100, 110], fill=(200, 40, 40, 255))
    picture.save(tmp_path / "front.png")
    api = ForgeApi(load_settings())
    record, _ = api.generate([str(tmp_path / "front.png")], "Painted", "silhouette", "front", "", 0,
                             {"resolution": 64, "target_faces": 5000})
    asset_id = json.loads(record)["asset_id"]
    api.postprocess(asset_id, {"target_triangles": 800, "texture_size": 256, "max_hulls": 2})
    folder = api.ctx.store.open(asset_id).folder
    api.bake(asset_id, {"ao_samples": 2, "texture_size": 256})
    plain = np.asarray(Image.open(folder / "textures" / "base_color.png"))
    with pytest.raises(InputError, match="options.paint_hidden='brush'"):
        api.bake(asset_id, {"paint_hidden": {"brush": 1}})
    with pytest.raises(InputError, match="options.paint_hidden.strength=2"):
        api.bake(asset_id, {"paint_hidden": {"method": "classical", "strength": 2}})
    baked = json.loads(api.bake(asset_id, {"ao_samples": 2, "texture_size": 256, "paint_hidden": "classical"}))
    painted = np.asarray(Image.open(folder / "textures" / "base_color.png"))
    paint = baked["stages"][-1]["parameters"]["paint_hidden"]
    assert paint["views"] == ["front"] and paint["method"] == "classical" and 0.2 < paint["hidden_share"] < 0.8
    assert paint["painted"].startswith("classical")
    changed = np.any(painted != plain, axis=-1)
    assert changed.any() and changed.mean() < 0.8  # the back was repainted, the front kept
