// GET /v1/caches/{id}/recommendations on a running server: advice with its numbers from what
// the caches measured. A small cache that evicts most of what it stores is told to grow; a
// cache of 1,500 entries gets recall probes at four search_ef values; a Redis cache gets the
// pool's figures; every setting is listed with its verdict.
// Run by CTest (labels e2e, redis) with E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverTable, startRedis, startSemcached, stop } from "../support/processes.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const redisBinary = process.env.E2E_REDIS_SERVER;
let dir, redis, server, url;

before(async () => {
  assert.ok(binary && redisBinary, "E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER are required");
  dir = mkdtempSync(join(tmpdir(), "semcached-recommend-"));
  redis = await startRedis(redisBinary, dir);
  ({ child: server, url } = await startSemcached(binary, dir, `${serverTable(dir)}
[redis]
url = "redis://127.0.0.1:${redis.port}"

[[caches]]
id = "small"
max_entries = 100

[[caches]]
id = "big"
search_ef = 8
ttl_ms = 3600000

[[caches]]
id = "shared"
store = "redis"
`));
});

after(async () => {
  await stop(server);
  await stop(redis?.child);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (path, body) => fetch(url + path, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const topics = ["invoice", "password", "delivery", "refund", "warranty", "account", "order", "coupon"];
const question = (i) => `How do I change the ${topics[i % topics.length]} settings for case number ${i}?`;

async function advice(cache) {
  const r = await fetch(`${url}/v1/caches/${cache}/recommendations`);
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.cacheId, cache);
  return body;
}
const setting = (body, name) => body.checked.find((a) => a.setting === name);

test("a cache that evicts most of what it stores is told to grow, with the memory it costs", async () => {
  for (let i = 0; i < 400; i++) await post("/v1/caches/small/entries", { prompt: question(i), response: `Answer ${i}.` });
  const body = await advice("small");
  const limit = setting(body, "max_entries");
  assert.equal(limit.verdict, "change");
  assert.equal(limit.current, "100");
  assert.equal(limit.suggested, "200");
  assert.equal(limit.evidence.stores, 400);
  assert.equal(limit.evidence.evictedPerStore, 0.75);
  assert.ok(limit.evidence.bytesPerEntry > 100);
  assert.match(limit.reason, /KiB more in this process/);
  assert.ok(body.recommendations.some((a) => a.setting === "max_entries"));
  // Every setting is checked and says why, whatever the verdict.
  assert.deepEqual(body.checked.map((a) => a.setting),
                   ["similarity_threshold", "default_ttl_ms", "max_entries", "search_ef", "embedder"]);
  for (const a of body.checked) assert.ok(a.reason.length > 20, a.setting);
  assert.equal(setting(body, "similarity_threshold").verdict, "not_enough_data");
});

test("recall probes at four search_ef values on a cache large enough for them to matter", async () => {
  for (let i = 0; i < 1500; i++) await post("/v1/caches/big/entries", { prompt: question(i), response: `Answer ${i}.` });
  for (let i = 0; i < 120; i++) await post("/v1/caches/big/entries/search", { prompt: question(i) });
  const body = await advice("big");
  const ef = setting(body, "search_ef");
  assert.equal(ef.current, "8");
  assert.equal(ef.evidence.probeQueries, 50);
  const recalls = [4, 8, 16, 32].map((e) => ef.evidence[`recallAtEf${e}`]);
  for (const r of recalls) assert.ok(r > 0 && r <= 1, `recall ${recalls}`);
  assert.ok(recalls[3] >= recalls[0], `recall ${recalls}`);
  assert.ok(["change", "keep"].includes(ef.verdict));
  // Exact hits on fresh entries: early in their hour-long lives, few expired.
  const ttl = setting(body, "default_ttl_ms");
  assert.equal(ttl.evidence.hitsWithTtl, 120);
  assert.equal(ttl.evidence.hitsInFirstFifthOfLife, 1);
  assert.equal(ttl.verdict, "keep");
  const embedder = setting(body, "embedder");
  assert.equal(embedder.verdict, "keep");
  assert.ok(embedder.evidence.meanLookupMs > 0);
});

test("a Redis cache also gets the pool's figures; an unknown cache is refused", async () => {
  for (let i = 0; i < 30; i++) await post("/v1/caches/shared/entries", { prompt: question(i), response: `Answer ${i}.` });
  const body = await advice("shared");
  const pool = setting(body, "redis.pool_max");
  assert.equal(pool.current, "50");
  assert.equal(pool.verdict, "keep");
  assert.ok(pool.evidence.busyShare >= 0 && pool.evidence.busyShare < 0.9);
  // 30 entries: too few for search_ef to matter, but the probe ran in Redis (VSIM ... TRUTH).
  const ef = setting(body, "search_ef");
  assert.equal(ef.verdict, "keep");
  assert.equal(ef.evidence.probeQueries, 30);
  const recalls = Object.entries(ef.evidence).filter(([k]) => k.startsWith("recallAtEf"));
  assert.equal(recalls.length, 4);
  for (const [k, v] of recalls) assert.equal(v, 1, k);  // 30 vectors: the graph finds them all
  // As on every cache route: without a key, 401 (no hint whether it exists); with one, 404.
  assert.equal((await fetch(`${url}/v1/caches/nope/recommendations`)).status, 401);
  const missing = await fetch(`${url}/v1/caches/nope/recommendations`, { headers: { authorization: "Bearer some-key" } });
  assert.equal(missing.status, 404);
});
