"""Builds dist/open3dforge-<version>.zip, the installable Blender extension, and checks it.

    python build_addon.py [--offline]

The zip holds addon/*.py and addon/blender_manifest.toml at its root and, under wheels/, every wheel the
manifest lists. The manifest is the one list of wheels: each file name says which distribution, version,
Python and platform to fetch, and WHEEL_SHA256 below pins its bytes. Wheels are fetched with
`pip download --only-binary=:all: --no-deps` into build/wheels, which doubles as the cache: a wheel already
there with the right hash is never fetched again, so a second build needs no network. Progress goes to
stderr; the zip's path is the last line on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "addon"
MANIFEST_NAME = "blender_manifest.toml"
WHEEL_DIR = ROOT / "build" / "wheels"
DIST_DIR = ROOT / "dist"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same zip

# SHA-256 of each wheel the manifest names, as published on PyPI. A wheel added to the manifest fails the
# build until its hash is added here; the error says which line to add.
WHEEL_SHA256 = {
    "gradio_client-2.7.2-py3-none-any.whl": "12c9d2d940df28eb8dce58eef61f5e808265ad87bbbca53704d1330aa701e5e2",
    "httpx-0.28.1-py3-none-any.whl": "d909fcccc110f8c7faf814ca82a9a4d816bc5a6dbfea25d6591d6985b8ba59ad",
    "httpcore-1.0.9-py3-none-any.whl": "2d400746a40668fc9dec9810239072b40b4484b640a8c38fd654a024c7a1bf55",
    "h11-0.16.0-py3-none-any.whl": "63cf8bbe7522de3bf65932fda1d9c2772064ffb3dae62d55932da54b31cb6c86",
    "anyio-4.16.0-py3-none-any.whl": "c66ae634e0b8228396b801741beb3294326d4b6102f7bba4041c0dfb58c29026",
    "huggingface_hub-2.4.0-py3-none-any.whl": "42ecfd93ede47bdd333daebbf66a32d7bfe2e18752754fe4d2d4f98a0179d801",
    "httpx2-2.16.2-py3-none-any.whl": "f05c13aade4c45dbf1c9060647a1058f0acad62398fad96e741269edb33d46f5",
    "httpcore2-2.16.2-py3-none-any.whl": "16051ae2a42f776007543f32de9349a317b23d2cbb4e1456b4bac0e88b87419a",
    "truststore-0.10.5-py3-none-any.whl": "9aaaedaefaf06d8b206278cf8b5012bc897f485a874503501e12d776df78951c",
    "idna-3.20-py3-none-any.whl": "ab7ae7122974553370f0bdb919e1a960b2cd1bc1ef0276416d896db81c14582c",
    "fsspec-2026.9.0-py3-none-any.whl": "8dd6e646e99ea382bd85f97a45e6b526a442d79423a7dc673f1e2756d05fcb5f",
    "packaging-26.3-py3-none-any.whl": "d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c",
    "typing_extensions-4.16.0-py3-none-any.whl": "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    "filelock-4.2.11-py3-none-any.whl": "020e229e4bb9d410fc799c07ddf45fa217cba970278f40b30751d94f309b69e2",
    "tqdm-4.70.1-py3-none-any.whl": "c293e525e6fef9c20e8728fd4612df02a0aa31bb5fe91ecd93e123b1b7bffa73",
    "colorama-0.4.6-py2.py3-none-any.whl": "4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6",
    "click-8.5.1-py3-none-any.whl": "8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37",
    "pyyaml-6.0.3-cp311-cp311-win_amd64.whl": "9f3bfb4965eb874431221a3ff3fdcddc7e74e3b07799e0e84ca4a0f867d449bf",
    "pyyaml-6.0.3-cp311-cp311-macosx_11_0_arm64.whl": "652cb6edd41e718550aad172851962662ff2681490a8a711af6a4d288dd96824",
    "pyyaml-6.0.3-cp311-cp311-macosx_10_13_x86_64.whl": "44edc647873928551a01e7a563d7452ccdebee747728c1080d881d68af7b997e",
    "pyyaml-6.0.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl": "b8bb0864c5a28024fac8a632c443c87c5aa6f215c0b126c449ae1a150412f31d",
    "pyyaml-6.0.3-cp313-cp313-win_amd64.whl": "79005a0d97d5ddabfeeea4cf676af11e647e41d81c9a7722a193022accdb6b7c",
    "pyyaml-6.0.3-cp313-cp313-macosx_11_0_arm64.whl": "2283a07e2c21a2aa78d9c4442724ec1eb15f5e42a723b99cb3d822d48f5f7ad1",
    "pyyaml-6.0.3-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl": "0f29edc409a6392443abf94b9cf89ce99889a1dd5376d94316ae5145dfedd5d6",
}


class BuildError(Exception):
    """The add-on cannot be built as asked; the message says what is wrong and what to do."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Wheel:
    """One wheel the manifest lists, with what its file name says about it."""

    path: str  # as written in the manifest: ./wheels/<file>.whl
    filename: str
    distribution: str
    version: str
    python_tag: str
    abi_tag: str
    platform_tag: str

    @classmethod
    def from_manifest_path(cls, path: str) -> Wheel:
        filename = path.rsplit("/", 1)[-1]
        if not (path.startswith("./wheels/") and filename.endswith(".whl") and path.count("/") == 2):
            raise BuildError(f"manifest wheel {path!r}: expected ./wheels/<name>.whl")
        parts = filename[: -len(".whl")].split("-")
        if len(parts) != 5:  # no build tags: a pinned PyPI file is enough
            raise BuildError(f"manifest wheel {path!r}: expected <name>-<version>-<python>-<abi>-<platform>.whl")
        return cls(path, filename, *parts)

    @property
    def archive_name(self) -> str:
        return f"wheels/{self.filename}"

    def pip_target(self) -> tuple[str, ...]:
        """pip download options that select exactly this file (with --only-binary=:all: --no-deps)."""
        if self.abi_tag == "none" and self.platform_tag == "any":  # pure Python
            return ("--python-version", "3.11", "--platform", "any")
        if not (self.python_tag.startswith("cp") and self.abi_tag == self.python_tag):
            raise BuildError(f"{self.filename}: only pure-Python or CPython-specific wheels are supported")
        digits = self.python_tag[2:]
        options = ["--python-version", f"{digits[0]}.{digits[1:]}", "--implementation", "cp", "--abi", self.abi_tag]
        for platform in self.platform_tag.split("."):
            options += ["--platform", platform]
        return tuple(options)


