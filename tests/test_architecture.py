"""The code's shape: no import circle in server/, the asset folder's layout spelled only in server/asset.py, and
the add-on client's endpoint table equal to the API the server publishes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SERVER.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the server modules it imports (at the top or inside functions alike)."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    # `from . import mixamo` imports the submodule, not the package's __init__.
                    found = target if target in modules else base
                    if found in modules and found != name:
                        graph[name].add(found)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_server_has_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


LAYOUT_LITERAL = re.compile(r"^(high_poly\.glb|attributes\.npz|rig\.npz|preview_decimated\.glb|asset\.json|"
                            r"(game|textures|inputs|views|objects)/.*)$")


def test_only_the_asset_module_spells_the_asset_folders_layout():
    offenders = []
    for path in _modules().values():
        if path == SERVER / "asset.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            parts = [node] if isinstance(node, ast.Constant) else []
            if isinstance(node, ast.JoinedStr):  # f"textures/{name}.png": its leading text
                parts = [value for value in node.values[:1] if isinstance(value, ast.Constant)]
            for part in parts:
                if isinstance(part.value, str) and LAYOUT_LITERAL.match(part.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {part.value!r}")
    assert offenders == []


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    import os

    from server.api import ForgeApi
    from server.app import build_app
    from server.config import load_settings

    os.environ["O3F_WORKSPACE"] = str(tmp_path_factory.mktemp("architecture") / "workspace")
    try:
        app = build_app(ForgeApi(load_settings()))
    finally:
        del os.environ["O3F_WORKSPACE"]
    return app.get_api_info()["named_endpoints"]


def test_the_addon_client_calls_each_endpoint_with_the_servers_arguments(published):
    from addon.client import ENDPOINTS

    for endpoint, arguments in ENDPOINTS.items():
        parameters = published[f"/{endpoint}"]["parameters"]
        assert [name for name, _ in arguments] == [p["parameter_name"] for p in parameters], endpoint
