"""Stand-ins shared by the model adapters' tests: importable fake modules and ZeroGPU's `spaces` package."""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import pickle
import sys
import types

from server import gpu
from server.generators import modelhost


def fake_module(name: str, package: bool = False, **attributes) -> types.ModuleType:
    """A module holding `attributes`, with a spec (so importlib.util.find_spec finds it once in sys.modules)."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


@contextlib.contextmanager
def on_zero_gpu(monkeypatch, module):
    """`module` reloaded as on ZeroGPU, with a ModelHost of its own: yields (the reloaded module, the durations
    its @spaces.GPU calls asked for). What crosses into and out of a GPU call must survive pickling, since
    ZeroGPU runs it in another process. Afterwards every patch of the test is undone and `module` reloaded."""
    asked = []

    def fake_gpu(duration):
        def wrap(function):
            def call(*args, **kwargs):
                asked.append(duration(*args, **kwargs))
                pickle.loads(pickle.dumps((args, kwargs)))
                result = function(*args, **kwargs)
                pickle.loads(pickle.dumps(result))
                return result
            return call
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=fake_gpu))
    monkeypatch.setattr(gpu, "on_zero_gpu", lambda: True)
    try:
        zero = importlib.reload(module)
        monkeypatch.setattr(zero, "MODEL_HOST", modelhost.ModelHost())
        yield zero, asked
    finally:
        monkeypatch.undo()
        importlib.reload(module)
