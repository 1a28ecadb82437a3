#!/usr/bin/env python3
"""Gathers the figures `semcached plan` computes from, out of what the benchmarks wrote to
bench/results/: memory per entry beyond its text and snapshot/restore rates (cache_memory),
Redis bytes per vector (redis_bench), HTTP requests per second per kind (cache_http). Writes
bench/results/capacity.json and, with --install, src/app/capacity_figures.json, which the
build embeds in the binary. Every figure keeps where it came from.
Usage: python3 bench/capacity.py [--install]"""
import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")


def lines(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        sys.exit(f"capacity: {path} is missing: run the benchmark that writes it first (make bench)")
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def main():
    memory = [r for r in lines("cache_memory.jsonl") if r.get("bench") == "cache_memory"]
    restore = [r for r in lines("cache_memory.jsonl") if r.get("bench") == "cache_restore"]
    redis = [r for r in lines("redis.jsonl") if r.get("bench") == "redis_insert"]
    with open(os.path.join(RESULTS, "cache_http.json")) as f:
        http = json.load(f)
    if not memory or not restore or not redis or not http:
        sys.exit("capacity: a benchmark's results are empty")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    figures = {
        "measured": {"date": datetime.date.today().isoformat(), "commit": commit,
                     "cores": os.cpu_count(),
                     "how": "make bench: bench/cache_memory, bench/redis_bench, bench/cache_http.sh"},
        # Embedded: resident bytes per entry beyond its text, by dimension (the marginal cost
        # of one more entry, fixed costs left out), with float originals file-backed.
        "embedded_bytes_beyond_text": [
            {"dim": r["dim"], "embedder": r["embedder"], "entries": r["n"],
             "bytes": r["marginal_beyond_text_bytes"]} for r in memory],
        "snapshot": [
            {"dim": r["dim"], "entries": r["n"], "seconds": r["snapshot_seconds"],
             "restore_seconds": r["restore_seconds"],
             "extra_resident_bytes": r["snapshot_extra_bytes"]} for r in restore],
        # Redis: used_memory grown per vector added to a vector set, by quantization and dim.
        "redis_bytes_per_vector": [
            {"dim": r["dim"], "quant": r["quant"], "vectors": r["n"],
             "bytes": r["redis_bytes_per_vector"]} for r in redis],
        # HTTP requests per second with two I/O threads on this machine (wrk on the same cores).
        "http_requests_per_second": [
            {"embedder": r["embedder"], "entries": r["entries"], "exact": r["exact"],
             "semantic": r["semantic"], "miss": r["miss"], "io_threads": 2} for r in http],
    }
    text = json.dumps(figures, indent=2) + "\n"
    with open(os.path.join(RESULTS, "capacity.json"), "w") as f:
        f.write(text)
    print(f"capacity: wrote bench/results/capacity.json")
    if "--install" in sys.argv:
        with open(os.path.join(ROOT, "src", "app", "capacity_figures.json"), "w") as f:
            f.write(text)
        print("capacity: installed as src/app/capacity_figures.json (embedded at build)")


if __name__ == "__main__":
    main()
