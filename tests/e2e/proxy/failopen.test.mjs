// Fail-open: the proxy's cache on Redis 8, and Redis killed mid-run. Requests keep being
// answered from upstream, within the Redis timeout, and never see a cache error. Run by CTest
// (labels e2e, redis) with E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { serverTable, startRedis, startSemcached, stop } from "../support/processes.mjs";
import { fakeOpenAI } from "../support/fake_openai.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const redisBinary = process.env.E2E_REDIS_SERVER;
let server, redis, upstream, url, dir;

before(async () => {
  assert.ok(binary && redisBinary, "E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER are required");
  dir = mkdtempSync(join(tmpdir(), "semcached-failopen-"));
  upstream = await fakeOpenAI((_, call) => `answer ${call}`,
                              { prompt_tokens: 1, completion_tokens: 2 });
  redis = await startRedis(redisBinary, dir);
  ({ child: server, url } = await startSemcached(binary, dir, `${serverTable(dir)}
[redis]
url = "redis://127.0.0.1:${redis.port}"
command_timeout_ms = 300
connect_timeout_ms = 200

[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"

[[caches]]
id = "llm"
store = "redis"
`));
});

after(async () => {
  await stop(server);
  await stop(redis?.child);
  upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("with Redis gone, requests still get answers, within the timeout", async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-test", maxRetries: 0 });
  const ask = (content) => client.chat.completions
    .create({ model: "gpt-4o-mini", messages: [{ role: "user", content }] }).withResponse();
  assert.equal((await ask("Is Redis there?")).response.headers.get("x-semcached-cache"), "miss");
  assert.equal((await ask("Is Redis there?")).response.headers.get("x-semcached-cache"), "hit");
  assert.equal(upstream.calls(), 1);

  const exited = new Promise((r) => redis.child.on("exit", r));
  redis.child.kill("SIGKILL");
  await exited;
  for (const question of ["Is Redis there?", "Is Redis there?", "A new question while Redis is down?"]) {
    const started = Date.now();
    const r = await ask(question);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.equal(r.response.status, 200);
    assert.equal(r.response.headers.get("x-semcached-cache"), "miss");
    assert.match(r.data.choices[0].message.content, /^answer \d+$/);
  }
  assert.equal(upstream.calls(), 4);
});
