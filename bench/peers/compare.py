"""Side-by-side: the same stateless echo/add tools/call load on each MCP stack.

Run by bench/run, which installs the peers. Each subject in turn: spawn it pinned
to core 0, time spawn -> first good answer (cold start), check its answers, warm
up, then wrk (pinned to core 1) at 32 connections and at 1, while its CPU time
and peak RSS are read from /proc. Ratios are to the bare axum handler of the
same run. Writes a Markdown table to stdout.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TOOLS = os.environ["BENCH_TOOLS"]  # where bench/run installed the peers
DURATION = os.environ.get("DURATION", "10s")
WARMUP = os.environ.get("WARMUP", "2s")
KEY = "bench-key-0123456789abcdef0123456789abcdef"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wharf(on: bool):
    env = {"WHARF_PROFILE": "builtin", "WHARF_DATA_DIR": os.path.join(TARGET, "bench-peers", "data")}
    if on:
        # Production defaults: a key, rate limits (high enough not to refuse the
        # load), metrics, the access and tool-call log lines (JSON, to a file).
        env.update({"MCP_API_KEY": KEY, "WHARF_RATE_LIMIT_SUBJECT": "1000000000", "WHARF_LOG_FORMAT": "json",
                    "WHARF_LOG": "info"})
    else:
        env.update({"WHARF_RATE_LIMIT": "false", "WHARF_LOG": "warn", "WHARF_SESSION_STORE": "memory"})
    return env


# name, command (PORT substituted), environment, protocol, bearer
SUBJECTS = [
    ("bare axum (limit)", [f"{TARGET}/release/bare-axum", "PORT"], {}, "2026-07-28", None),
    ("raw rmcp", [f"{TARGET}/release/raw-rmcp", "PORT"], {}, "2026-07-28", None),
    ("Wharf, defaults on", [f"{TARGET}/release/wharf", "serve", "--listen", "127.0.0.1:PORT"], wharf(True), "2026-07-28", KEY),
    ("Wharf, defaults off", [f"{TARGET}/release/wharf", "serve", "--listen", "127.0.0.1:PORT"], wharf(False), "2026-07-28", None),
    # The same two with the stateless fast path off (every call through rmcp's service): what it buys, same run.
    ("Wharf, defaults on, no fast path", [f"{TARGET}/release/wharf", "serve", "--listen", "127.0.0.1:PORT"],
     {**wharf(True), "WHARF_FAST_PATH": "false"}, "2026-07-28", KEY),
    ("Wharf, defaults off, no fast path", [f"{TARGET}/release/wharf", "serve", "--listen", "127.0.0.1:PORT"],
     {**wharf(False), "WHARF_FAST_PATH": "false"}, "2026-07-28", None),
    # One hop: `wharf gateway` (defaults off) in front of a `wharf serve` (defaults off) with the same tools,
    # names unprefixed. Both processes share core 0 (req/s and latency are the pair's); CPU and RSS are the gateway's.
    ("Wharf gateway -> Wharf", [f"{TARGET}/release/wharf", "gateway", "--upstreams", "UPSTREAMS", "--listen",
                                "127.0.0.1:PORT"], wharf(False), "2026-07-28", None),
    # A 2025-11-25 session: initialize once, then every call carries Mcp-Session-Id
    # and is answered as a server-sent event.
    ("Wharf, legacy session (SSE)", [f"{TARGET}/release/wharf", "serve", "--listen", "127.0.0.1:PORT"], wharf(False),
     "2025-11-25", None),
    # bench/run copies ts_server.mjs next to its node_modules (ESM resolves there).
    ("TypeScript SDK", [f"{TOOLS}/node", f"{TOOLS}/ts/ts_server.mjs", "PORT"], {}, "2025-06-18", None),
    ("FastMCP", [f"{TOOLS}/venv/bin/python", os.path.join(ROOT, "bench/peers/fastmcp_server.py"), "PORT"], {}, "2025-06-18", None),
]


SESSIONS: dict[int, str] = {}


def rpc(port: int, proto: str, bearer, message: dict):
    """POST one JSON-RPC message; (the answer or None, response headers)."""
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": proto, **({"authorization": f"Bearer {bearer}"} if bearer else {})}
    if port in SESSIONS:
        headers["mcp-session-id"] = SESSIONS[port]
    if message.get("method") == "tools/call":
        headers.update({"mcp-method": "tools/call", "mcp-name": message["params"]["name"]})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=json.dumps(message).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=5) as r:
        text = r.read().decode()
        got = dict(r.headers)
    if not text.strip():
        return None, got
    # SDKs may answer one SSE event even when asked for JSON; take its data.
    if not text.lstrip().startswith("{"):
        text = next(l[5:] for l in text.splitlines() if l.startswith("data:") and l[5:].strip())
    return json.loads(text), got


def open_session(port: int, proto: str, bearer):
    _, headers = rpc(port, proto, bearer, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": proto, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    SESSIONS[port] = next(v for k, v in headers.items() if k.lower() == "mcp-session-id")
    rpc(port, proto, bearer, {"jsonrpc": "2.0", "method": "notifications/initialized"})


def call(port: int, proto: str, bearer, tool: str, args: dict, rid: int = 1):
    params = {"name": tool, "arguments": args}
    if proto == "2026-07-28":
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": proto,
                           "io.modelcontextprotocol/clientCapabilities": {}}
    return rpc(port, proto, bearer, {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})[0]


def texts(answer) -> str:
    return " ".join(c.get("text", "") for c in answer["result"]["content"])


def proc_stat(pid: int):
    """(cpu seconds, peak RSS KiB) of pid."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    with open(f"/proc/{pid}/status") as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    return cpu, hwm


