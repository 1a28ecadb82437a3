// `semcached plan` against the figures built into the binary (src/app/capacity_figures.json,
// written by bench/capacity.py from the benchmarks' results): its answers recomputed here from
// the same file, its assumptions printed, and its usage errors.
// Run by CTest (label e2e) with E2E_SEMCACHED_BINARY.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const binary = process.env.E2E_SEMCACHED_BINARY;
const figures = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)),
                                            "../../../src/app/capacity_figures.json"), "utf8"));
const plan = (...args) => spawnSync(binary, ["plan", ...args], { encoding: "utf8" });
const near = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

// The line through the measured (dim, bytes beyond the text) points, at dim.
function beyondText(dim) {
  const p = figures.embedded_bytes_beyond_text.map((r) => [r.dim, r.bytes]);
  if (p.length === 1) return p[0][1];
  const n = p.length, sx = p.reduce((a, [x]) => a + x, 0), sy = p.reduce((a, [, y]) => a + y, 0);
  const sxx = p.reduce((a, [x]) => a + x * x, 0), sxy = p.reduce((a, [x, y]) => a + x * y, 0);
  const b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  return (sy - b * sx) / n + b * dim;
}

test("an embedded plan: memory, disk, snapshot and CPU from the built-in figures", () => {
  const r = plan("--entries", "1000000", "--dim", "256", "--qps", "2000", "--json");
  assert.equal(r.status, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  const perEntry = 1200 + beyondText(256);
  near(p.bytesPerEntry, perEntry, "bytes per entry");
  near(p.memoryBytes, 64 * 1024 * 1024 + 1e6 * perEntry, "memory");
  const snap = figures.snapshot.reduce((best, s) => (!best || Math.abs(s.dim - 256) < Math.abs(best.dim - 256) ? s : best), null);
  near(p.snapshotSeconds, 1e6 / (snap.entries / snap.seconds), "snapshot");
  near(p.restoreSeconds, 1e6 / (snap.entries / snap.restore_seconds), "restore");
  const http = figures.http_requests_per_second.filter((h) => h.embedder === "model2vec")
    .reduce((best, h) => (!best || Math.abs(Math.log(h.entries / 1e6)) < Math.abs(Math.log(best.entries / 1e6)) ? h : best), null);
  near(p.cores, 2000 * http.io_threads * (0.3 / http.exact + 0.7 / http.semantic), "cores");
  assert.ok(p.assumptions.some((a) => a.includes(`measured ${figures.measured.date}`)));
  // The human form says the same and lists its assumptions.
  const text = plan("--entries", "1000000", "--dim", "256", "--qps", "2000");
  assert.equal(text.status, 0);
  assert.match(text.stdout, /memory per instance\s+[\d.]+ GiB/);
  assert.match(text.stdout, /CPU for 2000 req\/s\s+[\d.]+ cores/);
  assert.match(text.stdout, /Assumptions:\n(  - .+\n){5,}/);
});

test("a Redis plan: memory per shard from the measured vector-set figure", () => {
  const r = plan("--entries", "10000000", "--dim", "768", "--store", "redis", "--shards", "4",
                 "--prompt-bytes", "100", "--response-bytes", "500", "--json");
  assert.equal(r.status, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  const q8 = figures.redis_bytes_per_vector.filter((v) => v.quant === "q8").reduce((a, v) => Math.max(a, v.bytes), 0);
  const perEntry = Math.max(0, q8 - 768) + 768 + 600 + 250;
  near(p.redisBytesPerEntry, perEntry, "per entry");
  near(p.redisBytesPerShard, 1e7 / 4 * perEntry, "per shard");
  assert.equal(p.shards, 4);
});

test("usage errors are refused with a message", () => {
  let r = plan("--entries", "10", "--dim", "128", "--store", "disk");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--store must be embedded or redis/);
  r = plan("--entries", "10", "--dim", "128", "--shards", "3");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--shards applies to --store redis/);
  r = plan("--dim", "128");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr + r.stdout, /--entries is required/);
});
