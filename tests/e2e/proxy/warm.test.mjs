// `semcached warm`: prompts sent through a running proxy fill its cache before launch, after a
// cost estimate that must be confirmed. The upstream is a local fake speaking OpenAI's wire
// protocol (a paid API cannot run here). Run by CTest (label e2e) with E2E_SEMCACHED_BINARY.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverTable, startSemcached, stop } from "../support/processes.mjs";
import { fakeOpenAI } from "../support/fake_openai.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
let upstream, server, url, dir, config;

before(async () => {
  assert.ok(binary, "E2E_SEMCACHED_BINARY must name the semcached executable");
  upstream = await fakeOpenAI((q) => `The answer to: ${q}`, { prompt_tokens: 20, completion_tokens: 80 });
  dir = mkdtempSync(join(tmpdir(), "semcached-warm-"));
  ({ child: server, url } = await startSemcached(binary, dir, `${serverTable(dir)}
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"

[[caches]]
id = "llm"
`));
  config = join(dir, "semcached.toml");
});

after(async () => {
  await stop(server);
  upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

// Run asynchronously: the fake upstream answers from this same process.
const warm = (...args) => new Promise((resolve) => {
  const child = spawn(binary, ["warm", "--config", config, "--url", url, "--no-progress", "--rate", "50", ...args],
                      { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  child.stdin.end();  // not a terminal: no one to confirm
  child.on("close", (code) => resolve({ code, out }));
});

test("warming sends each prompt upstream once, and a second run is answered by the cache", async () => {
  const prompts = join(dir, "prompts.txt");
  writeFileSync(prompts, [
    "What are your opening hours?",
    "How do I reset my password?",
    "",
    "Do you ship to Canada?",
    '{"prompt": "Can I pay by invoice?", "model": "gpt-4o"}',
    "How long does delivery take?",
  ].join("\n") + "\n");
  const first = await warm("llm", "--prompts", prompts, "--yes");
  assert.equal(first.code, 0, first.out);
  assert.match(first.out, /5 prompts for cache llm/);
  assert.match(first.out, /at most \$0\.\d+/);
  assert.match(first.out, /0 answered from the cache, 5 sent upstream and stored, 0 failed/);
  assert.equal(upstream.calls(), 5);
  const stats = await (await fetch(`${url}/v1/caches/llm/stats`)).json();
  assert.equal(stats.entries, 5);

  const again = await warm("llm", "--prompts", prompts, "--yes");
  assert.equal(again.code, 0, again.out);
  assert.match(again.out, /5 answered from the cache, 0 sent upstream/);
  assert.equal(upstream.calls(), 5);
});

test("nothing is sent without a confirmation, for a bad line, or for another cache", async () => {
  const calls = upstream.calls();
  const prompts = join(dir, "more.txt");
  writeFileSync(prompts, "Is there a student discount?\n");
  const unconfirmed = await warm("llm", "--prompts", prompts);
  assert.equal(unconfirmed.code, 2, unconfirmed.out);
  assert.match(unconfirmed.out, /pass --yes/);
  const bad = join(dir, "bad.txt");
  writeFileSync(bad, 'Fine prompt\n{"prompt": 3}\n');
  const refused = await warm("llm", "--prompts", bad, "--yes");
  assert.equal(refused.code, 2, refused.out);
  assert.match(refused.out, /line 2/);
  const other = await warm("faq", "--prompts", prompts, "--yes");
  assert.equal(other.code, 2, other.out);
  assert.match(other.out, /proxy\.cache/);
  assert.equal(upstream.calls(), calls);
});
