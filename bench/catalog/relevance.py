#!/usr/bin/env python3
"""Relevance benchmark for the catalog's `search_items` tool.

Starts `wharf serve` on a free loopback port with a fresh data directory (so the
first serve loads the embedded web-platform sample), asks every query of
`relevance.jsonl` through the JSON action API, and scores the top 10 hit ids
against the graded judgements: nDCG@10 (graded gain, log2 discount, ideal from
the judged list) and recall@10 (judged ids found in the top 10 / all judged).

The judgements were chosen from the data, not from any engine's output; see the
`note` of a line for why a query's ids are what they are.

A benchmark, not a test: it exits 0 whatever the scores, and 2 only when the
server cannot be started or never becomes ready. Python 3 standard library only.

    python3 bench/catalog/relevance.py [--wharf target/release/wharf] [--json out.json]
    python3 bench/catalog/relevance.py --backend postgres --database postgres://u:p@host/db
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_QUERIES = os.path.join(HERE, "relevance.jsonl")
K = 10
# Loading and indexing 12,522 items takes a few seconds on a release build and
# longer on a debug one; 120 s leaves room for a busy machine.
READY_TIMEOUT_S = 120.0
# The search index is rebuilt in the background after the sample is loaded and
# FTS5 answers until then; equal answers this many polls in a row, this far apart,
# are taken to mean the index is in place.
STABLE_POLLS = 3
STABLE_INTERVAL_S = 2.0
PROBE_QUERIES = ["css", "fetch", "audio context", "flex"]
REQUEST_TIMEOUT_S = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=REQUEST_TIMEOUT_S):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def search(base, query, limit=K):
    """The hit ids of search_items, or raises RuntimeError."""
    body = {"action": "call_tool", "name": "search_items",
            "arguments": {"query": query, "limit": limit}}
    for attempt in range(5):
        status, raw = http("POST", base + "/mcp", body)
        if status == 429:  # rate limits are off for the child, but be safe
            time.sleep(1.0 + attempt)
            continue
        break
    if status != 200:
        raise RuntimeError("search %r: HTTP %d: %s" % (query, status, raw[:200]))
    result = json.loads(raw)
    if result.get("isError"):
        text = " ".join(c.get("text", "") for c in result.get("content", []))
        raise RuntimeError("search %r: tool error: %s" % (query, text[:200]))
    hits = (result.get("structuredContent") or {}).get("hits") or []
    return [h["id"] for h in hits]


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def score(hit_ids, relevant):
    top = hit_ids[:K]
    ideal = dcg(sorted(relevant.values(), reverse=True)[:K])
    ndcg = dcg([relevant.get(i, 0) for i in top]) / ideal if ideal else 0.0
    found = sum(1 for i in relevant if i in top)
    recall = found / len(relevant) if relevant else 0.0
    return ndcg, recall


def load_queries(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            if not row.get("relevant"):
                sys.exit("%s:%d: no relevant ids" % (path, n))
            out.append(row)
    return out


def child_env():
    # Only our flags decide what is served: a WHARF_DATABASE or config in the
    # caller's environment must not point the benchmark at some other catalog.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WHARF_") or k.startswith("WHARF_LOG")}
    # ~100 queries plus probes go past the anonymous default of 100/minute.
    env["WHARF_RATE_LIMIT"] = "false"
    return env


def wait_ready(proc, base, log_path):
    deadline = time.monotonic() + READY_TIMEOUT_S

    def alive():
        if proc.poll() is not None:
            fail("wharf exited with %s before it was ready" % proc.returncode, log_path)
        if time.monotonic() > deadline:
            fail("wharf not ready after %.0f s" % READY_TIMEOUT_S, log_path)

    while True:
        alive()
        try:
            status, _ = http("GET", base + "/ready", timeout=2)
            if status == 200:
                break
        except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
            pass
        time.sleep(0.25)
    previous, same = None, 0
    while True:
        alive()
        try:
            answers = [search(base, q) for q in PROBE_QUERIES]
        except (RuntimeError, urllib.error.URLError, OSError):
            answers = None
        if answers and all(answers):
            same = same + 1 if answers == previous else 1
            previous = answers
            if same >= STABLE_POLLS:
                return
        time.sleep(STABLE_INTERVAL_S if answers and all(answers) else 0.5)


def fail(message, log_path):
    sys.stderr.write("relevance: %s\n" % message)
    if log_path and os.path.exists(log_path):
        with open(log_path, errors="replace") as f:
            tail = f.readlines()[-20:]
        sys.stderr.write("--- wharf log (last lines) ---\n" + "".join(tail))
    raise SystemExit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wharf", default=os.environ.get("WHARF_BIN", "target/release/wharf"),
                    help="the wharf binary (env WHARF_BIN; default target/release/wharf)")
    ap.add_argument("--queries", default=DEFAULT_QUERIES, help="judgements (JSONL)")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database", help="postgres://… URL (an empty database: the sample is loaded into it)")
    ap.add_argument("--json", metavar="FILE", help="write per-query and mean figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args()

    if args.backend == "postgres" and not args.database:
        ap.error("--backend postgres needs --database URL")
    if args.backend == "sqlite" and args.database:
        ap.error("--database is for --backend postgres")
    binary = os.path.abspath(args.wharf)
    if not os.access(binary, os.X_OK):
        fail("no executable wharf at %s (build it, or pass --wharf / WHARF_BIN)" % binary, None)

    queries = load_queries(args.queries)
    tmp = tempfile.mkdtemp(prefix="wharf-relevance-")
    data_dir = os.path.join(tmp, "data")
    log_path = os.path.join(tmp, "wharf.log")
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    cmd = [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir", data_dir]
    if args.database:
        cmd += ["--database", args.database]
    log = open(log_path, "wb")
    # cwd is the empty temp dir, so no ./wharf.toml of the caller is read.
    proc = subprocess.Popen(cmd, cwd=tmp, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        wait_ready(proc, base, log_path)
        ready_s = time.monotonic() - t0
        rows = []
        for q in queries:
            try:
                ids = search(base, q["query"])
                error = None
            except (RuntimeError, urllib.error.URLError, OSError) as e:
                ids, error = [], str(e)
            ndcg, recall = score(ids, q["relevant"])
            rows.append({"query": q["query"], "ndcg10": ndcg, "recall10": recall,
                         "hits": len(ids), "first": ids[0] if ids else None,
                         "top": ids[:K], "error": error})
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    n = len(rows)
    mean_ndcg = sum(r["ndcg10"] for r in rows) / n
    mean_recall = sum(r["recall10"] for r in rows) / n
    zero = sum(1 for r in rows if r["hits"] == 0)
    errors = sum(1 for r in rows if r["error"])

    width = min(40, max(len(r["query"]) for r in rows))
    print("%-*s  %7s  %9s  %4s  %s" % (width, "query", "nDCG@10", "recall@10", "hits", "first id"))
    for r in rows:
        q = r["query"] if len(r["query"]) <= width else r["query"][:width - 1] + "…"
        first = r["first"] or ("(error: %s)" % r["error"] if r["error"] else "-")
        print("%-*s  %7.3f  %9.3f  %4d  %s" % (width, q, r["ndcg10"], r["recall10"], r["hits"], first))
    print()
    print("backend: %s   queries: %d   ready after %.1f s" % (args.backend, n, ready_s))
    print("mean nDCG@10:   %.4f" % mean_ndcg)
    print("mean recall@10: %.4f" % mean_recall)
    print("zero-hit queries: %d" % zero)
    if errors:
        print("queries that failed: %d" % errors)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"binary": binary, "backend": args.backend, "k": K,
                       "queries": n, "mean_ndcg10": mean_ndcg, "mean_recall10": mean_recall,
                       "zero_hit_queries": zero, "failed_queries": errors, "per_query": rows},
                      f, indent=2)
            f.write("\n")
    if args.keep:
        print("data directory kept: %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
