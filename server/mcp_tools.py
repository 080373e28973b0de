"""The MCP side of the server: Gradio's MCP server, with the two fixes its list-of-files inputs need."""

from __future__ import annotations

import functools
from typing import Any


def hoisted_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """The tool schema with each property's own "$defs" moved to the root, where its "#/$defs/..." references
    point. Gradio 6 leaves them inside a list-of-files property, and the MCP SDK's argument check then fails
    with "PointerToNowhere: '/$defs/FileData'" before the tool runs."""
    properties = schema.get("properties", {})
    if not any(isinstance(p, dict) and "$defs" in p for p in properties.values()):
        return schema
    definitions = dict(schema.get("$defs", {}))
    cleaned = {}
    for name, prop in properties.items():
        if isinstance(prop, dict) and "$defs" in prop:
            prop = dict(prop)
            definitions.update(prop.pop("$defs"))
        cleaned[name] = prop
    return {**schema, "properties": cleaned, "$defs": definitions}


def _any_index(path) -> tuple:
    return tuple("items" if isinstance(key, int) else key for key in path)


def install_schema_fix() -> None:
    """Wrap GradioMCPServer once: every tool's schema resolves its references, and each file of a list-of-files
    argument becomes a file. (Gradio records a list's files at the schema path "images/items", which no
    argument path such as "images/0" matches, so they reached the endpoint as bare strings.)"""
    from gradio.mcp import GradioMCPServer

    original_schema = GradioMCPServer.get_input_schema
    if getattr(original_schema, "_o3f_fixed", False):
        return
    original_convert = GradioMCPServer.convert_strings_to_filedata

    @functools.wraps(original_schema)
    def get_input_schema(self, tool_name, parameters=None):
        schema, file_positions = original_schema(self, tool_name, parameters)
        return hoisted_definitions(schema), file_positions

    @functools.wraps(original_convert)
    def convert_strings_to_filedata(self, value, filedata_positions):
        wanted = {tuple(position) for position in filedata_positions}

        def walk(node, path):
            if isinstance(node, dict):
                return {key: walk(item, path + [key]) for key, item in node.items()}
            if isinstance(node, list):
                return [walk(item, path + [index]) for index, item in enumerate(node)]
            if isinstance(node, str) and (tuple(path) in wanted or _any_index(path) in wanted):
                return original_convert(self, node, [[]])  # upstream's conversion of one value
            return node

        return walk(value, [])

    get_input_schema._o3f_fixed = True
    GradioMCPServer.get_input_schema = get_input_schema
    GradioMCPServer.convert_strings_to_filedata = convert_strings_to_filedata
