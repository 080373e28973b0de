"""tools/build_space_wheels.sh on the CPU: wheel selection, a logged substitution, and the stack's CUDA architectures."""

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "build_space_wheels.sh"
CUBVH_PIN = "JeffreyXiang/cubvh@ce92267a24ef6ad7d2c8ccbc2ae2c021a6597e70"
CUBVH_OTHER = "ashawkey/cubvh@7855c000f95e43742081060d869702b2b2b33d1f"
CUMESH = "JeffreyXiang/CuMesh@cf1a2f07304b5fe388ed86a16e4a0474599df914"


def _archive(folder: Path, spec: str) -> Path:
    """A one-file archive named as the script looks for it (<owner>+<name>-<commit>.tar.gz)."""
    repo, commit = spec.split("@")
    path = folder / f"{repo.replace('/', '+')}-{commit}.tar.gz"
    readme = folder.parent / "README"
    readme.write_text(spec)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(readme, arcname=f"{repo.split('/')[1]}-{commit}/README")
    return path


def _run(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "SOURCES": str(tmp_path / "sources"),
            "WHEELS": str(tmp_path / "wheels")}
    return subprocess.run(["bash", str(SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=60)


def test_only_and_substitute_fetch_the_named_wheel_from_the_substitute_archive(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    _archive(sources, CUMESH)
    _archive(sources, CUBVH_OTHER)  # the pinned cubvh archive is absent: only the substitute can serve
    done = _run(tmp_path, FETCH_ONLY="1", ONLY="cumesh", SUBSTITUTE=f"{CUBVH_PIN}={CUBVH_OTHER}")
    assert done.returncode == 0, done.stderr
    assert f"SUBSTITUTED: {CUBVH_PIN} built from {CUBVH_OTHER}" in done.stderr
    assert sorted(p.name for p in sources.iterdir()) == sorted([
        "JeffreyXiang+CuMesh-cf1a2f07304b5fe388ed86a16e4a0474599df914.tar.gz",
        "ashawkey+cubvh-7855c000f95e43742081060d869702b2b2b33d1f.tar.gz"])


def test_the_stack_arch_list_wins_over_one_set_in_the_environment(tmp_path):
    # This interpreter is not the stack's (3.12 with torch 2.11 on CUDA 13), so the builder check stops the script
    # after it has said which architectures it would build for.
    done = _run(tmp_path, TORCH_CUDA_ARCH_LIST="9.0a")
    assert done.returncode != 0
    assert "TORCH_CUDA_ARCH_LIST=9.0;12.0+PTX" in done.stdout
    quick = _run(tmp_path, TORCH_CUDA_ARCH_LIST="9.0a", SPACE_ARCH_LIST="9.0")
    assert "TORCH_CUDA_ARCH_LIST=9.0\n" in quick.stdout
