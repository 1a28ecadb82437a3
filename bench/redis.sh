#!/usr/bin/env bash
# Redis 8 vector sets through semcached's client, against raw hiredis calls on the same
# server in the same run (bench/redis_bench.cpp). Starts a private Redis 8 (scripts/redis8.sh)
# on a free port, without persistence, and stops it afterwards.
# Usage: bench/redis.sh BUILD_DIR [--quick]   (--quick: 10K only; default 10K and 100K x 768)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
MODE="${2:-}"
SERVER="$ROOT/.deps/redis8/bin/redis-server"
CLI="$ROOT/.deps/redis8/bin/redis-cli"
mkdir -p "$ROOT/bench/results"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR="$(mktemp -d)"
"$SERVER" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize no \
  > "$DIR/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null; wait $REDIS_PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do "$CLI" -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
N="10000,100000"
[ "$MODE" = "--quick" ] && N="10000"
"$ROOT/$BUILD/bench/redis_bench" --port "$PORT" --n "$N" | tee "$ROOT/bench/results/redis.jsonl" > /dev/null
echo "results: bench/results/redis.jsonl"