def read_manifest(text: str, where: str) -> dict:
    try:
        manifest = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{where} is not valid TOML: {exc}") from exc
    for key in ("id", "version", "wheels"):
        if key not in manifest:
            raise BuildError(f"{where} has no {key!r}")
    return manifest


def manifest_wheels(manifest: dict) -> list[Wheel]:
    wheels = [Wheel.from_manifest_path(path) for path in manifest["wheels"]]
    names = [wheel.filename for wheel in wheels]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BuildError(f"the manifest lists these wheels twice: {', '.join(duplicates)}")
    return wheels


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_ok(wheel: Wheel) -> bool:
    path = WHEEL_DIR / wheel.filename
    if not path.is_file():
        return False
    if sha256(path) == WHEEL_SHA256.get(wheel.filename):
        return True
    log(f"  {wheel.filename} in {WHEEL_DIR} has the wrong hash; fetching it again")
    path.unlink()
    return False


def fetch_wheels(wheels: list[Wheel], offline: bool) -> None:
    unpinned = [wheel.filename for wheel in wheels if wheel.filename not in WHEEL_SHA256]
    missing = [wheel for wheel in wheels if not cached_ok(wheel)]
    if missing and offline:
        raise BuildError("--offline, but these wheels are not in build/wheels: "
                         + ", ".join(wheel.filename for wheel in missing))
    groups: dict[tuple[str, ...], list[Wheel]] = {}
    for wheel in missing:
        groups.setdefault(wheel.pip_target(), []).append(wheel)
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    for target, group in groups.items():
        pins = [f"{wheel.distribution}=={wheel.version}" for wheel in group]
        log(f"  pip download {' '.join(target)}: {' '.join(pins)}")
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary=:all:", "--no-deps", *target, "--dest", str(WHEEL_DIR), *pins]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"pip download failed for {' '.join(pins)} ({' '.join(target)}); is PyPI "
                             f"reachable?\n{result.stderr.strip()}")
    for wheel in missing:
        path = WHEEL_DIR / wheel.filename
        if not path.is_file():
            raise BuildError(f"pip did not fetch {wheel.filename} (PyPI may name that wheel differently: "
                             f"look in {WHEEL_DIR} and correct the manifest)")
    for wheel in wheels:
        digest = sha256(WHEEL_DIR / wheel.filename)
        expected = WHEEL_SHA256.get(wheel.filename)
        if expected is None:
            continue
        if digest != expected:
            raise BuildError(f"{wheel.filename} has SHA-256 {digest}, expected {expected}: "
                             "it is not the file PyPI published; delete it from build/wheels and retry")
    if unpinned:
        lines = "\n".join(f'    "{name}": "{sha256(WHEEL_DIR / name)}",' for name in unpinned)
        raise BuildError(f"no pinned SHA-256 for {len(unpinned)} wheel(s); after checking them against PyPI, "
                         f"add to WHEEL_SHA256 in build_addon.py:\n{lines}")


