"""Model source trees for the Space bundle: pinned upstream archives, verified by a tree hash, placed in the bundle.

TRELLIS.2 and TRELLIS have no pip package; their Spaces carry the `trellis2/` or `trellis/` source folder. Each
vendor manifest lists the trees it needs as [[source]] tables (repo, commit, paths, dest, tree_sha256). The
archive of a commit is read from a local folder (`<owner>+<name>-<commit>.tar.gz`) or downloaded from GitHub once
into that folder; nothing upstream is ever committed here. The tree hash covers file paths and contents only, so
it does not depend on how GitHub compresses the archive.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ARCHIVE_URL = "https://codeload.github.com/{repo}/tar.gz/{commit}"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class SourceProblem(Exception):
    """A pinned source could not be had or does not match its pin."""


@dataclass(frozen=True)
class Source:
    """One pinned tree: `paths` of `repo` at `commit`, copied to the same paths under `dest` of the bundle."""

    repo: str
    commit: str
    paths: tuple[str, ...]
    tree_sha256: str
    dest: str = ""
    manifest: str = ""

    @property
    def archive_name(self) -> str:
        return f"{self.repo.replace('/', '+')}-{self.commit}.tar.gz"


def manifest_sources(vendor_dir: Path) -> list[Source]:
    """Every [[source]] of the vendor manifests, checked for form."""
    sources = []
    for manifest in sorted(vendor_dir.glob("*.toml")):
        for entry in tomllib.loads(manifest.read_text(encoding="utf-8")).get("source", []):
            source = Source(repo=entry["repo"], commit=entry["commit"], paths=tuple(entry["paths"]),
                            tree_sha256=entry["tree_sha256"], dest=entry.get("dest", ""), manifest=manifest.name)
            if not _REPO.match(source.repo) or not _COMMIT.match(source.commit):
                raise SourceProblem(f"{manifest.name}: source {source.repo}@{source.commit}: expected owner/name "
                                    "and a 40-digit commit")
            sources.append(source)
    return sources


def _member_path(name: str) -> PurePosixPath | None:
    """The path inside the repository of an archive member (its first component is GitHub's folder)."""
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or name.startswith("/") or ".." in parts:
        return None
    return PurePosixPath(*parts[1:])


def read_tree(archive: Path, paths: tuple[str, ...]) -> dict[str, bytes]:
    """The regular files under `paths` in a GitHub commit archive, by repository path; links are refused."""
    wanted = [PurePosixPath(p) for p in paths]
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                path = _member_path(member.name)
                if path is None or not any(path == w or w in path.parents for w in wanted):
                    continue
                if member.issym() or member.islnk():
                    raise SourceProblem(f"{archive.name}: {path} is a link; sources must be plain files")
                if member.isfile():
                    files[str(path)] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceProblem(f"{archive.name}: not a readable .tar.gz ({exc})") from exc
    return files


def tree_sha256(files: dict[str, bytes]) -> str:
    """SHA-256 over the sorted lines '<path> <sha256 of its bytes>'."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path} {hashlib.sha256(files[path]).hexdigest()}\n".encode())
    return digest.hexdigest()


def archive_for(source: Source, archive_dir: Path, download: bool) -> Path:
    """The source's archive in `archive_dir`, downloaded there first when allowed and missing."""
    path = archive_dir / source.archive_name
    if path.is_file():
        return path
    if not download:
        raise SourceProblem(f"{source.manifest}: {path} is missing (download it from "
                            f"{ARCHIVE_URL.format(repo=source.repo, commit=source.commit)})")
    archive_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    try:
        with urllib.request.urlopen(ARCHIVE_URL.format(repo=source.repo, commit=source.commit), timeout=120) as r:
            partial.write_bytes(r.read())
    except OSError as exc:
        raise SourceProblem(f"{source.manifest}: cannot download {source.repo}@{source.commit[:12]}: {exc}") from exc
    partial.replace(path)
    return path


def place(source: Source, archive: Path, bundle: Path) -> int:
    """Copy the verified tree into the bundle; returns the number of files written."""
    files = read_tree(archive, source.paths)
    if not files:
        raise SourceProblem(f"{source.manifest}: {archive.name} holds none of {list(source.paths)}")
    found = tree_sha256(files)
    if found != source.tree_sha256:
        raise SourceProblem(f"{source.manifest}: {source.repo}@{source.commit[:12]} {list(source.paths)} has tree "
                            f"hash {found}, the manifest pins {source.tree_sha256}")
    for path, data in files.items():
        target = bundle / source.dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return len(files)


def add_sources(bundle: Path, vendor_dir: Path, archive_dir: Path, download: bool = True) -> list[str]:
    """Place every manifest's sources in the bundle; returns one line per source for the log."""
    lines = []
    for source in manifest_sources(vendor_dir):
        count = place(source, archive_for(source, archive_dir, download), bundle)
        lines.append(f"{source.repo}@{source.commit[:12]}: {count} files -> {source.dest or '/'}")
    return lines
