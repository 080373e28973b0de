"""Assemble exactly what to push to the Hugging Face Space, then check it.

    python tools/make_space.py [--out dist/space] [--sources dist/sources] [--wheels dist/wheels]

The folder gets server/ (no __pycache__, no tests), app.py and install_wheels.py, README.md (from
space/README.md), requirements.txt, vendor/, the model source trees the vendor manifests pin (trellis2/,
trellis/ with FlexiCubes; archives read from --sources, downloaded there when missing unless --offline) and
the compiled wheels of vendor/wheels.toml found in --wheels (wheels/ with lock.json). It is emptied first. The
last line printed is the folder's path. Exits non-zero, naming every problem, when a check fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_sources  # noqa: E402  (tools/ is not a package)
import space_wheels  # noqa: E402

MAX_FILE_BYTES = 10 * 1024 * 1024  # the Hub's limit for a file outside Git LFS
MAX_WHEEL_BYTES = 200 * 1024 * 1024  # wheels go through LFS (the Hub uploads large files there)
SKIP_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
SECRET_NAMES = re.compile(r"(^\.env(\..*)?$|^\.netrc$|\.pem$|\.key$|^id_rsa|^id_ed25519|credentials|^\.git-credentials$|^token$)",
                          re.IGNORECASE)
SECRET_TEXT = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")
REQUIRED_FRONT_MATTER = ("title", "sdk", "sdk_version", "app_file", "python_version")


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {name for name in names
            if name in SKIP_DIRS or Path(name).suffix in SKIP_SUFFIXES or name.startswith("test_")}


def assemble(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(ROOT / "server", out / "server", ignore=_ignore)
    shutil.copytree(ROOT / "vendor", out / "vendor", ignore=_ignore)
    for name in ("app.py", "install_wheels.py", "README.md", "requirements.txt"):
        shutil.copy2(ROOT / "space" / name, out / name)


def front_matter(readme: Path) -> dict:
    """The YAML block between the leading '---' lines of a Space README."""
    import yaml

    text = readme.read_text(encoding="utf-8")
    match = re.match(r"\A---\s*\n(.*?)\n---\s*\n", text, re.DOTALL)
    if not match:
        raise ValueError(f"{readme}: no front matter between '---' lines at the top")
    data = yaml.safe_load(match.group(1))
    if not isinstance(data, dict):
        raise ValueError(f"{readme}: front matter is not a mapping")
    return data


def requirement_names(requirements: Path) -> list[str]:
    names = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def check(out: Path) -> list[str]:
    problems = []
    try:
        meta = front_matter(out / "README.md")
    except Exception as exc:  # noqa: BLE001  (report any parse failure as a problem)
        return [f"README.md front matter: {exc}"]
    for key in REQUIRED_FRONT_MATTER:
        if key not in meta:
            problems.append(f"README.md front matter lacks {key}")
    if meta.get("sdk") != "gradio":
        problems.append(f"README.md sdk is {meta.get('sdk')!r}, expected 'gradio'")
    if str(meta.get("python_version")) != "3.12":
        problems.append(f"README.md python_version is {meta.get('python_version')!r}, expected '3.12'")
    app_file = meta.get("app_file")
    if not app_file or not (out / str(app_file)).is_file():
        problems.append(f"app_file {app_file!r} does not exist in {out}")
    requirements = out / "requirements.txt"
    names = requirement_names(requirements)
    if "bpy" in names:
        problems.append("requirements.txt lists bpy, which has no cp312 wheel")
    pins = {m.group(1) for m in re.finditer(r"^gradio(?:\[[a-z,]+\])?==(\S+)", requirements.read_text(encoding="utf-8"), re.MULTILINE)}
    if pins != {str(meta.get("sdk_version"))}:
        problems.append(f"requirements.txt pins gradio {sorted(pins) or 'nowhere'}, README sdk_version is {meta.get('sdk_version')!r}")
    if not (out / "server" / "__init__.py").is_file():
        problems.append("server/ package missing")
    problems.extend(space_wheels.bundle_problems(out, meta, requirements.read_text(encoding="utf-8")))
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out)
        if path.is_symlink():
            problems.append(f"{relative}: symbolic link")
            continue
        if path.is_dir():
            if path.name in SKIP_DIRS:
                problems.append(f"{relative}: should not be pushed")
            continue
        if SECRET_NAMES.search(path.name):
            problems.append(f"{relative}: looks like a secret file")
        size = path.stat().st_size
        if path.suffix == ".whl" and relative.parts[0] == "wheels":
            if size > MAX_WHEEL_BYTES:
                problems.append(f"{relative}: {size / 1e6:.1f} MB, over the {MAX_WHEEL_BYTES >> 20} MB wheel limit")
        elif size > MAX_FILE_BYTES:
            problems.append(f"{relative}: {size / 1e6:.1f} MB, over the 10 MB limit")
        elif path.suffix in {".py", ".md", ".txt", ".toml", ".json", ".cfg", ".yaml", ".yml"}:
            if SECRET_TEXT.search(path.read_text(encoding="utf-8", errors="replace")):
                problems.append(f"{relative}: contains what looks like a Hugging Face token")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "space",
                        help="folder to write (emptied first; default dist/space)")
    parser.add_argument("--sources", type=Path, default=ROOT / "dist" / "sources",
                        help="folder of model source archives <owner>+<name>-<commit>.tar.gz (default dist/sources)")
    parser.add_argument("--offline", action="store_true", help="never download a missing source archive")
    parser.add_argument("--no-model-sources", action="store_true",
                        help="leave the model source trees out (the models then report themselves unavailable)")
    parser.add_argument("--wheels", type=Path, default=ROOT / "dist" / "wheels",
                        help="folder of wheels built by tools/build_space_wheels.sh (default dist/wheels)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if ROOT.is_relative_to(out):
        parser.error(f"refusing to empty {out}: it holds the repository")
    if out.is_relative_to(ROOT) and not out.is_relative_to(ROOT / "dist"):
        parser.error(f"refusing to write {out}: inside the repository, only dist/ is for build output")
    if out.exists() and any(out.iterdir()) and not (out / "app.py").is_file():
        parser.error(f"refusing to empty {out}: not empty and not a previous Space build")
    assemble(out)
    problems = []
    if not args.no_model_sources:
        try:
            for line in model_sources.add_sources(out, ROOT / "vendor", args.sources, download=not args.offline):
                print(f"source {line}")
        except model_sources.SourceProblem as exc:
            problems.append(str(exc))
    locked, missing, wheel_problems = space_wheels.place_wheels(out, args.wheels, ROOT / "vendor")
    problems.extend(wheel_problems)
    for entry in locked:
        print(f"wheel {entry['file']} sha256 {entry['sha256'][:16]}...")
    if missing:
        print(f"make_space: no wheel for {', '.join(missing)} in {args.wheels} (tools/build_space_wheels.sh builds "
              "them); the models that need them report themselves unavailable", file=sys.stderr)
    problems.extend(check(out))
    for problem in problems:
        print(f"make_space: {problem}", file=sys.stderr)
    if problems:
        return 1
    files = sum(1 for path in out.rglob("*") if path.is_file())
    print(f"{files} files ready to push")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