# Files the add-on carries a copy of, from the server (their one source); the copy is rewritten on every build.
SHARED_COPIES = {ROOT / "server" / "export" / "fbx_settings.py": ADDON_DIR / "fbx_settings.py"}


SCHEMA_COPY = ADDON_DIR / "options_schema.py"  # written from server/schema.py's addon_module_text()


def schema_copy_text() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from server.schema import addon_module_text

    return addon_module_text()


def refresh_shared_copies() -> None:
    for source, copy in SHARED_COPIES.items():
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            copy.write_bytes(source.read_bytes())
            log(f"  {copy.relative_to(ROOT)} refreshed from {source.relative_to(ROOT)}")
    text = schema_copy_text()
    if not SCHEMA_COPY.is_file() or SCHEMA_COPY.read_text(encoding="utf-8") != text:
        SCHEMA_COPY.write_text(text, encoding="utf-8")
        log(f"  {SCHEMA_COPY.relative_to(ROOT)} written from server/schema.py")


def addon_sources() -> list[Path]:
    """The add-on's own files: every .py under addon/ (no caches) and the manifest."""
    sources = [path for path in sorted(ADDON_DIR.rglob("*.py"))
               if "__pycache__" not in path.relative_to(ADDON_DIR).parts]
    return [*sources, ADDON_DIR / MANIFEST_NAME]


def write_zip(target: Path, sources: list[Path], wheels: list[Wheel]) -> None:
    entries = [(path.relative_to(ADDON_DIR).as_posix(), path, zipfile.ZIP_DEFLATED) for path in sources]
    entries += [(wheel.archive_name, WHEEL_DIR / wheel.filename, zipfile.ZIP_STORED) for wheel in wheels]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")  # concurrent builds never collide
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path, compression in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    partial.replace(target)


def check_zip(path: Path, version: str) -> list[str]:
    """Reads the built zip back and returns what is wrong with it (nothing, when it is good)."""
    problems = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if (bad := archive.testzip()) is not None:
            problems.append(f"{bad}: CRC mismatch")
        if MANIFEST_NAME not in names:
            return [*problems, f"no {MANIFEST_NAME} at the zip's root"]
        try:
            manifest = read_manifest(archive.read(MANIFEST_NAME).decode("utf-8"), f"{path.name}:{MANIFEST_NAME}")
            wheels = manifest_wheels(manifest)
        except BuildError as exc:
            return [*problems, str(exc)]
        if manifest["version"] != version:
            problems.append(f"manifest version {manifest['version']!r} but the zip is named for {version!r}")
        if "__init__.py" not in names:
            problems.append("no __init__.py at the zip's root")
        for name in names:
            parts = name.split("/")
            if "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
                problems.append(f"{name}: compiled Python does not belong in the zip")
            if name.endswith(".py"):
                try:
                    compile(archive.read(name), name, "exec")
                except SyntaxError as exc:
                    problems.append(f"{name}: {exc}")
        listed = {wheel.archive_name for wheel in wheels}
        present = {name for name in names if name.startswith("wheels/")}
        problems += [f"manifest lists {name} but the zip lacks it" for name in sorted(listed - present)]
        problems += [f"{name} is in the zip but not in the manifest" for name in sorted(present - listed)]
        for wheel in wheels:
            if wheel.archive_name not in present:
                continue
            digest = hashlib.sha256(archive.read(wheel.archive_name)).hexdigest()
            if digest != WHEEL_SHA256.get(wheel.filename):
                problems.append(f"{wheel.archive_name}: SHA-256 {digest} is not the pinned one")
        if not any(wheel.distribution == "gradio_client" for wheel in wheels):
            problems.append("the manifest does not ship gradio_client")
    return problems


def build(offline: bool = False) -> Path:
    manifest_path = ADDON_DIR / MANIFEST_NAME
    manifest = read_manifest(manifest_path.read_text(encoding="utf-8"), str(manifest_path))
    wheels = manifest_wheels(manifest)
    log(f"Open3DForge add-on {manifest['version']}: {len(wheels)} wheels")
    fetch_wheels(wheels, offline)
    target = DIST_DIR / f"{manifest['id']}-{manifest['version']}.zip"
    refresh_shared_copies()
    write_zip(target, addon_sources(), wheels)
    problems = check_zip(target, manifest["version"])
    if problems:
        target.unlink()
        raise BuildError(f"{target.name} failed its checks:\n  " + "\n  ".join(problems))
    log(f"  {target.stat().st_size / 1e6:.1f} MB, checked")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true",
                        help="never run pip; every wheel must already be in build/wheels")
    args = parser.parse_args(argv)
    try:
        target = build(offline=args.offline)
    except BuildError as exc:
        log(f"error: {exc}")
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
