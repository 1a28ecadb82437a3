// Knowing when a hit is wrong, through the official OpenAI SDK (npm `openai`, unchanged) and
// the caching proxy: shadow mode (the cache's own, or one request's header) serves nothing
// and compares what it would have served with the model's answer; verification sends the
// hits close to the threshold upstream anyway and labels them; labels reach /metrics and the
// tuning route. The upstream is a local fake speaking OpenAI's wire protocol (a paid API
// cannot run here) that answers each question it knows with one fixed answer.
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
let upstream;
const servers = [];

// What a help desk model would say: the same answer to every wording of one question.
function answerFor(question) {
  const q = question.toLowerCase();
  if (q.includes("password")) return "Hold the reset button for ten seconds, then log in with admin/admin.";
  if (q.includes("router")) return "Unplug the router for thirty seconds and plug it back in.";
  return "Please contact support.";
}

before(async () => {
  assert.ok(binary, "E2E_SEMCACHED_BINARY must name the semcached executable");
  upstream = await fakeOpenAI(answerFor, { prompt_tokens: 12, completion_tokens: 20 });
});

after(async () => {
  for (const s of servers) {
    await stop(s.child);
    rmSync(s.dir, { recursive: true, force: true });
  }
  upstream?.close();
});

async function start(cacheSettings) {
  const dir = mkdtempSync(join(tmpdir(), "semcached-shadow-"));
  const s = await startSemcached(binary, dir, `${serverTable(dir)}
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"

[[caches]]
id = "llm"
similarity_threshold = 0.7
${cacheSettings}
`);
  servers.push({ ...s, dir });
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "sk-test", maxRetries: 0 });
  const ask = (content, headers = {}) =>
    client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content }] }, { headers })
      .withResponse();
  return { url: s.url, ask };
}


test("shadow mode serves nothing and labels what it would have served", async () => {
  const { url, ask } = await start('mode = "shadow"');
  const first = await ask("How do I reset my router password?");
  assert.equal(first.response.headers.get("x-semcached-cache"), "miss");  // nothing to withhold yet: stored
  const before = upstream.calls();
  // The same question again: the exact tier would serve it; the model is asked all the same,
  // and its answer agrees with the cached one.
  const again = await ask("How do I reset my router password?");
  assert.equal(upstream.calls(), before + 1);
  assert.equal(again.response.headers.get("x-semcached-cache"), "shadow");
  assert.equal(again.response.headers.get("x-semcached-verified"), "agree");
  assert.equal(again.data.choices[0].message.content, answerFor("router password"));
  // A near miss the embeddings cannot tell apart from the stored question: the cache would
  // have served the password answer; the model's answer disagrees.
  const restart = await ask("How do I restart my router?");
  assert.equal(restart.response.headers.get("x-semcached-cache"), "shadow");
  assert.equal(restart.response.headers.get("x-semcached-verified"), "disagree");
  assert.equal(restart.data.choices[0].message.content, answerFor("router"));
  assert.equal(await metricSum(url, "semcached_cache_withheld_total", { cache: "llm", reason: "shadow", tier: "exact" }), 1);
  assert.equal(await metricSum(url, "semcached_cache_answer_comparisons_total", { cache: "llm", tier: "exact", outcome: "agree" }), 1);
  assert.equal(await metricSum(url, "semcached_cache_answer_comparisons_total", { cache: "llm", tier: "semantic", outcome: "disagree" }), 1);
  assert.equal(await metricSum(url, "semcached_proxy_requests_total", { provider: "openai", result: "hit" }), 0);
  assert.ok(await metricSum(url, "semcached_proxy_verification_tokens_total", { provider: "openai" }) >= 32);
  // Both labels reach the what-if report: the exact one right, the near miss wrong.
  const tuning = await (await fetch(`${url}/v1/caches/llm/tuning`)).json();
  assert.equal(tuning.same, 1, JSON.stringify(tuning));
  assert.equal(tuning.different, 1, JSON.stringify(tuning));
  // The question the cache would have answered wrongly got an entry of its own (the one that
  // agreed did not): asked again, it finds its own answer.
  assert.equal((await (await fetch(`${url}/v1/caches/llm/stats`)).json()).entries, 2);
  const restartAgain = await ask("How do I restart my router?");
  assert.equal(restartAgain.response.headers.get("x-semcached-verified"), "agree");
});

