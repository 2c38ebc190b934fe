"""The MCP Inspector's command line against `wharf serve`: every published tool
schema passes its strict portability check (`--strict`: no bare `true`, no
`type` lists, nothing that some client dialect would refuse), and a call works.

TEST_NODE (Node >= 22.19) and TEST_INSPECTOR (the Inspector's launcher) are set
by xtask, which installs both at pinned versions.
"""

import json
import os
import subprocess
import tempfile

import pytest

from conftest import Server

NODE = os.environ.get("TEST_NODE")
INSPECTOR = os.environ.get("TEST_INSPECTOR")

pytestmark = pytest.mark.skipif(
    not (NODE and INSPECTOR), reason="TEST_NODE and TEST_INSPECTOR are set by cargo xtask ci"
)


def inspector(*args: str) -> subprocess.CompletedProcess:
    home = tempfile.mkdtemp(prefix="inspector-home-")
    env = {
        **os.environ,
        "HOME": home,
        "PATH": os.path.dirname(NODE) + os.pathsep + os.environ.get("PATH", ""),
    }
    return subprocess.run(
        [NODE, INSPECTOR, "--cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("profile", ["catalog", "builtin"])
def test_every_tool_schema_passes_the_strict_check(profile):
    s = Server("--profile", profile)
    try:
        r = inspector("--strict", f"{s.base}/mcp", "--method", "tools/list")
        assert r.returncode == 0, r.stderr
        assert "Warning" not in r.stderr and "Error" not in r.stderr, r.stderr
        tools = json.loads(r.stdout)["tools"]
        assert tools, r.stdout
    finally:
        s.stop()


def test_a_call_through_the_inspector():
    s = Server("--profile", "builtin")
    try:
        r = inspector(
            f"{s.base}/mcp", "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=inspected"
        )
        assert r.returncode == 0, r.stderr
        assert "inspected" in r.stdout, r.stdout
    finally:
        s.stop()
