"""GPU-seconds ledger per day against a daily limit (ZeroGPU charges the requested duration)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

from .asset import atomic_write_json, now_iso


class QuotaLedger:
    """Records every call's GPU seconds in the workspace; days are UTC dates."""

    def __init__(self, path: Path, daily_limit_seconds: int):
        self.path = Path(path)
        self.daily_limit = int(daily_limit_seconds)
        self._lock = threading.Lock()

    @staticmethod
    def today() -> str:
        return datetime.now(timezone.utc).strftime("%Y-%m-%d")

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"days": {}}
        except json.JSONDecodeError:
            # A damaged ledger must not stop the server; start a fresh one beside it.
            self.path.replace(self.path.with_suffix(".damaged.json"))
            return {"days": {}}

    def record(self, endpoint: str, asset_id: str | None, gpu_seconds: float) -> None:
        with self._lock:
            ledger = self._read()
            calls = ledger["days"].setdefault(self.today(), [])
            calls.append({"time": now_iso(), "endpoint": endpoint, "asset_id": asset_id,
                          "gpu_seconds": round(float(gpu_seconds), 3)})
            atomic_write_json(self.path, ledger)

    def left_today(self) -> float:
        """GPU seconds still free today (never negative)."""
        return max(0.0, self.daily_limit - self.used_today())

    def used_today(self) -> float:
        with self._lock:
            calls = self._read()["days"].get(self.today(), [])
        return float(sum(call["gpu_seconds"] for call in calls))

    def summary(self) -> dict:
        with self._lock:
            calls = self._read()["days"].get(self.today(), [])
        used = float(sum(call["gpu_seconds"] for call in calls))
        return {"day": self.today(), "daily_limit_seconds": self.daily_limit,
                "used_seconds": round(used, 3), "left_seconds": round(max(0.0, self.daily_limit - used), 3),
                "calls_today": len(calls), "recent_calls": calls[-20:]}
