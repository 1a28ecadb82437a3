// The Grafana dashboard and the alert rules against a real Prometheus (Debian's), scraping a
// real semcached under load every second: every PromQL expression of
// deploy/grafana/semcached.json must return data, and every rule of
// deploy/prometheus/alerts.yml must load and evaluate without error. The load reaches every
// family the dashboard reads: LangCache stores and searches on an embedded and a Redis cache,
// proxy hits, misses, upstream errors (from a local fake OpenAI upstream: the paid API cannot
// run here) and shadow verifications, and feedback.
// Run by CTest (labels e2e, redis) with E2E_SEMCACHED_BINARY, E2E_REDIS_SERVER, E2E_PROMETHEUS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, serverTable, startRedis, startSemcached, stop } from "../support/processes.mjs";
import { fakeOpenAI } from "../support/fake_openai.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const binary = process.env.E2E_SEMCACHED_BINARY;
const redisBinary = process.env.E2E_REDIS_SERVER;
const prometheusBinary = process.env.E2E_PROMETHEUS;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let dir, redis, upstream, server, url, prometheus, promUrl, loading = true, load;

async function startPrometheus(target) {
  const port = await freePort();
  writeFileSync(join(dir, "prometheus.yml"), `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${join(root, "deploy/prometheus/alerts.yml")}
scrape_configs:
  - job_name: semcached
    static_configs:
      - targets: ["${target}"]
`);
  const child = spawn(prometheusBinary, [`--config.file=${join(dir, "prometheus.yml")}`,
                                         `--storage.tsdb.path=${join(dir, "tsdb")}`,
                                         `--web.listen-address=127.0.0.1:${port}`],
                      { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  const u = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`${u}/-/ready`)).ok) return { child, url: u }; } catch {}
    await sleep(100);
  }
  throw new Error(`prometheus did not become ready:\n${log}`);
}

const post = (path, body, headers = {}) =>
  fetch(url + path, { method: "POST", headers: { "content-type": "application/json", ...headers },
                      body: JSON.stringify(body) });

