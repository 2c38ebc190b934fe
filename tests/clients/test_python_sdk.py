"""The official Python SDK (`mcp` on PyPI) drives Wharf over every transport."""

import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import EXAMPLE_BIN, WHARF_BIN

pytestmark = pytest.mark.anyio


async def exercise(session: ClientSession):
    tools = await session.list_tools()
    names = {t.name for t in tools.tools}
    assert {"echo", "add"} <= names, names
    echoed = await session.call_tool("echo", {"text": "hello from python"})
    assert not echoed.is_error
    assert echoed.content[0].text == "hello from python"
    added = await session.call_tool("add", {"a": 2, "b": 40})
    assert added.structured_content == {"sum": 42.0}
    bad = await session.call_tool("add", {"a": 2})
    assert bad.is_error, "a missing argument must be a tool error"
    assert "b" in bad.content[0].text


async def test_stdio():
    params = StdioServerParameters(command=WHARF_BIN, args=["--profile", "builtin", "stdio"], env={"WHARF_LOG": "warn"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await exercise(session)


async def test_streamable_http_legacy_session(server):
    async with streamable_http_client(f"{server.base}/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            result = await session.initialize()
            assert result.protocol_version == "2025-11-25"
            await exercise(session)


async def test_streamable_http_modern_stateless(server):
    async with streamable_http_client(f"{server.base}/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            discovered = await session.discover()
            assert "2026-07-28" in discovered.supported_versions
            assert session.protocol_version == "2026-07-28"
            await exercise(session)


async def test_http_sse_2024_11_05(server):
    async with sse_client(f"{server.base}/sse") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await exercise(session)


async def test_rust_api_example_over_stdio():
    """examples/rust-api: a program's own tools, served by `wharf::run_app`."""
    params = StdioServerParameters(command=EXAMPLE_BIN, args=["stdio"], env={"WHARF_LOG": "warn"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            saved = await session.call_tool("add_note", {"text": "buy milk"})
            assert saved.content[0].text == "Saved. 1 note(s) now."
            listed = await session.call_tool("list_notes", {"containing": "milk"})
            assert listed.structured_content == {"notes": ["buy milk"]}
