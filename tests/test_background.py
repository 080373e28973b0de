"""Background removal on real photos, renders with a known mask, and pictures with no object."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image

from server.errors import ForgeError
from server.stages.background import crop_square, cut_out, object_mask, rembg_status
from tests.measures import iou

# scikit-image's bundled sample data (see tests/data/README.md for licences).
SKIMAGE_DATA = os.path.join(os.path.dirname(skimage.__file__), "data")


def photo(name):
    return np.asarray(Image.open(os.path.join(SKIMAGE_DATA, name)).convert("RGBA"))


def fitted_disc(mask):
    rows, cols = np.nonzero(mask)
    radius = (np.ptp(rows) + np.ptp(cols)) / 4
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    return (yy - rows.mean()) ** 2 + (xx - cols.mean()) ** 2 < radius**2


def test_real_alpha_is_kept_exactly():
    rgba = np.zeros((200, 300, 4), np.uint8)
    rgba[50:150, 100:180] = (200, 100, 50, 255)
    mask, method = object_mask(rgba)
    assert method == "alpha" and mask.sum() == 100 * 80 and mask[50:150, 100:180].all()


def test_opaque_alpha_channel_is_not_mistaken_for_a_cutout():
    mask, method = object_mask(photo("logo.png"))  # RGBA, but every pixel is opaque
    assert method == "classical"
    assert iou(mask, fitted_disc(mask)) > 0.9  # the logo is a disc on white


def test_photo_of_a_round_object_on_a_dark_background():
    rgba = photo("retina.jpg")  # a real fundus photograph, CC0
    mask, method = object_mask(rgba)
    assert method == "classical"
    assert 0.6 < mask.mean() < 0.9
    assert iou(mask, fitted_disc(mask)) > 0.97


def test_render_on_a_plain_background_matches_its_true_mask(house_views_on_grey):
    rgba = np.asarray(Image.open(house_views_on_grey["front"]).convert("RGBA"))
    truth = np.asarray(Image.open(house_views_on_grey["front_mask"]).convert("L")) >= 128
    mask, method = object_mask(rgba)
    assert method == "classical"
    score = iou(mask, truth)
    print(f"GrabCut IoU against the rendered alpha: {score:.4f}")
    assert score > 0.95


@pytest.mark.parametrize("colour", [(128, 128, 128), (250, 250, 250), (5, 5, 5)])
def test_a_picture_with_no_object_is_refused(colour):
    plain = np.zeros((256, 256, 4), np.uint8)
    plain[..., :3] = colour
    plain[..., 3] = 255
    noise = np.random.default_rng(0).integers(-3, 4, plain[..., :3].shape)
    plain[..., :3] = np.clip(plain[..., :3].astype(int) + noise, 0, 255)
    with pytest.raises(ForgeError, match="found no object"):
        cut_out(plain)


def test_crop_is_square_centred_and_padded():
    rgba = np.zeros((300, 500, 4), np.uint8)
    rgba[100:200, 300:340] = (10, 200, 10, 255)
    out = cut_out(rgba)
    assert out.method == "alpha" and out.rgba.shape[0] == out.rgba.shape[1]
    alpha = out.rgba[..., 3] > 0
    rows, cols = np.nonzero(alpha)
    side = out.rgba.shape[0]
    assert abs((rows.min() + rows.max() + 1) / 2 - side / 2) <= 1
    assert abs((cols.min() + cols.max() + 1) / 2 - side / 2) <= 1
    assert rows.min() > 0 and rows.max() < side - 1  # padding all round
    assert np.all(out.rgba[alpha][:, :3] == (10, 200, 10))


def test_crop_near_the_border_pads_with_transparency():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[0:60, 0:20] = (255, 0, 0, 255)
    mask = rgba[..., 3] > 0
    out = crop_square(rgba, mask, padding=0.25)
    assert out.shape[0] == out.shape[1] == 90
    assert (out[..., 3] > 0).sum() == mask.sum()


def test_rembg_says_whether_it_can_run_and_why_not(monkeypatch, tmp_path):
    def installed(*present):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: object() if name in present else None)

    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    installed("onnxruntime")
    assert rembg_status() == (False, "rembg is not installed (pip install 'rembg[cpu]')")
    installed("rembg")
    assert rembg_status() == (False, "onnxruntime is not installed (pip install 'rembg[cpu]')")
    installed("rembg", "onnxruntime")
    assert rembg_status() == (False, "rembg's model u2net.onnx is not in $U2NET_HOME or ~/.u2net")
    (tmp_path / "u2net.onnx").write_bytes(b"weights")
    assert rembg_status() == (True, f"rembg with {tmp_path / 'u2net.onnx'}")


def test_asking_whether_rembg_can_run_does_not_import_it():
    # rembg's first import compiles pymatting's numba kernels (33 s on two cores with a fresh install), which made
    # the add-on's first `health` call time out; the check finds the packages without importing them.
    probe = ("import sys; from server.stages.background import rembg_status; rembg_status(); "
             "print(sorted(m for m in ('rembg', 'pymatting', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