def wrk(port: int, proto: str, bearer, connections: int, duration: str):
    env = {**os.environ, "PROTO": proto}
    if port in SESSIONS:
        env["SESSION"] = SESSIONS[port]
    if bearer:
        env["BEARER"] = bearer
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}", "--latency",
         "-s", os.path.join(ROOT, "bench/peers/tools.lua"), f"http://127.0.0.1:{port}/mcp"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors under load:\n{out}")

    def ms(label):
        v = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        n, unit = float(v.group(1)), v.group(2)
        return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "requests": requests}


def upstream_for_gateway(env):
    """A `wharf serve` for the gateway to front, and the upstream file naming it."""
    port = free_port()
    log = open(os.path.join(TARGET, "bench-peers", "gateway-upstream.log"), "w")
    p = subprocess.Popen(["taskset", "-c", "0", f"{TARGET}/release/wharf", "serve", "--listen", f"127.0.0.1:{port}"],
                         env={**os.environ, **env}, stdout=log, stderr=log)
    started = time.monotonic()
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            if p.poll() is not None or time.monotonic() - started > 60:
                raise RuntimeError("the gateway's upstream did not start")
            time.sleep(0.01)
    path = os.path.join(TARGET, "bench-peers", "mcp.json")
    with open(path, "w") as f:
        json.dump({"servers": [{"name": "wharf", "namespace": "", "url": f"http://127.0.0.1:{port}/mcp",
                                "max_concurrency": 64}]}, f)
    return p, path


def measure(name, cmd, env, proto, bearer):
    upstream = None
    if "UPSTREAMS" in cmd:
        upstream, path = upstream_for_gateway(env)
        cmd = [path if c == "UPSTREAMS" else c for c in cmd]
    try:
        return measure_one(name, cmd, env, proto, bearer)
    finally:
        if upstream:
            upstream.send_signal(signal.SIGTERM)
            upstream.wait(timeout=10)


def measure_one(name, cmd, env, proto, bearer):
    port = free_port()
    cmd = [c.replace("PORT", str(port)) for c in cmd]
    log = open(os.path.join(TARGET, "bench-peers", re.sub(r"\W+", "-", name) + ".log"), "w")
    started = time.monotonic()
    p = subprocess.Popen(["taskset", "-c", "0", *cmd], env={**os.environ, **env}, stdout=log, stderr=log)
    try:
        while True:
            try:
                if "session" in name:
                    open_session(port, proto, bearer)
                answer = call(port, proto, bearer, "echo", {"text": "hello"})
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if p.poll() is not None or time.monotonic() - started > 60:
                    raise RuntimeError(f"{name} did not start; see its log")
                time.sleep(0.002)
        cold_ms = (time.monotonic() - started) * 1000
        assert texts(answer) == "hello", answer
        added = texts(call(port, proto, bearer, "add", {"a": 2, "b": 3}))
        assert added in ("5", "5.0"), added
        wrk(port, proto, bearer, 32, WARMUP)
        cpu0, _ = proc_stat(p.pid)
        c32 = wrk(port, proto, bearer, 32, DURATION)
        cpu1, rss = proc_stat(p.pid)
        c1 = wrk(port, proto, bearer, 1, os.environ.get("DURATION_C1", "5s"))
        return {"name": name, "cold_ms": cold_ms, "rss_mb": rss / 1024, "c32": c32, "c1": c1,
                "cpu_us": (cpu1 - cpu0) / c32["requests"] * 1e6}
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def stdio_round_trips(seconds: float = 5.0):
    """Sequential echo calls to `wharf stdio` (newline-delimited JSON-RPC): calls/s."""
    env = {**os.environ, **wharf(False)}
    p = subprocess.Popen(["taskset", "-c", "0", f"{TARGET}/release/wharf", "stdio"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def send(message):
        p.stdin.write(json.dumps(message) + "\n")
        p.stdin.flush()

    send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    p.stdout.readline()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    n, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        n += 1
        send({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}})
        answer = json.loads(p.stdout.readline())
        assert answer["id"] == n and "result" in answer, answer
    rate = n / (time.monotonic() - started)
    p.stdin.close()
    p.wait(timeout=10)
    return rate


def main():
    os.makedirs(os.path.join(TARGET, "bench-peers"), exist_ok=True)
    shutil.rmtree(os.path.join(TARGET, "bench-peers", "data"), ignore_errors=True)
    only = sys.argv[1:]
    rows = []
    for s in SUBJECTS:
        if only and not any(o.lower() in s[0].lower() for o in only):
            continue
        print(f"bench: {s[0]} ...", file=sys.stderr, flush=True)
        rows.append(measure(*s))
    bare = next((r for r in rows if r["name"].startswith("bare")), None)
    stdio = stdio_round_trips() if not only or any("stdio" in o for o in only) else None
    print("| stack | req/s (c=32) | p50 ms | p99 ms | req/s vs bare | p99 vs bare | p50 ms (c=1) | p99 ms (c=1) "
          "| CPU µs/req | peak RSS MB | cold start ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        c32, c1 = r["c32"], r["c1"]
        ratio = f"{c32['rps'] / bare['c32']['rps']:.2f}x" if bare else "-"
        p99r = f"{c32['p99'] / bare['c32']['p99']:.2f}x" if bare else "-"
        print(f"| {r['name']} | {c32['rps']:,.0f} | {c32['p50']:.2f} | {c32['p99']:.2f} | {ratio} | {p99r} "
              f"| {c1['p50']:.3f} | {c1['p99']:.3f} | {r['cpu_us']:.0f} | {r['rss_mb']:.1f} | {r['cold_ms']:.0f} |")
    if stdio:
        print(f"\n`wharf stdio`, sequential echo calls from one client (the client in Python): {stdio:,.0f} round trips/s")


if __name__ == "__main__":
    main()