// What a busy deployment does, in a loop, until the queries are done.
async function generateLoad() {
  const questions = ["How do I reset my password?", "What are your opening hours?",
                     "Can I change my delivery address?", "How long does shipping take?"];
  const paraphrases = ["how can I reset my password", "when are you open", "can I change the address for delivery",
                       "how many days does shipping take"];
  for (const cache of ["docs", "shared"])
    for (const q of questions) await post(`/v1/caches/${cache}/entries`, { prompt: q, response: `About: ${q}` });
  let round = 0;
  while (loading) {
    round++;
    for (const cache of ["docs", "shared"]) {
      const q = questions[round % questions.length];
      await post(`/v1/caches/${cache}/entries/search`, { prompt: q });
      const found = await (await post(`/v1/caches/${cache}/entries/search`,
                                      { prompt: paraphrases[round % paraphrases.length] })).json();
      await post(`/v1/caches/${cache}/entries/search`, { prompt: `Something nobody asked before, number ${round}` });
      if (found.data?.length) {
        await post(`/v1/caches/${cache}/entries/${found.data[0].id}/feedback`,
                   { prompt: paraphrases[round % paraphrases.length], correct: round % 3 !== 0 });
      }
    }
    const chat = (content, headers) =>
      post("/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content }] }, headers);
    await chat("What is the capital of France?");          // a hit after the first round
    await chat(`What is ${round} times 7?`);                // a miss
    await chat("What is the capital of France?", { "x-semcached-mode": "shadow" });  // verified
    if (round % 5 === 0) await chat("Please fail this call");  // the upstream answers 500
    await sleep(50);
  }
}

before(async () => {
  assert.ok(binary && redisBinary && prometheusBinary,
            "E2E_SEMCACHED_BINARY, E2E_REDIS_SERVER and E2E_PROMETHEUS are required");
  dir = mkdtempSync(join(tmpdir(), "semcached-dashboard-"));
  upstream = await fakeOpenAI((q) => (q.includes("fail") ? null : `The answer to: ${q}`),
                              { prompt_tokens: 20, completion_tokens: 60 });
  redis = await startRedis(redisBinary, dir);
  ({ child: server, url } = await startSemcached(binary, dir, `${serverTable(dir)}
[redis]
url = "redis://127.0.0.1:${redis.port}"

[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"

[[caches]]
id = "llm"

[[caches]]
id = "docs"
max_entries = 1000

[[caches]]
id = "shared"
store = "redis"
`));
  ({ child: prometheus, url: promUrl } = await startPrometheus(url.replace("http://", "")));
  load = generateLoad();
});

after(async () => {
  loading = false;
  await load?.catch(() => {});
  await stop(prometheus);
  await stop(server);
  await stop(redis?.child);
  upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const query = async (expr) => {
  const r = await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`)).json();
  if (r.status !== "success") throw new Error(`${expr}: ${r.error}`);
  return r.data.result;
};

// The targets of every panel, rows' panels included.
function dashboardExpressions() {
  const dashboard = JSON.parse(readFileSync(join(root, "deploy/grafana/semcached.json"), "utf8"));
  const out = [];
  const walk = (panels) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) if (v.type === "query") out.push({ panel: `variable ${v.name}`, expr: v.definition });
  return out;
}

// What Grafana substitutes before it sends a query: all instances and caches, and a rate
// window of several scrapes.
const substitute = (expr) => expr.replaceAll("$instance", ".+").replaceAll("$cache", ".+")
  .replaceAll("$__rate_interval", "15s").replaceAll("$__range", "1m");

test("every dashboard query returns data from a real Prometheus scraping semcached", async () => {
  // Enough scrapes for 15-second rates, and the shadow verifications' answers compared.
  await sleep(20000);
  const empty = [];
  let checked = 0;
  for (const { panel, expr } of dashboardExpressions()) {
    let result;
    const label = expr.match(/^label_values\((.*), (\w+)\)$/);
    if (label) {
      result = (await query(`count by (${label[2]}) (${substitute(label[1])})`));
    } else {
      result = await query(substitute(expr));
    }
    checked++;
    const values = result.map((s) => Number(s.value[1]));
    if (values.length === 0 || values.every((v) => Number.isNaN(v))) empty.push(`${panel}: ${expr}`);
  }
  assert.ok(checked >= 40, `only ${checked} expressions`);
  assert.deepEqual(empty, [], `queries without data:\n${empty.join("\n")}`);
  // Spot checks that the numbers mean what the panels say.
  const hitRatio = Number((await query(substitute(
    'sum(increase(semcached_cache_lookups_total{result=~"exact|semantic"}[$__range])) / sum(increase(semcached_cache_lookups_total[$__range]))')))[0].value[1]);
  assert.ok(hitRatio > 0.2 && hitRatio < 0.9, `hit ratio ${hitRatio}`);
  const caches = (await query("count by (cache) (semcached_cache_entries)")).map((s) => s.metric.cache).sort();
  assert.deepEqual(caches, ["docs", "llm", "shared"]);
});

test("every alert rule loads and evaluates in Prometheus", async () => {
  const r = await (await fetch(`${promUrl}/api/v1/rules`)).json();
  const rules = r.data.groups.flatMap((g) => g.rules);
  assert.equal(rules.length, 18);
  const unhealthy = rules.filter((rule) => rule.health !== "ok").map((rule) => `${rule.name}: ${rule.health} ${rule.lastError ?? ""}`);
  assert.deepEqual(unhealthy, []);
  // The SLO's recording rule has data from the live server; no alert fires on a healthy run.
  assert.ok((await query("semcached:slo_errors:ratio_rate5m")).length > 0);
  const firing = rules.filter((rule) => rule.type === "alerting" && rule.state === "firing").map((rule) => rule.name);
  assert.deepEqual(firing, []);
});
