// The official LangCache SDK (@redis-ai/langcache, from npm, unchanged) against a real
// semcached process. Run by CTest (label e2e) with E2E_SEMCACHED_BINARY set (not a
// SEMCACHED_ name: semcached refuses unknown variables of its own prefix). With
// E2E_REDIS_SERVER naming a Redis 8 server binary, the same tests run with the caches'
// entries in that Redis (store = "redis"), started here on a free port.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LangCache } from "@redis-ai/langcache";
import * as errors from "@redis-ai/langcache/models/errors";
import { serverTable, startRedis, startSemcached, stop } from "../support/processes.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const redisBinary = process.env.E2E_REDIS_SERVER;
let server, url, dir, redis;

before(async () => {
  assert.ok(binary, "E2E_SEMCACHED_BINARY must name the semcached executable");
  dir = mkdtempSync(join(tmpdir(), "semcached-sdk-"));
  let storeLines = "";
  if (redisBinary) {
    redis = await startRedis(redisBinary, dir);
    storeLines = `store = "redis"\n[redis]\nurl = "redis://127.0.0.1:${redis.port}"\n`;
  }
  ({ child: server, url } = await startSemcached(binary, dir, `admin_api_key = "adm"
${storeLines}
${serverTable(dir)}
[[caches]]
id = "faq"
api_keys = ["faq-key"]
similarity_threshold = 0.7

[[caches]]
id = "other"
api_keys = ["other-key"]
`));
});

after(async () => {
  await stop(server);
  await stop(redis?.child);
  rmSync(dir, { recursive: true, force: true });
});

const client = (cacheId = "faq", apiKey = "faq-key") => new LangCache({ serverURL: url, cacheId, apiKey });

test("the caches run on the store this run is for", async () => {
  const r = await fetch(`${url}/v1/caches/faq`, { headers: { Authorization: "Bearer adm" } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).store, redisBinary ? "redis" : "embedded");
});

test("store, then exact search returns the entry", async () => {
  const lc = client();
  const { entryId } = await lc.set({ prompt: "What is the capital of France?", response: "Paris." });
  assert.match(entryId, /^[0-9a-f]{32}$/);
  const { data } = await lc.search({ prompt: "what is the capital of France" });
  assert.equal(data.length, 1);
  assert.equal(data[0].id, entryId);
  assert.equal(data[0].response, "Paris.");
  assert.equal(data[0].searchStrategy, "exact");
  assert.equal(data[0].similarity, 1);
});

test("a paraphrase hits semantically, a different question misses", async () => {
  const lc = client();
  await lc.set({ prompt: "How do I reset my router password?", response: "Hold reset for 10 seconds." });
  const hit = await lc.search({ prompt: "how can I reset my router password" });
  assert.equal(hit.data.length, 1);
  assert.equal(hit.data[0].response, "Hold reset for 10 seconds.");
  assert.equal(hit.data[0].searchStrategy, "semantic");
  assert.ok(hit.data[0].similarity >= 0.7 && hit.data[0].similarity < 1);
  const miss = await lc.search({ prompt: "How do I bake sourdough bread?" });
  assert.deepEqual(miss.data, []);
  const onlyExact = await lc.search({ prompt: "how can I reset my router password", searchStrategies: ["exact"] });
  assert.deepEqual(onlyExact.data, []);
});

