"""Shared pytest fixtures: the bundled test house and Blender renders of it with known truth."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTS_DIR / "data"
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

GREY = (0.85, 0.85, 0.85)


def _require_bpy():
    # find_spec only locates the module; bpy itself is imported in render_views' subprocess.
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed; cannot render test views")


@pytest.fixture(scope="session")
def house_glb() -> Path:
    """tests/data/house.glb: watertight vertex-coloured house, Z up, door on the front (-Y)."""
    path = DATA_DIR / "house.glb"
    assert path.is_file(), f"{path} missing; run python tests/data/make_house.py"
    return path


@pytest.fixture(scope="session")
def house_views(house_glb, tmp_path_factory) -> dict:
    """{'front'|'left'|'back'|'right': Path} of transparent 384 px RGBA renders of the house.

    Rendered once per session; views.json (ortho_scale, cameras) sits next to the PNGs.
    """
    _require_bpy()
    from blender_render import render_views

    out = tmp_path_factory.mktemp("house_views")
    return render_views(house_glb, out, views=("front", "left", "back", "right"), size=384)


@pytest.fixture(scope="session")
def house_views_on_grey(house_glb, tmp_path_factory) -> dict:
    """{'front': Path (opaque RGB on 0.85 grey), 'front_mask': Path (L, 255 = house),
    'background': (0.85, 0.85, 0.85)}, 384 px, rendered once per session."""
    _require_bpy()
    from blender_render import render_views

    out = tmp_path_factory.mktemp("house_views_on_grey")
    paths = render_views(house_glb, out, views=("front",), size=384, background=GREY)
    return {"front": paths["front"], "front_mask": out / "front_mask.png", "background": GREY}


@pytest.fixture(autouse=True)
def attention_chosen_per_test(monkeypatch):
    """Each test chooses TRELLIS's attention backend afresh: the server makes that choice once per process and
    writes it to the environment, which would otherwise carry from one test to the next."""
    from server.generators import attention

    monkeypatch.setattr(attention, "_choice", None)
    monkeypatch.delenv("ATTN_BACKEND", raising=False)
    monkeypatch.delenv("SPARSE_ATTN_BACKEND", raising=False)
