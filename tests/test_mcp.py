"""The server's endpoints as MCP tools: an MCP client started as `python -m server` serves lists them with the
schema's help, runs health, and forges a small asset from an image sent as a data URI."""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json

import pytest
from PIL import Image

from server.local import running_server
from server.schema import POSTPROCESS
from test_silhouette import l_shape

mcp = pytest.importorskip("mcp", reason="gradio[mcp] is not installed (pyproject's dependencies install it)")
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

ENDPOINTS = {"generate", "generate_text", "import_mesh", "forge", "postprocess", "decimate_preview", "rig", "bake",
             "export", "scene", "health", "quota", "assets", "asset", "presets", "cancel"}
SMALL = {"generate": {"resolution": 64, "target_faces": 8000},
         "postprocess": {"target_triangles": 800, "texture_size": 256, "max_hulls": 1},
         "bake": {"ao_samples": 2}, "export": {"use_fbx": False}}


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def _session_run(url: str, work):
    async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("mcp") / "workspace") as url:
        yield url


def test_every_endpoint_is_a_tool_described_from_the_schema(server_url):
    async def work(session):
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in asyncio.run(_session_run(server_url, work))}
    assert ENDPOINTS <= set(tools)
    assert not any(name.startswith("ui_") for name in tools)  # the web UI's private events are not tools
    options = tools["postprocess"].inputSchema["properties"]["options"]["description"]
    for field in POSTPROCESS.fields:  # each option named with what it accepts, as the schema says
        assert f"{field.name} ({field.expected}" in options
    assert "asset_id" in tools["postprocess"].inputSchema["properties"]
    assert "Repair, clean, decimate" in tools["postprocess"].description


def test_health_and_a_small_forge_through_mcp(server_url):
    image = _data_uri(Image.fromarray(l_shape()))

    async def work(session):
        health = await session.call_tool("health", {})
        forged = await session.call_tool("forge", {"images": [image], "name": "Mcp_L",
                                                   "options": json.dumps(SMALL)})
        return health, forged

    health, forged = asyncio.run(_session_run(server_url, work))
    assert not health.isError
    report = json.loads(health.content[0].text)
    assert any(row["name"] == "silhouette" and row["available"] for row in report["generators"])
    assert not forged.isError, forged.content
    (text,) = [item.text for item in forged.content if getattr(item, "text", None)]
    record_json, package = ast.literal_eval(text)  # Gradio sends the outputs as one text: [record, file data]
    record = json.loads(record_json)
    assert record["name"] == "Mcp_L" and record["status"] == "ready"
    assert [run["stage"] for run in record["stages"]][-3:] == ["postprocess", "bake", "export"]
    assert package["orig_name"] == "Mcp_L_UE5.zip" and package["url"].startswith(server_url)
