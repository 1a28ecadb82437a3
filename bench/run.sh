#!/usr/bin/env bash
# `make bench`: every benchmark, each printing a table and writing JSON to bench/results/.
# Usage: bench/run.sh BUILD_DIR [--quick | --large]   (see bench/vector.sh for the sizes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
MODE="${2:-}"
mkdir -p "$ROOT/bench/results"
cd "$ROOT"

echo "== Distance kernels per instruction set (one thread, data in cache) =="
"$BUILD/bench/kernels_bench" --benchmark_min_time=0.2 \
  --benchmark_out=bench/results/kernels.json --benchmark_out_format=json

echo "== Vector index: semcached vs hnswlib vs brute force =="
bash bench/vector.sh "$BUILD" $MODE

echo "== Redis 8 vector sets: semcached's client vs raw hiredis, pipelined vs sequential =="
bash bench/redis.sh "$BUILD" $([ "$MODE" = "--quick" ] && echo --quick)

echo "== LSH vs HNSW =="
"$BUILD/bench/lsh_bench" --n "$([ "$MODE" = "--quick" ] && echo 20000 || echo 100000)"

echo "== Hit quality through the HTTP API: static model vs n-gram, guards on and off =="
node bench/hit_quality_http.mjs "$BUILD/src/semcached"
echo "== Hit quality per threshold, in process (model2vec, then ngram; guards applied to QQP too) =="
for embedder in model2vec ngram; do
  "$BUILD/bench/hit_quality" --embedder "$embedder" --qqp-guards \
    --qqp "$ROOT/../shared/data/semantic-pairs/meancache/val.csv" \
    --cannot "$ROOT/../shared/data/semantic-pairs/cannot/sem_anto_neg.tsv" \
    --json "bench/results/hit_quality_$embedder.json"
done

echo "== Embedding time per prompt: static model vs n-gram (one thread) =="
"$BUILD/bench/embed_bench" --questions "$ROOT/../shared/data/semantic-pairs/meancache/val.csv"

echo "== Semantic tier: recall@1 per search_ef against an exact scan =="
"$BUILD/bench/cache_recall" --n "$([ "$MODE" = "--quick" ] && echo 10000 || echo 50000)" \
  2> bench/results/cache_recall.jsonl

echo "== Memory per cache entry beyond its text: static model (128-d), then n-gram (512-d) =="
for embedder in model2vec ngram; do
  "$BUILD/bench/cache_memory" --embedder "$embedder" --persist \
    --n "$([ "$MODE" = "--quick" ] && echo 20000 || echo 100000)"
done | tee bench/results/cache_memory.jsonl

echo "== One lookup in process, by stage: exact vs semantic hits, static model vs n-gram =="
for embedder in model2vec ngram; do
  "$BUILD/bench/cache_lookup" --embedder "$embedder" --words "$ROOT/bench/bench_words.txt" \
    --n "$([ "$MODE" = "--quick" ] && echo 10000 || echo 100000)"
done | tee bench/results/cache_lookup.txt

echo "== Cache throughput over HTTP: exact, semantic, miss vs nginx =="
bash bench/cache_http.sh "$BUILD" $([ "$MODE" = "--quick" ] && echo 10000 || echo 10000 100000)

echo "== Caching proxy: added latency and a replayed Zipf workload (fake OpenAI upstream) =="
node bench/proxy_bench.mjs "$BUILD/src/semcached" --requests "$([ "$MODE" = "--quick" ] && echo 1000 || echo 5000)" \
  2> >(grep -E '^  ' >&2) | tee bench/results/proxy.jsonl

echo "== Thresholds on a stream: static 0.80-0.99 vs adaptive error bounds (val.csv, fake upstream) =="
node bench/stream_bench.mjs "$BUILD/src/semcached" \
  $([ "$MODE" = "--quick" ] && echo "--limit 3000 --thresholds 0.85,0.90,0.95,0.96,0.97,0.98,0.99" || \
    echo "--thresholds 0.80,0.81,0.82,0.83,0.84,0.85,0.86,0.87,0.88,0.89,0.90,0.91,0.92,0.93,0.94,0.95,0.96,0.97,0.98,0.99") \
  2> >(grep -vE '^[0-9]{4}-' >&2) | tee bench/results/stream.md

echo "== HTTP floor: semcached vs nginx =="
bash bench/http_floor.sh "$BUILD"

echo "== What OpenTelemetry export costs: export off vs on, traces at ratio 1 and 0.1 =="
for ratio in 1 0.1; do
  node bench/otel_overhead.mjs "$BUILD/src/semcached" --ratio "$ratio" \
    --rounds "$([ "$MODE" = "--quick" ] && echo 3 || echo 7)" 2> >(grep -E '^round' >&2)
done

echo "== Capacity figures for semcached plan (bench/results/capacity.json) =="
python3 bench/capacity.py
echo "(python3 bench/capacity.py --install copies them into src/app/capacity_figures.json, built into the binary)"
