#!/usr/bin/env bash
# Vector engine benchmark matrix: semcached's index against hnswlib (float32, same M and
# ef_construction), exact brute force and an exact int8 scan, in one run, on synthetic
# clustered vectors (512, 768, 1536 dimensions) and on real GloVe-derived word vectors.
# Usage: bench/vector.sh BUILD_DIR [--quick | --large]
#   --quick  10K vectors only (a few minutes)
#   default  adds 100K x 768 and GloVe-100 (331K)
#   --large  adds 1M x 768 (int8 with originals on disk; about an hour on 2 cores)
# Writes bench/results/vector.jsonl (one JSON object per engine and ef) and prints a table.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
MODE="${2:-}"
BIN="$ROOT/$BUILD/bench/vector_bench"
OUT="$ROOT/bench/results"
DATA="$ROOT/.deps/bench-data"
mkdir -p "$OUT" "$DATA"
RESULTS="$OUT/vector.jsonl"
: > "$RESULTS"
ORIG="$(mktemp -d)"
trap 'rm -rf "$ORIG"' EXIT

run() {  # args passed to vector_bench; progress on stderr, rows appended to the results
  echo "-- vector_bench $*" >&2
  "$BIN" --data-dir "$DATA" "$@" | tee -a "$RESULTS" > /dev/null
}

EF="16,32,64,128,256"
for dim in 512 768 1536; do
  for e in semcached semcached-int8 hnswlib; do run --dim "$dim" --n 10000 --engine "$e" --ef "$EF"; done
  run --dim "$dim" --n 10000 --engine semcached --originals-dir "$ORIG" --ef 64
  run --dim "$dim" --n 10000 --engine brute
done

if [ "$MODE" != "--quick" ]; then
  for e in semcached semcached-int8 hnswlib; do run --dim 768 --n 100000 --engine "$e" --ef "$EF"; done
  run --dim 768 --n 100000 --engine semcached --originals-dir "$ORIG" --ef 32,64
  run --dim 768 --n 100000 --engine brute
  run --dim 768 --n 100000 --engine int8scan

  bash "$ROOT/bench/fetch_glove.sh" >&2
  GEF="10,20,40,80,120,160,200,300,400"
  for e in semcached semcached-int8 hnswlib; do run --data glove --queries 10000 --engine "$e" --ef "$GEF"; done
  run --data glove --queries 10000 --engine semcached --originals-dir "$ORIG" --ef 200
  run --data glove --queries 10000 --engine brute
fi

if [ "$MODE" = "--large" ]; then
  run --dim 768 --n 1000000 --queries 1000 --engine semcached --originals-dir "$ORIG" --ef 32,64,128
  run --dim 768 --n 1000000 --queries 1000 --engine hnswlib --ef 32,64,128
  run --dim 768 --n 1000000 --queries 200 --engine int8scan
  run --dim 768 --n 1000000 --queries 200 --engine brute
fi

python3 "$ROOT/bench/vector_report.py" "$RESULTS"
