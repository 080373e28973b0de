"""GPU discipline: computed @spaces.GPU durations, the quota guard, and the plain path off ZeroGPU."""

import sys
import types

import pytest

from server import gpu
from server.errors import ForgeError


def test_durations_grow_with_the_work_and_are_capped():
    assert gpu.generation_seconds("fast") < gpu.generation_seconds("balanced") < gpu.generation_seconds("hero")
    assert gpu.generation_seconds("balanced", views=4) > gpu.generation_seconds("balanced", views=1)
    assert gpu.bake_seconds(4096, 1_300_000) > gpu.bake_seconds(2048, 1_300_000) > gpu.bake_seconds(2048, 10_000)
    assert gpu.requested_duration(12.1) == 13
    assert gpu.requested_duration(10_000) == gpu.MAX_DURATION_S


def test_the_quota_guard_refuses_before_any_work_with_the_zero_gpu_title():
    gpu.check_quota(40.0, left_s=41.0, what="generate")
    with pytest.raises(gpu.QuotaExceeded, match="ZeroGPU quota exceeded: generate asks for 41 s") as caught:
        gpu.check_quota(40.2, left_s=40.0, what="generate")
    assert isinstance(caught.value, ForgeError)


def test_off_zero_gpu_the_function_runs_as_it_is(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def work(x):
        return x * 2

    assert gpu.gpu_task(lambda x: 10)(work) is work


def test_on_zero_gpu_spaces_gets_a_duration_computed_from_the_arguments(monkeypatch):
    seen = {}

    def fake_gpu(duration):
        def wrap(function):
            def run(*args, **kwargs):
                seen["duration"] = duration(*args, **kwargs)
                return function(*args, **kwargs)
            return run
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=fake_gpu))
    monkeypatch.setattr(gpu.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")

    @gpu.gpu_task(lambda size, triangles: gpu.bake_seconds(size, triangles))
    def bake(size, triangles):
        return size + triangles

    assert bake(2048, 1_000_000) == 1_002_048
    assert seen["duration"] == gpu.requested_duration(gpu.bake_seconds(2048, 1_000_000))
    assert bake.__name__ == "bake"
