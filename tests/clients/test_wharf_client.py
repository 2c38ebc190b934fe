"""`wharf client` against real servers: the Python SDK's over stdio, `wharf serve` over Streamable HTTP in both
protocol eras and over HTTP+SSE; and `wharf gateway` in front of them, read with `wharf gateway status`."""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from conftest import WHARF_BIN, free_port

SDK_SERVER = f"{sys.executable} {os.path.join(os.path.dirname(__file__), 'sdk_server.py')}"


def client(*args: str, cache: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=cache or tempfile.mkdtemp(prefix="wharf-cache-"))
    return subprocess.run([WHARF_BIN, "client", *args], capture_output=True, text=True, timeout=60, env=env)


def test_the_python_sdk_server_over_stdio():
    tools = client("--stdio", SDK_SERVER, "--json-output", "tools")
    assert tools.returncode == 0, tools.stderr
    assert sorted(t["name"] for t in json.loads(tools.stdout)) == ["add", "shout"]

    # --arg values are typed by the tool's schema: 2 and 3 are integers.
    added = client("--stdio", SDK_SERVER, "call", "add", "--arg", "a=2", "--arg", "b=3")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[0] == "5"

    read = client("--stdio", SDK_SERVER, "read", "notes://readme")
    assert read.stdout.strip() == "Notes served by the Python SDK."
    prompt = client("--stdio", SDK_SERVER, "get-prompt", "summarize", "--arg", "topic=tea")
    assert "Summarize tea in one sentence." in prompt.stdout

    # A wrong argument is the server's error, reported with a non-zero exit.
    bad = client("--stdio", SDK_SERVER, "call", "add", "--arg", "a=two", "--arg", "b=3")
    assert bad.returncode in (1, 3), bad
    unknown = client("--stdio", SDK_SERVER, "call", "nope")
    assert unknown.returncode != 0 and "has no tool `nope`; it has: add, shout" in unknown.stderr


def test_wharf_serve_in_both_eras_and_the_era_is_remembered(server):
    s = server
    cache = tempfile.mkdtemp(prefix="wharf-cache-")
    modern = client("--url", f"{s.base}/mcp", "--json-output", "discover", cache=cache)
    assert modern.returncode == 0, modern.stderr
    assert json.loads(modern.stdout)["protocolVersion"] == "2026-07-28"
    remembered = json.load(open(os.path.join(cache, "wharf", "protocols.json")))
    assert remembered == {f"http://127.0.0.1:{s.port}": "2026-07-28"}

    legacy = client("--url", f"{s.base}/mcp", "--protocol", "legacy", "--json-output", "discover", cache=cache)
    assert json.loads(legacy.stdout)["protocolVersion"] == "2025-11-25"
    called = client("--url", f"{s.base}/mcp", "--protocol", "legacy", "call", "echo", "--arg", "text=hi")
    assert called.returncode == 0 and called.stdout.splitlines()[0] == "hi", called.stderr

    sse = client("--sse", f"{s.base}/sse", "call", "add", "--json", '{"a": 1, "b": 41}')
    assert sse.returncode == 0, sse.stderr
    assert sse.stdout.splitlines()[0] == "42"

    # A tool error (isError) exits 1 and prints the server's message.
    failed = client("--url", f"{s.base}/mcp", "call", "echo", "--json", '{"text": 5}')
    assert failed.returncode == 1, failed


def test_an_unreachable_server_says_so():
    down = client("--url", f"http://127.0.0.1:{free_port()}/mcp", "--retries", "0", "tools")
    assert down.returncode == 3
    assert "cannot connect to upstream" in down.stderr
    neither = client("tools")
    assert neither.returncode == 2 and "--url" in neither.stderr


def test_the_gateway_fronts_an_sdk_server_and_a_wharf_server(server):
    s = server
    config = os.path.join(tempfile.mkdtemp(prefix="wharf-gw-"), "mcp.json")
    with open(config, "w") as f:
        json.dump(
            {
                "servers": [
                    {"name": "py", "command": sys.executable, "args": [SDK_SERVER.split(" ", 1)[1]]},
                    {"name": "wharf", "url": f"{s.base}/mcp", "timeout": 10},
                    {"name": "down", "url": f"http://127.0.0.1:{free_port()}/mcp", "max_retries": 0},
                ],
                "log_level": "INFO",
            },
            f,
        )
    port = free_port()
    data = tempfile.mkdtemp(prefix="wharf-gw-data-")
    log = open(os.path.join(data, "gateway.log"), "w+")
    gateway = subprocess.Popen(
        [WHARF_BIN, "--data-dir", data, "gateway", "--upstreams", config, "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise AssertionError(open(log.name).read())
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/mcp"
        tools = client("--url", url, "--json-output", "tools")
        names = sorted(t["name"] for t in json.loads(tools.stdout))
        assert names == ["py_add", "py_shout", "wharf_add", "wharf_echo"], tools.stderr
        assert client("--url", url, "call", "py_add", "--arg", "a=20", "--arg", "b=22").stdout.startswith("42")
        assert client("--url", url, "call", "wharf_echo", "--arg", "text=through").stdout.startswith("through")
        prompts = client("--url", url, "--json-output", "prompts")
        assert sorted(p["name"] for p in json.loads(prompts.stdout)) == ["py_summarize", "wharf_explain_tool"]

        status = subprocess.run(
            [WHARF_BIN, "gateway", "status", "--url", f"http://127.0.0.1:{port}/metrics", "--json-output"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.returncode == 0, status.stderr
        rows = {r["upstream"]: r for r in json.loads(status.stdout)}
        assert rows["py"]["healthy"] and rows["wharf"]["healthy"]
        assert not rows["down"]["healthy"]
        assert rows["py"]["calls"] >= 1 and rows["py"]["failed"] == 0
        table = subprocess.run(
            [WHARF_BIN, "gateway", "status", "--url", f"http://127.0.0.1:{port}/metrics"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert table.splitlines()[0].split()[:3] == ["upstream", "health", "breaker"]
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)
