#!/usr/bin/env bash
# Catalog benchmark: import rate, then search_items and get_item latency (p50/p99)
# and throughput at 32 connections, on catalogs of 10k and 1M generated items,
# on SQLite and PostgreSQL. The server is pinned to core 0 and wrk to core 1.
#
#   bench/catalog/run.sh               # both sizes, both backends
#   SIZES="10000" BACKENDS=sqlite bench/catalog/run.sh
#
# Needs: a release build (built if missing), wrk and PostgreSQL's server binaries
# (Debian packages wrk, postgresql), python3. Results: bench/results/catalog-DATE.md
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/wharf
[ -x "$BIN" ] || cargo build --release -p wharf
SIZES=${SIZES:-"10000 1000000"}
BACKENDS=${BACKENDS:-"sqlite postgres"}
DURATION=${DURATION:-15s}
WORK=$TARGET/bench-catalog
mkdir -p "$WORK" bench/results
OUT=bench/results/catalog-$(date -u +%F).md
PORT=18123

pg_start() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
  PGDIR=/tmp/wharf-bench-pg; rm -rf "$PGDIR"; mkdir -p "$PGDIR"; chown postgres:postgres "$PGDIR" 2>/dev/null || true
  local as=(); [ "$(id -u)" = 0 ] && as=(su postgres -s /bin/sh -c)
  local init="$bin/initdb -D $PGDIR/data -U wharf -A trust --no-sync -E UTF8 >/dev/null"
  local start="$bin/pg_ctl -D $PGDIR/data -l $PGDIR/log -o '-p 15432 -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=512MB' -w start >/dev/null"
  if [ ${#as[@]} -gt 0 ]; then "${as[@]}" "$init && $start"; else sh -c "$init && $start"; fi
  PG_STOP="$bin/pg_ctl -D $PGDIR/data -m immediate stop"
  PG_AS=("${as[@]}")
}
pg_db() { psql -h 127.0.0.1 -p 15432 -U wharf -d postgres -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }
pg_stop() { if [ -n "${PG_STOP:-}" ]; then if [ ${#PG_AS[@]} -gt 0 ]; then "${PG_AS[@]}" "$PG_STOP" >/dev/null; else $PG_STOP >/dev/null; fi; fi; }
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; pg_stop' EXIT

wait_ready() {
  for _ in $(seq 1 400); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0; sleep 0.05; done
  echo "server did not start" >&2; return 1
}

# One wrk run at $3 connections (default 32); prints "req/s p50 p99".
load() {
  TOOL=$1 ITEMS=$2 taskset -c 1 wrk -t1 -c"${3:-32}" -d"$DURATION" --latency -s bench/catalog/mcp_call.lua "http://127.0.0.1:$PORT/mcp" > "$WORK/wrk.txt"
  if grep -q "Non-2xx" "$WORK/wrk.txt"; then echo "errors in the $1 run:" >&2; cat "$WORK/wrk.txt" >&2; return 1; fi
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")
  echo "$rps $p50 $p99"
}

check_call() {
  local body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2,\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}"
  curl -sf "http://127.0.0.1:$PORT/mcp" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H "mcp-name: $1" -d "$body" | grep -q '"isError":false' \
    || { echo "$1 $2 did not answer a result" >&2; return 1; }
}

case " $BACKENDS " in *" postgres "*) pg_start ;; esac
{
  echo "# Catalog benchmark, $(date -u +'%F %H:%M') UTC"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r). Server on core 0, wrk on core 1, 32 connections, $DURATION per run, stateless 2026-07-28 requests, logs at warn. Release build of $(git rev-parse --short HEAD)."
  echo
  echo "At 32 connections latency is mostly queueing (32 requests share one core); the c=1 columns show the time one search takes."
  echo
  echo "| backend | items | import (items/s) | search index build (s) | search req/s (c=32) | search p50 | search p99 | search p50 (c=1) | search p99 (c=1) | get_item req/s (c=32) | get p50 | get p99 |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} > "$OUT"
for n in $SIZES; do
  file=$WORK/items-$n.jsonl
  [ -s "$file" ] || python3 bench/catalog/generate.py "$n" > "$file"
  for backend in $BACKENDS; do
    data=$WORK/data-$backend-$n; rm -rf "$data"; mkdir -p "$data"
    # Rate limits off: one client sends thousands of requests a second (limits have their own tests).
    env=(WHARF_LOG=warn WHARF_PROFILE=catalog WHARF_RATE_LIMIT=false)
    if [ "$backend" = postgres ]; then pg_db "bench_$n"; env+=(WHARF_DATABASE="postgres://wharf@127.0.0.1:15432/bench_$n"); fi
    start=$(date +%s.%N)
    env "${env[@]}" "$BIN" --data-dir "$data" catalog import "$file" 2> "$WORK/import.log"
    # The import ends by building SQLite's search index; its time is its own column.
    index_s=$(sed -n 's/^search index up to date (\([0-9.]*\) s)$/\1/p' "$WORK/import.log")
    rate=$(python3 -c "print(round($n / ($(date +%s.%N) - $start - ${index_s:-0})))")
    env "${env[@]}" taskset -c 0 "$BIN" --data-dir "$data" serve --listen "127.0.0.1:$PORT" --stateless 2> "$WORK/serve-$backend-$n.log" &
    SERVER_PID=$!
    wait_ready
    check_call search_items '{"query":"event handler","limit":10}'
    check_call get_item '{"id":"gen-0000001"}'
    read -r s_rps s_p50 s_p99 < <(load search_items "$n")
    read -r _ s1_p50 s1_p99 < <(load search_items "$n" 1)
    read -r g_rps g_p50 g_p99 < <(load get_item "$n")
    kill "$SERVER_PID"; wait "$SERVER_PID" || true
    echo "| $backend | $n | $rate | ${index_s:--} | $s_rps | $s_p50 | $s_p99 | $s1_p50 | $s1_p99 | $g_rps | $g_p50 | $g_p99 |" | tee -a "$OUT"
  done
done
echo "wrote $OUT"
