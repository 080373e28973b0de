"""Generator registry: every generator reports a reason, 'auto' follows its table, named choices keep their errors."""

import sys

import pytest

from server.errors import InputError
from server.generators import registry


class Stub:
    def __init__(self, name, max_views, available=True, refuse=None):
        self.name, self.title, self.max_views = name, name, max_views
        self.available, self.refuse = available, refuse

    def availability(self):
        return self.available, "stub ready" if self.available else f"{self.name} is switched off"

    def check_settings(self, settings, view_count):
        if self.refuse and settings.get(self.refuse):
            raise InputError(f"options.{self.refuse}", True, "false for this stub")


@pytest.fixture
def stubs(monkeypatch):
    """Replace the model generators with stubs whose availability the test sets."""

    def install(*available):
        for name, views in (("trellis2", 1), ("trellis", 4), ("hunyuan3d-2", 4)):
            monkeypatch.setitem(registry.GENERATORS, name, Stub(name, views, name in available))
        return registry.GENERATORS

    return install


def test_report_lists_every_generator_with_a_reason():
    rows = {row["name"]: row for row in registry.report()}
    assert list(rows) == ["silhouette", "trellis2", "trellis", "hunyuan3d-2"]
    assert [row["max_views"] for row in rows.values()] == [5, 1, 4, 4]
    assert rows["silhouette"]["available"] is True and rows["silhouette"]["reason"].startswith("built in")


def test_report_carries_each_generators_own_verdict_and_reason(stubs):
    stubs("trellis")
    verdicts = {row["name"]: (row["available"], row["reason"]) for row in registry.report()}
    assert verdicts["trellis2"] == (False, "trellis2 is switched off")
    assert verdicts["trellis"] == (True, "stub ready")
    assert verdicts["hunyuan3d-2"] == (False, "hunyuan3d-2 is switched off")


def test_a_missing_hunyuan_adapter_becomes_a_reason_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "server.generators.hunyuan", None)
    placeholder = registry._hunyuan()
    available, reason = placeholder.availability()
    assert (placeholder.name, placeholder.module, placeholder.max_views) == ("hunyuan3d-2", "hy3dgen", 4)
    assert not available and "Hunyuan3D-2 adapter could not be loaded" in reason
    with pytest.raises(InputError, match="generator='hunyuan3d-2'"):
        placeholder.generate(None)


AUTO_TABLE = [
    # available model generators, views, kind, must_stand -> chosen
    ({"trellis2", "trellis", "hunyuan3d-2"}, 1, "prop", False, "trellis2"),
    ({"trellis2", "trellis", "hunyuan3d-2"}, 1, "environment", False, "trellis2"),
    ({"trellis", "hunyuan3d-2"}, 1, "prop", False, "hunyuan3d-2"),
    ({"trellis"}, 1, "prop", False, "trellis"),
    ({"trellis2", "trellis", "hunyuan3d-2"}, 1, "character", False, "hunyuan3d-2"),
    ({"trellis2", "trellis"}, 1, "character", False, "trellis2"),
    ({"trellis2", "trellis", "hunyuan3d-2"}, 4, "prop", False, "hunyuan3d-2"),
    ({"trellis2", "trellis", "hunyuan3d-2"}, 2, "character", False, "hunyuan3d-2"),
    ({"trellis2", "trellis"}, 3, "prop", False, "trellis"),
    ({"trellis2"}, 3, "prop", False, "silhouette"),
    (set(), 1, "prop", False, "silhouette"),
    (set(), 4, "character", False, "silhouette"),
    ({"trellis2", "trellis", "hunyuan3d-2"}, 1, "prop", True, "trellis"),
    ({"trellis2", "hunyuan3d-2"}, 1, "prop", True, "trellis2"),
]


@pytest.mark.parametrize("available,views,kind,must_stand,chosen", AUTO_TABLE)
def test_auto_choice_table(stubs, available, views, kind, must_stand, chosen):
    stubs(*available)
    assert registry.choose("auto", views, kind, {"must_stand": must_stand}).name == chosen


def test_auto_skips_a_generator_that_refuses_the_settings(stubs, monkeypatch):
    stubs("trellis2", "trellis")
    monkeypatch.setitem(registry.GENERATORS, "trellis", Stub("trellis", 4, True, refuse="must_stand"))
    assert registry.choose("auto", 1, "prop", {"must_stand": True}).name == "trellis2"


def test_named_choices_keep_their_messages(stubs):
    stubs("trellis")
    with pytest.raises(InputError, match="generator='dreamfusion': expected one of auto, silhouette, trellis2"):
        registry.choose("dreamfusion", 1, "prop")
    with pytest.raises(InputError, match="trellis2 is not: trellis2 is switched off"):
        registry.choose("trellis2", 1, "prop")
    with pytest.raises(InputError, match="images='5 images': expected at most 4 for trellis"):
        registry.choose("trellis", 5, "prop")
    assert registry.choose(" Silhouette ", 5, "prop").name == "silhouette"
    assert registry.choose("", 1, "prop").name == "trellis"
