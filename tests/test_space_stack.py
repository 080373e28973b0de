"""The Space's stack: pinned model sources (tree hashes), our compiled wheels (tags, lock file), and their
agreement with the front matter and requirements. Archives and wheels are made in the test."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "space"))
import model_sources  # noqa: E402
import space_wheels  # noqa: E402
from install_wheels import install_wheels  # noqa: E402

STACK = space_wheels.load(ROOT / "vendor")[0]


def _archive(path: Path, top: str, files: dict[str, bytes], link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(f"{top}/{link}")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def _manifest(folder: Path, entries: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for entry in entries:
        lines.append("[[source]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in entry.items())
    (folder / "model.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


FILES = {"pkg/__init__.py": b"VALUE = 1\n", "pkg/sub/core.py": b"def f():\n    return 2\n",
         "README.md": b"not copied\n", "pkgextra/x.py": b"not under pkg\n"}
COMMIT = "a" * 40


def _source(tmp_path: Path, files=FILES, tree=None, **extra) -> tuple[Path, Path]:
    archives = tmp_path / "archives"
    archives.mkdir(exist_ok=True)
    _archive(archives / f"owner+repo-{COMMIT}.tar.gz", f"repo-{COMMIT}", files, extra.pop("link", None))
    wanted = {k: v for k, v in FILES.items() if k.startswith("pkg/")}
    entry = {"repo": "owner/repo", "commit": COMMIT, "paths": ["pkg"],
             "tree_sha256": tree or model_sources.tree_sha256(wanted), **extra}
    return _manifest(tmp_path / "vendor", [entry]), archives


def test_sources_are_placed_from_a_local_archive_when_the_tree_hash_matches(tmp_path):
    vendor, archives = _source(tmp_path)
    bundle = tmp_path / "bundle"
    lines = model_sources.add_sources(bundle, vendor, archives, download=False)
    assert lines == [f"owner/repo@{COMMIT[:12]}: 2 files -> /"]
    assert (bundle / "pkg" / "sub" / "core.py").read_bytes() == FILES["pkg/sub/core.py"]
    assert not (bundle / "README.md").exists() and not (bundle / "pkgextra").exists()


def test_a_changed_file_breaks_the_tree_hash(tmp_path):
    tampered = {**FILES, "pkg/sub/core.py": b"import os; os.system('x')\n"}
    vendor, archives = _source(tmp_path, files=tampered)
    with pytest.raises(model_sources.SourceProblem, match="has tree hash .* the manifest pins"):
        model_sources.add_sources(tmp_path / "bundle", vendor, archives, download=False)
    assert not (tmp_path / "bundle" / "pkg").exists(), "nothing is written from an archive that does not match"


def test_links_in_an_archive_are_refused(tmp_path):
    vendor, archives = _source(tmp_path, link="pkg/evil.py")
    with pytest.raises(model_sources.SourceProblem, match="is a link"):
        model_sources.add_sources(tmp_path / "bundle", vendor, archives, download=False)


def test_a_missing_archive_names_where_to_get_it(tmp_path):
    vendor, _ = _source(tmp_path)
    with pytest.raises(model_sources.SourceProblem, match=f"codeload.github.com/owner/repo/tar.gz/{COMMIT}"):
        model_sources.add_sources(tmp_path / "bundle", vendor, tmp_path / "empty", download=False)


def test_dest_moves_a_submodule_into_place(tmp_path):
    vendor, archives = _source(tmp_path, dest="outer/mesh/flexicubes")
    model_sources.add_sources(tmp_path / "bundle", vendor, archives, download=False)
    assert (tmp_path / "bundle" / "outer" / "mesh" / "flexicubes" / "pkg" / "__init__.py").is_file()


def test_real_manifests_pin_commits_that_agree_with_each_other():
    sources = {s.repo: s for s in model_sources.manifest_sources(ROOT / "vendor")}
    assert {"microsoft/TRELLIS.2", "microsoft/TRELLIS", "MaxtirError/FlexiCubes"} <= set(sources)
    load = lambda name: tomllib.loads((ROOT / "vendor" / name).read_text(encoding="utf-8"))
    assert sources["microsoft/TRELLIS.2"].commit == load("trellis2.toml")["upstream"]["pin"]
    assert sources["microsoft/TRELLIS"].commit == load("trellis.toml")["upstream"]["pin"]
    assert sources["MaxtirError/FlexiCubes"].dest == "trellis/representations/mesh/flexicubes"
    wheels = {w["name"]: w for w in load("wheels.toml")["wheel"]}
    assert wheels["o_voxel"]["commit"] == sources["microsoft/TRELLIS.2"].commit  # one TRELLIS.2 for code and wheel
    assert wheels["flex_gemm"]["commit"] == sources["JeffreyXiang/FlexGEMM"].commit  # its autotune cache
    assert {"nvdiffrast", "cumesh", "flex_gemm", "o_voxel", "custom_rasterizer"} <= set(wheels)


def _wheel(folder: Path, name: str, version: str, tag: str, file_name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (file_name or f"{name}-{version}-{tag}.whl")
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
    return path


def _good_wheels(folder: Path) -> list[Path]:
    _, wheels = space_wheels.load(ROOT / "vendor")
    tag = "cp312-cp312-linux_x86_64"
    local = space_wheels.local_version(STACK)
    return [_wheel(folder, w["name"], f"{w['version']}+{local}", tag) for w in wheels]


def _make_space(out: Path, wheels: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "make_space.py"), "--out", str(out),
                           "--no-model-sources", "--wheels", str(wheels)], capture_output=True, text=True,
                          timeout=120)


def test_stack_is_the_official_trellis2_spaces():
    assert (STACK["python"], STACK["torch"], STACK["cuda"]) == ("3.12", "2.11.0", "13.0")
    assert space_wheels.local_version(STACK) == "torch2.11.0.cu130"
    assert "12.0" in STACK["arch_list"] and "9.0" in STACK["arch_list"]


def test_built_wheels_go_into_the_bundle_with_a_lock_that_agrees(tmp_path):
    built = _good_wheels(tmp_path / "built")
    out = tmp_path / "space"
    result = _make_space(out, tmp_path / "built")
    assert result.returncode == 0, result.stderr
    lock = json.loads((out / "wheels" / "lock.json").read_text())
    assert lock["stack"] == STACK
    assert sorted(e["file"] for e in lock["wheels"]) == sorted(p.name for p in built)
    for entry in lock["wheels"]:
        assert entry["sha256"] == space_wheels.sha256(out / "wheels" / entry["file"])
        assert "+torch2.11.0.cu130-cp312-cp312-linux_x86_64" in entry["file"]


def test_a_wheel_for_another_python_or_torch_is_refused(tmp_path):
    _good_wheels(tmp_path / "built")
    _, wheels = space_wheels.load(ROOT / "vendor")
    first = wheels[0]
    expected = space_wheels.expected_file(first, STACK)
    # the right file name, but the wheel itself says cp311 and torch 2.8.0
    _wheel(tmp_path / "built", first["name"], f"{first['version']}+torch2.8.0.cu128", "cp311-cp311-linux_x86_64",
           file_name=expected)
    result = _make_space(tmp_path / "space", tmp_path / "built")
    assert result.returncode == 1
    assert "tags ['cp311-cp311-linux_x86_64'], expected ['cp312-cp312-linux_x86_64']" in result.stderr
    assert "torch2.8.0.cu128" in result.stderr


def test_the_check_sees_a_changed_wheel_and_a_stack_mismatch(tmp_path):
    _good_wheels(tmp_path / "built")
    out = tmp_path / "space"
    assert _make_space(out, tmp_path / "built").returncode == 0
    import make_space

    assert make_space.check(out) == []
    wheel = next((out / "wheels").glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    requirements = out / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("torch==2.11.0", "torch==2.8.0"))
    (out / "wheels" / "stray-1.0-py3-none-any.whl").write_bytes(b"")
    problems = make_space.check(out)
    assert any(wheel.name in p and "SHA-256 differs" in p for p in problems), problems
    assert any("torch==2.11.0" in p for p in problems), problems
    assert any("stray-1.0" in p for p in problems), problems


def test_install_wheels_refuses_a_wheel_whose_hash_differs(tmp_path):
    _good_wheels(tmp_path / "built")
    out = tmp_path / "space"
    assert _make_space(out, tmp_path / "built").returncode == 0
    lock = json.loads((out / "wheels" / "lock.json").read_text())
    for entry in lock["wheels"]:
        path = out / "wheels" / entry["file"]
        path.write_bytes(path.read_bytes() + b"tampered")
    (out / "wheels" / lock["wheels"][0]["file"]).unlink()
    report = install_wheels(out / "wheels")
    assert report[lock["wheels"][0]["name"]] == f"refused: {lock['wheels'][0]['file']} is missing"
    assert all(v.startswith("refused: ") for v in report.values()), report
    assert set(report) == {e["name"] for e in lock["wheels"]}


def test_relabel_gives_a_fresh_build_the_stacks_local_version(tmp_path):
    _, wheels = space_wheels.load(ROOT / "vendor")
    nvdiffrast = next(w for w in wheels if w["name"] == "nvdiffrast")
    raw = _wheel(tmp_path / "raw", "nvdiffrast", "0.4.0", "cp312-cp312-linux_x86_64")
    built = space_wheels.relabel(raw, tmp_path / "out", STACK)
    assert built.name == space_wheels.expected_file(nvdiffrast, STACK)
    assert space_wheels.wheel_problems(built, nvdiffrast, STACK) == []
    import base64
    import hashlib

    with zipfile.ZipFile(built) as archive:
        record = archive.read("nvdiffrast-0.4.0+torch2.11.0.cu130.dist-info/RECORD").decode().splitlines()
        for row in record:
            name, digest, size = row.split(",")
            if digest:
                data = archive.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert digest == f"sha256={expected}" and int(size) == len(data), row
    assert {row.split(",")[0] for row in record} == set(zipfile.ZipFile(built).namelist())


def test_the_wheel_builder_says_what_this_machine_lacks():
    problems = space_wheels._check_builder(STACK)
    if sys.version_info[:2] != (3, 12):
        assert any(p.startswith(f"Python {sys.version.split()[0]}, the stack needs 3.12") for p in problems)
