#!/usr/bin/env bash
# `make bench`: every benchmark, each printing a table and writing JSON to bench/results/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
echo "== HTTP floor: semcached vs nginx =="
bash "$ROOT/bench/http_floor.sh" "$BUILD"
