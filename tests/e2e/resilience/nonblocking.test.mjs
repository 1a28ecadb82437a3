// Nothing blocks an I/O thread (issue 14): Redis is paused with SIGSTOP for 3 s while clients
// search an embedded cache and a Redis cache on the same server. The embedded cache keeps
// answering fast (its requests stay on the I/O threads; the Redis cache's run on the worker
// pool), the Redis cache's requests end at their timeout with the typed 424 error, and every
// request succeeds again once Redis resumes. Run by CTest (labels e2e, redis) with
// E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "node:http";
import { serverTable, startRedis, startSemcached, stop } from "../support/processes.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const redisBinary = process.env.E2E_REDIS_SERVER;
const timeoutMs = 300;
let server, redis, port, dir;

// One POST over a keep-alive agent: {status, ms}.
function post(agent, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const started = process.hrtime.bigint();
    const req = request({ host: "127.0.0.1", port, path, method: "POST", agent,
                          headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } },
    (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const search = (agent, cache) => post(agent, `/v1/caches/${cache}/entries/search`, { prompt: "How do I reset my router password?" });

before(async () => {
  assert.ok(binary && redisBinary, "E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER are required");
  dir = mkdtempSync(join(tmpdir(), "semcached-nonblocking-"));
  redis = await startRedis(redisBinary, dir);
  ({ child: server, port } = await startSemcached(binary, dir, `${serverTable(dir)}
[redis]
url = "redis://127.0.0.1:${redis.port}"
command_timeout_ms = ${timeoutMs}
connect_timeout_ms = 200
# The breaker stays closed through the pause, so that every Redis cache request waits its
# full timeout (an open breaker would fail them at once and hide a blocked thread).
breaker_failures = 1000
breaker_open_ms = 200

[[caches]]
id = "local"

[[caches]]
id = "shared"
store = "redis"
`));
  const agent = new Agent({ keepAlive: true });
  for (const cache of ["local", "shared"]) {
    const stored = await post(agent, `/v1/caches/${cache}/entries`,
                              { prompt: "How do I reset my router password?", response: "Hold the reset button for ten seconds." });
    assert.equal(stored.status, 201, cache);
    assert.equal((await search(agent, cache)).status, 200, cache);
  }
  agent.destroy();
});

after(async () => {
  if (redis?.child) redis.child.kill("SIGCONT");
  await stop(server);
  await stop(redis?.child);
  rmSync(dir, { recursive: true, force: true });
});

test("a paused Redis slows only the Redis cache's requests, which end at their timeout", async () => {
  redis.child.kill("SIGSTOP");
  const pausedUntil = Date.now() + 3000;
  const local = [], shared = [];
  // Eight clients on the Redis cache (more than the server's two I/O threads), two on the
  // embedded one, each with connections of its own.
  const clients = (cache, n, into) => Array.from({ length: n }, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    while (Date.now() < pausedUntil) into.push(await search(agent, cache));
    agent.destroy();
  });
  await Promise.all([...clients("shared", 8, shared), ...clients("local", 2, local)]);
  redis.child.kill("SIGCONT");

  local.sort((a, b) => a.ms - b.ms);
  const p99 = local[Math.min(local.length - 1, Math.floor(0.99 * local.length))].ms;
  console.log(`embedded: ${local.length} searches, p99 ${p99.toFixed(2)} ms, max ${local.at(-1).ms.toFixed(1)} ms; Redis cache: ${shared.length}, slowest ${Math.max(...shared.map((r) => r.ms)).toFixed(0)} ms`);
  assert.ok(local.length > 100, `${local.length} embedded searches in 3 s`);
  assert.ok(local.every((r) => r.status === 200), "every embedded search answered");
  assert.ok(p99 < 20, `embedded p99 ${p99.toFixed(1)} ms while Redis is paused`);
  assert.ok(shared.length > 0);
  for (const r of shared) {
    assert.ok(r.status === 424 || r.status === 503, `Redis cache answered ${r.status}`);
    // The command timeout, plus the connection attempts the breaker allows: well under a second.
    assert.ok(r.ms < timeoutMs + 700, `a Redis cache request took ${r.ms.toFixed(0)} ms`);
  }

  // Redis is back: within a few seconds the Redis cache answers again (the breaker probes).
  const agent = new Agent({ keepAlive: true });
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await search(agent, "shared")).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 200, "the Redis cache answers again once Redis resumes");
  assert.equal((await search(agent, "local")).status, 200);
  agent.destroy();
});
