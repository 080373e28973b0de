"""One browser test: headless Chromium opens the UI, generates from a sample image, and the viewer shows it."""

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


def test_ui_generates_and_shows_the_model(tmp_path):
    from playwright.sync_api import sync_playwright

    sample = tmp_path / "l_shape.png"
    Image.fromarray(l_shape()).save(sample)
    screenshot = tmp_path / "ui.png"
    with running_server(tmp_path / "workspace") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Generate").click()
        page.locator("input[type=file]").first.set_input_files(str(sample))
        page.get_by_label("Asset name").first.fill("Browser_L")
        page.get_by_role("button", name="Generate").click()
        canvas = page.locator("canvas").first
        canvas.wait_for(state="visible", timeout=120_000)
        page.wait_for_function("() => document.body.innerText.includes('\"status\": \"ready\"')",
                               timeout=120_000)
        page.wait_for_timeout(3000)  # let the viewer draw the loaded model
        canvas.screenshot(path=str(screenshot))
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    background = np.array([0.12, 0.12, 0.14]) * 255
    differs = np.abs(pixels - background).sum(axis=-1) > 60
    print(f"viewer pixels showing the model: {differs.mean():.3f}")
    assert differs.mean() > 0.02, "the 3D viewer shows nothing but its background"
    reds = (pixels[..., 0] > 120) & (pixels[..., 0] > pixels[..., 2] + 40)
    assert reds.mean() > 0.005, "the model's red colour is not visible in the viewer"