test("a request can ask for shadow mode on a serving cache", async () => {
  const { ask } = await start("");
  await ask("How do I reset my router password?");
  const hit = await ask("How do I reset my router password?");
  assert.equal(hit.response.headers.get("x-semcached-cache"), "hit");
  const before = upstream.calls();
  const shadowed = await ask("How do I reset my router password?", { "X-Semcached-Mode": "shadow" });
  assert.equal(shadowed.response.headers.get("x-semcached-cache"), "shadow");
  assert.equal(upstream.calls(), before + 1);
  assert.match(shadowed.response.headers.get("x-semcached-withheld-entry-id"), /^[0-9a-f]{32}$/);
});

test("verification sends hits close to the threshold upstream and labels them", async () => {
  // Every semantic hit below 0.7 + 0.3 is verified: the exact tier is served as usual.
  const { url, ask } = await start("verify_band = 0.3");
  await ask("How do I reset my router password?");
  const exact = await ask("How do I reset my router password?");
  assert.equal(exact.response.headers.get("x-semcached-cache"), "hit");
  const before = upstream.calls();
  const reworded = await ask("how can I reset the password of my router");
  assert.equal(upstream.calls(), before + 1);
  assert.equal(reworded.response.headers.get("x-semcached-cache"), "verify");
  assert.equal(reworded.response.headers.get("x-semcached-verified"), "agree");
  assert.equal(await metricSum(url, "semcached_cache_withheld_total", { cache: "llm", reason: "verify", tier: "semantic" }), 1);
  assert.equal(await metricSum(url, "semcached_cache_answer_comparisons_total", { cache: "llm", tier: "semantic", outcome: "agree" }), 1);
  assert.equal(await metricSum(url, "semcached_proxy_requests_total", { provider: "openai", result: "verify" }), 1);
  // The reworded request was not stored: its question is the entry's.
  const stats = await (await fetch(`${url}/v1/caches/llm/stats`)).json();
  assert.equal(stats.entries, 1);
});

test("a follow-up request can say an earlier answer was wrong", async () => {
  const { url, ask } = await start("");
  await ask("How do I reset my router password?");
  const hit = await ask("How do I restart my router?");  // served the password answer
  assert.equal(hit.response.headers.get("x-semcached-cache"), "hit");
  const id = hit.response.headers.get("x-semcached-entry-id");
  // The application learnt the answer was wrong, and says so on its next call.
  const next = await ask("What else can I try?", { "X-Semcached-Feedback": `${id}=wrong` });
  assert.equal(next.response.headers.get("x-semcached-feedback-recorded"), "1");
  const unknown = await ask("Anything else?", { "X-Semcached-Feedback": "0123456789abcdef0123456789abcdef=wrong" });
  assert.equal(unknown.response.headers.get("x-semcached-feedback-recorded"), "0");
  const stats = await (await fetch(`${url}/v1/caches/llm/stats`)).json();
  assert.equal(stats.feedbackWrong, 1);
  const tuning = await (await fetch(`${url}/v1/caches/llm/tuning`)).json();
  assert.equal(tuning.different, 1);
  assert.equal(tuning.same, 0);
});

test("an adaptive cache withholds unproven semantic hits and shows what it rests on", async () => {
  const { url, ask } = await start("max_error_rate = 0.02");
  await ask("How do I reset my router password?");
  // Exact hits are served as ever; a rewording, with no label yet, goes upstream and is labelled.
  const exact = await ask("How do I reset my router password?");
  assert.equal(exact.response.headers.get("x-semcached-cache"), "hit");
  const reworded = await ask("how can I reset the password of my router");
  assert.equal(reworded.response.headers.get("x-semcached-cache"), "verify");
  assert.equal(reworded.response.headers.get("x-semcached-verified"), "agree");
  const stats = await (await fetch(`${url}/v1/caches/llm/stats`)).json();
  assert.equal(stats.adaptive.maxErrorRate, 0.02);
  assert.equal(stats.adaptive.labels, 1);
  assert.equal(stats.clusters.count, 0);  // fewer than 200 entries: no clusters fitted yet
  assert.equal(stats.drift.windows, 0);  // fewer than 1,000 lookups: no window closed yet
  assert.equal(stats.drift.similarityShift, false);
  assert.equal(await metricSum(url, "semcached_cache_adaptive_labels", { cache: "llm" }), 1);
  const text = await (await fetch(`${url}/metrics`)).text();
  assert.match(text, /semcached_cache_drift\{cache="llm",signal="similarity"\} 0/);
  assert.match(text, /semcached_cache_adaptive_allowance\{cache="llm"\} /);
});
