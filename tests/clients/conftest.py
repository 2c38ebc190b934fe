"""Fixtures for driving a real `wharf` binary with real MCP clients.

TEST_WHARF_BIN and TEST_EXAMPLE_BIN name the binaries (xtask sets them); each HTTP test gets its own server on
a free loopback port and its own data directory.
"""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

WHARF_BIN = os.environ.get("TEST_WHARF_BIN", "target/debug/wharf")
EXAMPLE_BIN = os.environ.get("TEST_EXAMPLE_BIN", "target/debug/wharf-example-notes")
READY_DEADLINE_S = 20


@pytest.fixture
def anyio_backend():
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args: str, env: dict | None = None, port: int | None = None):
        self.port = port or free_port()
        self.data = tempfile.mkdtemp(prefix="wharf-test-")
        self.log = open(os.path.join(self.data, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [WHARF_BIN, "--data-dir", self.data, "serve", "--listen", f"127.0.0.1:{self.port}", *(args or ("--profile", "builtin"))],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"wharf did not become ready:\n{self.log.read()}")
            time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()
