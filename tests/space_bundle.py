"""The Hugging Face Space bundle as tools/make_space.py writes it, for the tests that read it or run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_space_bundle(out: Path, timeout: float = 120) -> Path:
    """The bundle at `out`, without model sources or wheels (no network, nothing built here)."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_space.py"), "--out", str(out),
                             "--no-model-sources", "--wheels", str(out.parent / "no-wheels")],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out.resolve())
    return out