test("similarity and similarityThreshold are LangCache's normalized cosine, (1 + cos) / 2", async () => {
  const lc = client();
  await lc.set({ prompt: "What is the best way to store fresh herbs?", response: "Wrap in damp paper." });
  const r = await fetch(`${url}/v1/caches/faq/entries/search`, {
    method: "POST",
    headers: { Authorization: "Bearer faq-key", "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "how should I store fresh herbs" }),
  });
  const body = await r.json();
  assert.equal(body.data.length, 1);
  const cosine = Number(r.headers.get("x-semcached-similarity"));  // semcached's own: cosine
  assert.ok(Math.abs(body.data[0].similarity - (1 + cosine) / 2) < 1e-3, `${body.data[0].similarity} vs cos ${cosine}`);
  // A threshold just above the entry's normalized similarity misses; just below hits.
  const s = body.data[0].similarity;
  assert.deepEqual((await lc.search({ prompt: "how should I store fresh herbs", similarityThreshold: Math.min(1, s + 0.002) })).data, []);
  assert.equal((await lc.search({ prompt: "how should I store fresh herbs", similarityThreshold: s - 0.002 })).data.length, 1);
});

test("an entry stored under one user is never returned to another", async () => {
  const lc = client();
  await lc.set({ prompt: "What is my account balance?", response: "alice: 10", attributes: { user: "alice" } });
  const alice = await lc.search({ prompt: "What is my account balance?", attributes: { user: "alice" } });
  assert.equal(alice.data[0].response, "alice: 10");
  assert.deepEqual(alice.data[0].attributes, { user: "alice" });
  const bob = await lc.search({ prompt: "What is my account balance?", attributes: { user: "bob" } });
  assert.deepEqual(bob.data, []);
  const bobParaphrase = await lc.search({ prompt: "what's my account balance", attributes: { user: "bob" } });
  assert.deepEqual(bobParaphrase.data, []);
});

test("entries expire after ttlMillis", async () => {
  const lc = client();
  await lc.set({ prompt: "Short lived fact", response: "soon gone", ttlMillis: 300 });
  assert.equal((await lc.search({ prompt: "Short lived fact" })).data.length, 1);
  await new Promise((r) => setTimeout(r, 450));
  assert.deepEqual((await lc.search({ prompt: "Short lived fact" })).data, []);
});

test("delete by id, delete by attributes, flush", async () => {
  const lc = client();
  const { entryId } = await lc.set({ prompt: "Delete me please", response: "x" });
  await lc.deleteById(entryId);
  assert.deepEqual((await lc.search({ prompt: "Delete me please" })).data, []);
  await assert.rejects(lc.deleteById(entryId), errors.NotFoundErrorResponseContent);

  await lc.set({ prompt: "Team A question one", response: "a1", attributes: { team: "a" } });
  await lc.set({ prompt: "Team A question two", response: "a2", attributes: { team: "a" } });
  await lc.set({ prompt: "Team B question", response: "b", attributes: { team: "b" } });
  const { deletedEntriesCount } = await lc.deleteQuery({ attributes: { team: "a" } });
  assert.equal(deletedEntriesCount, 2);
  assert.equal((await lc.search({ prompt: "Team B question" })).data.length, 1);

  await lc.flush();
  assert.deepEqual((await lc.search({ prompt: "Team B question" })).data, []);
  assert.deepEqual((await lc.search({ prompt: "What is the capital of France?" })).data, []);
});

test("the SDK's typed errors: bad key, another cache's key, unknown cache, bad body", async () => {
  await assert.rejects(client("faq", "wrong-key").search({ prompt: "x" }), (e) => {
    assert.ok(e instanceof errors.AuthenticationErrorResponseContent, e.constructor.name);
    assert.equal(e.statusCode, 401);
    return true;
  });
  await assert.rejects(client("faq", "other-key").search({ prompt: "x" }), (e) => {
    assert.ok(e instanceof errors.ForbiddenErrorResponseContent, e.constructor.name);
    return true;
  });
  await assert.rejects(client("no-such-cache").search({ prompt: "x" }), (e) => {
    assert.ok(e instanceof errors.NotFoundErrorResponseContent, e.constructor.name);
    assert.equal(e.data$.type, "/errors/cache/not-found");
    return true;
  });
  await assert.rejects(client().search({ prompt: "x", similarityThreshold: 7 }), (e) => {
    assert.ok(e instanceof errors.BadRequestErrorResponseContent, e.constructor.name);
    assert.equal(e.data$.fields[0].field, "similarityThreshold");
    return true;
  });
  await assert.rejects(client().set({ prompt: "bad \ud800 text", response: "r" }), (e) => {
    assert.ok(e instanceof errors.BadRequestErrorResponseContent || e instanceof errors.SDKValidationError, e.constructor.name);
    return true;
  });
});
