"""Job bookkeeping the runners share: which assets a job holds and their cancel flags, the context a run gets,
and charging a failed GPU call to the quota as ZeroGPU does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import gpu
from .asset import Asset, AssetStore
from .config import Settings
from .errors import Cancelled, InputError
from .quota import QuotaLedger

Progress = Callable[[float, str], None]


class CancelFlags:
    """Which assets a job holds in this process, each with the cancel flag its job checks."""

    def __init__(self):
        self._flags: dict[str, threading.Event] = {}
        self._holders: dict[str, int] = {}  # asset id -> the thread that holds it
        self._guard = threading.Lock()

    @contextmanager
    def claim(self, asset_id: str) -> Iterator[Callable[[], None]]:
        """Hold the asset for one job and yield its cancel check; refuses an asset another job holds.

        Enter it only once every argument has been checked: a refusal before the claim holds nothing. The thread
        that holds an asset may claim it again (forge runs its stages inside one claim, so a cancel between two
        stages is not lost); only the outermost claim releases it.
        """
        me = threading.get_ident()
        with self._guard:  # check and set under one lock: two requests cannot both get the asset
            if asset_id in self._flags:
                if self._holders.get(asset_id) != me:
                    raise InputError("asset_id", asset_id, "an asset that no other job is working on right now")
                event, outermost = self._flags[asset_id], False
            else:
                event, outermost = threading.Event(), True
                self._flags[asset_id], self._holders[asset_id] = event, me
        try:
            yield _cancel_check(asset_id, event)
        finally:
            if outermost:
                with self._guard:
                    if self._flags.get(asset_id) is event:
                        del self._flags[asset_id], self._holders[asset_id]

    def active(self, asset_id: str) -> bool:
        """Whether a job on this asset runs in this server process now."""
        with self._guard:
            return asset_id in self._flags

    def cancel(self, asset_id: str) -> bool:
        """Ask the job holding the asset to stop; False (and nothing held) when no job holds it."""
        with self._guard:
            event = self._flags.get(asset_id)
        if event is not None:
            event.set()
        return event is not None


def _cancel_check(asset_id: str, event: threading.Event) -> Callable[[], None]:
    def check() -> None:
        if event.is_set():
            raise Cancelled(f"asset {asset_id} was cancelled")

    return check


@dataclass
class Context:
    """What stage runners share: settings, the asset store, cancel flags and the quota ledger."""

    settings: Settings
    store: AssetStore
    flags: CancelFlags
    quota: QuotaLedger


@contextmanager
def charged_if_failed(ledger: QuotaLedger, asset: Asset, endpoint: str, estimate: float | None) -> Iterator[None]:
    """ZeroGPU charges a GPU call's requested duration even when the call fails: the ledger does the same."""
    try:
        yield
    except BaseException:
        if estimate is not None and gpu.on_zero_gpu():
            ledger.record(f"{endpoint} (failed)", asset.asset_id, float(gpu.requested_duration(estimate)))
        raise
