"""One model in GPU memory at a time: pipelines load lazily on first use and the previous one is let go."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _free_cuda_cache() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelHost:
    """Holds at most one loaded pipeline; asking for another unloads the one held (ZeroGPU and small cards
    cannot keep TRELLIS.2, TRELLIS and Hunyuan3D-2 resident together)."""

    def __init__(self):
        self._key: str | None = None
        self._model: Any = None
        self._lock = threading.RLock()
        self.loads: list[str] = []  # keys in load order, for diagnostics and tests

    def get(self, key: str, loader: Callable[[], Any]) -> Any:
        """The model for `key`, loading it with `loader()` after releasing whatever else is held."""
        with self._lock:
            if self._key == key and self._model is not None:
                return self._model
            self.release()
            self._model = loader()
            self._key = key
            self.loads.append(key)
            return self._model

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Hold the host for a whole generation, so no other job swaps the model out while it runs."""
        with self._lock:
            yield

    @property
    def held(self) -> str | None:
        return self._key

    def release(self) -> None:
        with self._lock:
            model, self._model, self._key = self._model, None, None
            del model
            gc.collect()
            _free_cuda_cache()


MODEL_HOST = ModelHost()
