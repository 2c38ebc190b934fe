"""Cold start of `wharf serve`, many times: spawn to the first good `tools/call` answer.

compare.py measures one start per stack; on this machine one sample moves by 2x,
so this script starts the server N times (pinned to core 0, as compare.py does)
and prints min / median / p90 / max, for production defaults on and off, on an
empty data directory each time (a first start: the SQLite session store is
created and migrated) or, with --keep-data, on the one left by the previous
start (a restart).

    python3 bench/peers/cold_start.py target/release/wharf [N] [--keep-data]
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

KEY = "bench-key-0123456789abcdef0123456789abcdef"
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "echo", "arguments": {"text": "hi"},
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {}}}}).encode()
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo",
           "Authorization": f"Bearer {KEY}"}
# The same settings as compare.py's "defaults on" and "defaults off".
PROFILES = [
    ("defaults on", {"MCP_API_KEY": KEY, "WHARF_RATE_LIMIT_SUBJECT": "1000000000", "WHARF_LOG_FORMAT": "json",
                     "WHARF_LOG": "info"}),
    ("defaults off", {"WHARF_RATE_LIMIT": "false", "WHARF_LOG": "warn", "WHARF_SESSION_STORE": "memory"}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(binary: str, env: dict, data: str) -> float:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", "0", binary, "serve", "--listen", f"127.0.0.1:{port}"],
                            env={**os.environ, "WHARF_PROFILE": "builtin", "WHARF_DATA_DIR": data, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if time.monotonic() - started > 10:
                raise SystemExit(f"{binary} gave no answer within 10 s")
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=BODY, headers=HEADERS)
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if b'"hi"' in answer.read():
                        return (time.monotonic() - started) * 1000
            except OSError:
                time.sleep(0.001)
    finally:
        proc.terminate()
        proc.wait()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep-data" in sys.argv
    binary, n = args[0], int(args[1]) if len(args) > 1 else 20
    for label, env in PROFILES:
        data = f"/tmp/wharf-cold-start-{os.getpid()}"
        shutil.rmtree(data, ignore_errors=True)
        times = []
        for _ in range(n):
            if not keep:
                shutil.rmtree(data, ignore_errors=True)
            times.append(one_start(binary, env, data))
        shutil.rmtree(data, ignore_errors=True)
        times.sort()
        print(f"{label}{' (restart)' if keep else ' (empty data dir)'}: n={n} min {times[0]:.1f} "
              f"median {statistics.median(times):.1f} p90 {times[max(0, int(n * 0.9) - 1)]:.1f} max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
