"""The web UI in headless Chromium, driven only through its controls: forge a picture into an asset, see it in the
viewer with its checklist, find it in the Library and export it again for Godot. Screenshots stay in the test's
output folder and are checked for content (the viewer shows the model, the checklist shows rows)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from server.local import running_server
from tests.test_silhouette import l_shape

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"),
]
# Software WebGL so the 3D viewer renders without a GPU.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
BACKGROUND = np.array([0.12, 0.12, 0.14]) * 255
JOB_MS = 240_000


def _number(page, label: str, value) -> None:
    """Type into the number box of a control (a slider has one beside its track); labels carry the help text."""
    box = page.get_by_label(label).and_(page.locator("input[type=number]:visible")).first
    box.fill(str(value))
    box.press("Enter")


def _choose(page, label: str, option: str, exact: bool = False) -> None:
    """Pick an option of the visible dropdown with that label (other tabs hold dropdowns of the same name)."""
    page.get_by_label(label, exact=exact).and_(page.locator(":visible")).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def _stages(folder) -> list[dict]:
    """The stage runs of the one asset the browser tests make, read from its record."""
    import json

    (record,) = (folder / "workspace").glob("*/asset.json")
    return json.loads(record.read_text())["stages"]


def _shows_the_model(path) -> float:
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return float((np.abs(pixels - BACKGROUND).sum(axis=-1) > 60).mean())


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("browser")
    with running_server(folder / "workspace") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)
        yield page, folder
        browser.close()


def test_forge_from_the_controls_shows_the_model_and_its_checklist(session):
    page, folder = session
    sample = folder / "l_block.png"
    Image.fromarray(l_shape()).save(sample)
    page.locator("input[type=file]").first.set_input_files(str(sample))
    # "Your views" shows the upload with the view it will be used as, before anything runs.
    page.locator(".thumbnail-item:visible").first.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('.thumbnail-item, .caption-label, figcaption')]"
                           ".some(e => e.innerText.trim() === 'front')", timeout=30_000)
    page.get_by_label("Asset name").first.fill("Browser_L")
    _number(page, "Target triangles", 1500)
    _choose(page, "Texture size", "256")
    page.get_by_text("Generate", exact=True).first.click()  # open the Generate accordion
    _number(page, "Resolution", 96)
    _number(page, "Target faces", 20000)
    page.get_by_text("Bake", exact=True).first.click()
    _number(page, "Ao samples", 4)
    page.get_by_role("button", name="Forge", exact=True).click()
    page.wait_for_function("() => document.body.innerText.includes('Browser_L is ready')", timeout=JOB_MS)
    page.wait_for_timeout(3000)  # let the viewer draw the loaded model
    canvas = page.locator("canvas").first
    canvas.screenshot(path=str(folder / "viewer.png"))
    page.screenshot(path=str(folder / "create.png"), full_page=True)
    shown = _shows_the_model(folder / "viewer.png")
    print(f"viewer pixels showing the model: {shown:.3f}")
    assert shown > 0.02, "the 3D viewer shows nothing but its background"
    text = page.locator("body").inner_text()
    for row in ("watertight", "pass"):
        assert row in text, f"the checklist shows no {row!r}"
    assert "Browser_L_UE5.zip" in text.replace("\n", "")  # the engine package is offered (the name wraps)


def test_the_library_shows_the_asset_and_exports_it_again_for_godot(session):
    page, folder = session
    page.get_by_role("tab", name="Library").click()
    page.get_by_role("button", name="Refresh").click()
    thumbnail = page.locator(".thumbnail-item:visible").first  # the Create tab's cutouts gallery is hidden
    thumbnail.wait_for(state="visible", timeout=60_000)
    page.screenshot(path=str(folder / "library.png"), full_page=True)
    thumbnail.click()
    page.wait_for_function("() => document.body.innerText.includes('Browser_L')", timeout=60_000)
    _choose(page, "Engine", "godot", exact=True)
    page.get_by_role("button", name="Export again").click()
    page.wait_for_function("() => document.body.innerText.replace(/\\s/g, '').includes('Browser_L_Godot.zip')", timeout=JOB_MS)
    page.screenshot(path=str(folder / "library_exported.png"), full_page=True)
    runs_before = len(_stages(folder))
    page.get_by_role("button", name="Finish again with the Create tab's settings").click()
    page.wait_for_function(f"() => {{ const t = document.body.innerText.replace(/\\s/g, ''); "
                           f"return t.includes('Browser_L_UE5.zip') && !t.includes('Browser_L_Godot.zip'); }}",
                           timeout=JOB_MS)
    stages = _stages(folder)[runs_before:]
    assert [run["stage"] for run in stages] == ["postprocess", "bake", "export"]
    assert stages[0]["parameters"]["target_triangles"] == 1500  # the Create tab's control, not the preset's
    shot = np.asarray(Image.open(folder / "library.png").convert("RGB")).astype(int)
    assert np.abs(shot - shot.mean(axis=(0, 1))).sum(axis=-1).max() > 100  # the gallery shows a picture


def test_auto_rig_refuses_a_block_in_words_the_user_sees(session):
    page, folder = session
    page.get_by_role("tab", name="Auto-Rig").click()
    _choose(page, "Method", "template", exact=False)
    page.get_by_role("button", name="Rig this asset").click()
    toast = page.locator(".toast-body").first
    toast.wait_for(state="visible", timeout=JOB_MS)
    page.screenshot(path=str(folder / "rig_refused.png"), full_page=True)
    assert "humanoid" in toast.inner_text().lower()  # the refusal's reason, not a bare "Error"
