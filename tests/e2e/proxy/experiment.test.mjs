// A/B threshold experiments through the caching proxy and the official OpenAI SDK: each end
// user (the request's `user`) is served by one arm every time; the experiments route and
// /metrics count per arm and compare the arms; ending the experiment makes the winner's
// threshold the cache's. The LangCache search route splits by X-Semcached-Split-Key. The
// upstream is a local fake speaking OpenAI's wire protocol (a paid API cannot run here).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { serverTable, startSemcached, stop } from "../support/processes.mjs";
import { fakeOpenAI } from "../support/fake_openai.mjs";
import { metricSum } from "../support/metrics.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
let upstream, server, url, dir, client;
const armOf = {};  // user -> the arm that served them

// A help desk's model: one answer per question, whatever the wording.
const answerFor = (q) => (/password/i.test(q) ? "Hold the reset button for ten seconds."
  : /invoice/i.test(q) ? "Invoices are under Billing, then History." : "Please contact support.");

before(async () => {
  assert.ok(binary, "E2E_SEMCACHED_BINARY must name the semcached executable");
  upstream = await fakeOpenAI(answerFor, { prompt_tokens: 30, completion_tokens: 90 });
  dir = mkdtempSync(join(tmpdir(), "semcached-experiment-"));
  ({ child: server, url } = await startSemcached(binary, dir, `${serverTable(dir)}
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"

[[caches]]
id = "llm"
similarity_threshold = 0.7
experiment_arms = ["strict threshold=0.99", "loose threshold=0.70"]
`));
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-test", maxRetries: 0 });
});

after(async () => {
  await stop(server);
  upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ask = (content, user) =>
  client.chat.completions.create({ model: "gpt-4o-mini", user, messages: [{ role: "user", content }] }).withResponse();

test("each user is served by one arm, every time, and the arms are counted and compared", async () => {
  // Stored by a request in no arm (no user).
  const stored = await ask("How do I reset my router password?");
  assert.equal(stored.response.headers.get("x-semcached-cache"), "miss");
  assert.equal(stored.response.headers.get("x-semcached-arm"), null);
  await ask("Where can I find my invoices?");

  const users = Array.from({ length: 24 }, (_, i) => `customer-${i}`);
  for (const user of users) {
    for (const wording of ["how can I reset the password of my router", "where do I find my invoices"]) {
      const { data, response } = await ask(wording, user);
      const arm = response.headers.get("x-semcached-arm");
      assert.ok(arm === "strict" || arm === "loose", `arm ${arm}`);
      armOf[user] ??= arm;
      assert.equal(arm, armOf[user], `${user} moved from ${armOf[user]} to ${arm}`);
      // The loose arm serves the rewording; the strict one (0.99) sends it upstream, and
      // serves only the wording itself once a strict request has stored it (the exact tier).
      const result = response.headers.get("x-semcached-cache");
      if (arm === "loose") assert.equal(result, "hit");
      else assert.ok(result === "miss" || Number(response.headers.get("x-semcached-similarity")) === 1, result);
      assert.equal(data.choices[0].message.content, answerFor(wording));
    }
  }
  const inLoose = users.filter((u) => armOf[u] === "loose").length;
  assert.ok(inLoose > 0 && inLoose < users.length, `${inLoose} of ${users.length} users in the loose arm`);

  const report = await (await fetch(`${url}/v1/caches/llm/experiments`)).json();
  assert.equal(report.running, true);
  assert.equal(report.control, "strict");
  const [strict, loose] = report.arms;
  assert.equal(strict.name, "strict");
  assert.equal(strict.lookups, 2 * (users.length - inLoose));
  assert.equal(loose.lookups, 2 * inLoose);
  assert.equal(loose.semanticHits + loose.exactHits, 2 * inLoose);
  assert.equal(strict.semanticHits, 0);
  assert.equal(strict.exactHits, strict.lookups - 2);  // each wording missed once
  assert.equal(loose.hitRate, 1);
  assert.ok(loose.costSavedUsd > 0, "the loose arm's hits saved their stored answers' cost");
  assert.equal(loose.timedRequests, loose.lookups);
  assert.ok(strict.meanLatencyMs > 0);
  assert.equal(strict.vsControl, undefined);
  const d = loose.vsControl.hitRate;
  assert.ok(Math.abs(d.difference - (1 - strict.hitRate)) < 1e-9);
  assert.ok(d.low <= d.difference && d.high >= d.difference);

  assert.equal(await metricSum(url, "semcached_experiment_lookups_total", { cache: "llm", arm: "loose" }), 2 * inLoose);
  assert.equal(await metricSum(url, "semcached_experiment_hits_total", { cache: "llm", arm: "loose" }), 2 * inLoose);
  assert.equal(await metricSum(url, "semcached_experiment_hits_total", { cache: "llm", arm: "strict", tier: "semantic" }), 0);
  assert.equal(await metricSum(url, "semcached_experiment_request_seconds_count", { cache: "llm", arm: "strict" }), strict.lookups);
});

test("the LangCache search route splits by X-Semcached-Split-Key and says the arm", async () => {
  const search = async (key) => {
    const res = await fetch(`${url}/v1/caches/llm/entries/search`, {
      method: "POST", headers: { "Content-Type": "application/json", "X-Semcached-Split-Key": key },
      body: JSON.stringify({ prompt: "How do I reset my router password?", searchStrategies: ["semantic"] }) });
    assert.equal(res.status, 200);
    return res.headers.get("x-semcached-arm");
  };
  for (const key of ["customer-1", "customer-2", "customer-3"]) assert.equal(await search(key), await search(key));
});

test("ending the experiment makes the winner's threshold the cache's", async () => {
  const bad = await fetch(`${url}/v1/caches/llm/experiments/end`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ winner: "medium" }) });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).fields?.[0]?.field ?? "winner", "winner");
  const missing = await fetch(`${url}/v1/caches/llm/experiments/end`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  assert.equal(missing.status, 400);

  const ended = await fetch(`${url}/v1/caches/llm/experiments/end`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ winner: "loose" }) });
  assert.equal(ended.status, 200);
  const body = await ended.json();
  assert.equal(body.running, false);
  assert.equal(body.winner, "loose");
  assert.ok(Math.abs(body.policy.similarityThresholdCosine - 0.7) < 1e-6);
  assert.match(body.configuration, /similarity_threshold = 0.7/);
  assert.equal(body.arms.length, 2);  // the ended experiment's counts stay readable

  // Every user now gets the winner's threshold, and no arm: a rewording the strict arm would
  // have sent upstream is served to a user who was in it.
  const strictUser = Object.keys(armOf).find((u) => armOf[u] === "strict");
  const { response } = await ask("I forgot my router password, how do I reset it", strictUser);
  assert.equal(response.headers.get("x-semcached-arm"), null);
  assert.equal(response.headers.get("x-semcached-cache"), "hit");
  const stats = await (await fetch(`${url}/v1/caches/llm/stats`)).json();
  assert.ok(Math.abs(stats.similarityThresholdCosine - 0.7) < 1e-6);
  const again = await fetch(`${url}/v1/caches/llm/experiments/end`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ winner: "loose" }) });
  assert.equal(again.status, 409);
});
