"""One model in GPU memory at a time: pipelines load lazily on first use and the previous one is let go; models a
Space serves are pinned at start-up instead (loaded once, outside any GPU call, and never let go)."""

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
        self._pinned: dict[str, Any] = {}
        self.loads: list[str] = []  # keys in load order, for diagnostics and tests

    def get(self, key: str, loader: Callable[[], Any]) -> Any:
        """The model for `key`, loading it with `loader()` after releasing whatever else is held."""
        with self._lock:
            if key in self._pinned:
                return self._pinned[key]
            if self._key == key and self._model is not None:
                return self._model
            self.release()
            self._model = loader()
            self._key = key
            self.loads.append(key)
            return self._model

    def pin(self, key: str, loader: Callable[[], Any]) -> Any:
        """Load `key` now and keep it for good (ZeroGPU: weights move to CUDA at module level, in the parent
        process, so no GPU call ever loads them); get(key) answers it from then on."""
        with self._lock:
            if key not in self._pinned:
                if self._key == key:
                    self._pinned[key], self._model, self._key = self._model, None, None
                else:
                    self._pinned[key] = loader()
                    self.loads.append(key)
            return self._pinned[key]

    @property
    def pinned(self) -> list[str]:
        return sorted(self._pinned)

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
