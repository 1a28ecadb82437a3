// The caching proxy measured end to end (issue 6's benchmark), against a local fake OpenAI
// upstream that answers at once and counts its calls:
//  1. added latency: the same chat request sent to the fake directly, through the proxy on a
//     miss (lookup + upstream + store) and on a hit; p50/p99 over sequential keep-alive calls;
//  2. a replayed workload: questions from ../shared/data/semantic-pairs/meancache/val.csv,
//     Zipf-distributed; a duplicate pair is one question asked two ways, each side of a
//     non-duplicate pair is its own question. Reported: hit rate, false hits (a hit whose
//     answer was made for another question), and the cost reduction (upstream calls saved,
//     each priced at its usage).
// Each embedder of --embedders is replayed in the same run, at each threshold of --thresholds
// ("default": the embedder's own default threshold).
// Usage: node bench/proxy_bench.mjs SEMCACHED_BINARY [--requests 5000]
//          [--thresholds default,0.95] [--embedders model2vec,ngram] [--list-false-hits]
import { Agent } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverTable, startSemcached as start, stop } from "../tests/e2e/support/processes.mjs";
import { chat, fakeOpenAI, percentile as pct, post as postWith, readValPairs, seededRandom } from "./support.mjs";

const binary = process.argv[2];
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const requests = Number(arg("--requests", "5000"));
const thresholds = arg("--thresholds", "default,0.95").split(",");
const embedders = arg("--embedders", "model2vec,ngram").split(",");
if (!binary) {
  console.error("usage: node bench/proxy_bench.mjs SEMCACHED_BINARY [--requests N] [--thresholds a,b]");
  process.exit(2);
}

// --- the fake upstream: answers "answer to: " + the question -----------------------------
const upstream = await fakeOpenAI((last) => `answer to: ${last}`);
const upstreamPort = upstream.port;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const post = (port, path, payload, headers = {}) => postWith(agent, port, path, payload, headers);

async function startSemcached(threshold, embedder = "model2vec", extra = "") {
  const dir = mkdtempSync(join(tmpdir(), "semcached-proxy-bench-"));
  const { child, port } = await start(binary, dir, `${serverTable(dir)}
[persist]
fsync = "off"

[proxy]
openai_base_url = "http://127.0.0.1:${upstreamPort}"
cache = "llm"

[[caches]]
id = "llm"
embedder = "${embedder}"
${threshold === "default" ? "" : `similarity_threshold = ${threshold}`}
${extra}
`, { stdout: "ignore" });
  return { port, stop: async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  } };
}

// --- 1. added latency --------------------------------------------------------------------
{
  const s = await startSemcached("default");
  const rounds = 500;
  const direct = [], miss = [], hit = [];
  for (let i = 0; i < 50; i++) await post(upstreamPort, "/v1/chat/completions", chat(`warm ${i}`));
  for (let i = 0; i < rounds; i++) {
    direct.push((await post(upstreamPort, "/v1/chat/completions", chat(`latency probe number ${i}`))).ms);
    const m = await post(s.port, "/v1/chat/completions", chat(`latency probe number ${i}`));
    if (m.headers["x-semcached-cache"] !== "miss") throw new Error(`expected a miss, got ${m.headers["x-semcached-cache"]}`);
    miss.push(m.ms);
    const h = await post(s.port, "/v1/chat/completions", chat(`latency probe number ${i}`));
    if (h.headers["x-semcached-cache"] !== "hit") throw new Error("expected a hit");
    hit.push(h.ms);
  }
  await s.stop();
  const row = { bench: "proxy_latency", requests: rounds,
                direct_p50_ms: pct(direct, 0.5), direct_p99_ms: pct(direct, 0.99),
                miss_p50_ms: pct(miss, 0.5), miss_p99_ms: pct(miss, 0.99),
                hit_p50_ms: pct(hit, 0.5), hit_p99_ms: pct(hit, 0.99) };
  row.added_on_miss_p50_ms = row.miss_p50_ms - row.direct_p50_ms;
  console.log(JSON.stringify(row));
  console.error(`  latency p50/p99 (ms): direct ${row.direct_p50_ms.toFixed(3)}/${row.direct_p99_ms.toFixed(3)}, ` +
                `miss ${row.miss_p50_ms.toFixed(3)}/${row.miss_p99_ms.toFixed(3)}, ` +
                `hit ${row.hit_p50_ms.toFixed(3)}/${row.hit_p99_ms.toFixed(3)}; added on a miss at p50 ` +
                `${row.added_on_miss_p50_ms.toFixed(3)} ms`);
}

// --- 1b. what shadow mode and verification cost the requests they do not touch -------------
// Three servers side by side, requests interleaved: serving with no checks; serving with
// verification on (a band and a fraction: an exact hit is never verified); shadow mode. A
// miss is untouched by all three, an exact hit by the first two.
{
  const servers = {
    plain: await startSemcached("default"),
    verify: await startSemcached("default", "model2vec", "verify_band = 0.03\nverify_fraction = 0.01"),
    shadow: await startSemcached("default", "model2vec", 'mode = "shadow"'),
  };
  const rounds = 1000;
  const miss = { plain: [], verify: [], shadow: [] }, hit = { plain: [], verify: [] };
  const names = Object.keys(servers);
  for (let i = 0; i < rounds; i++) {
    // Each round in another order, so no server is always the first or the last asked.
    for (const name of [...names.slice(i % 3), ...names.slice(0, i % 3)]) {
      const m = await post(servers[name].port, "/v1/chat/completions", chat(`untouched probe number ${i}`));
      if (m.headers["x-semcached-cache"] !== "miss") throw new Error(`${name}: expected a miss`);
      miss[name].push(m.ms);
    }
    // Shadow mode is asked again too (a withheld hit, not measured): each server sees the
    // same traffic.
    await post(servers.shadow.port, "/v1/chat/completions", chat(`untouched probe number ${i}`));
    for (const name of i % 2 ? ["plain", "verify"] : ["verify", "plain"]) {
      const h = await post(servers[name].port, "/v1/chat/completions", chat(`untouched probe number ${i}`));
      if (h.headers["x-semcached-cache"] !== "hit") throw new Error(`${name}: expected a hit`);
      hit[name].push(h.ms);
    }
  }
  for (const s of Object.values(servers)) await s.stop();
  const row = { bench: "proxy_untouched_latency", requests: rounds };
  for (const [kind, series] of [["miss", miss], ["hit", hit]])
    for (const [name, xs] of Object.entries(series)) {
      row[`${kind}_${name}_p50_ms`] = pct(xs, 0.5);
      row[`${kind}_${name}_p99_ms`] = pct(xs, 0.99);
    }
  row.miss_verify_over_plain_p50 = row.miss_verify_p50_ms / row.miss_plain_p50_ms;
  row.miss_shadow_over_plain_p50 = row.miss_shadow_p50_ms / row.miss_plain_p50_ms;
  row.hit_verify_over_plain_p50 = row.hit_verify_p50_ms / row.hit_plain_p50_ms;
  console.log(JSON.stringify(row));
  console.error(`  untouched requests, p50 (ms): miss plain ${row.miss_plain_p50_ms.toFixed(3)}, ` +
                `verify ${row.miss_verify_p50_ms.toFixed(3)} (x${row.miss_verify_over_plain_p50.toFixed(3)}), ` +
                `shadow ${row.miss_shadow_p50_ms.toFixed(3)} (x${row.miss_shadow_over_plain_p50.toFixed(3)}); ` +
                `exact hit plain ${row.hit_plain_p50_ms.toFixed(3)}, verify ${row.hit_verify_p50_ms.toFixed(3)} ` +
                `(x${row.hit_verify_over_plain_p50.toFixed(3)})`);
}

// --- 2. replayed workload ----------------------------------------------------------------
const pairs = readValPairs();
// Groups: a duplicate pair is one question (two wordings); each side of a non-duplicate pair
// is a question of its own.
const groups = [];
for (const { a: q1, b: q2, duplicate } of pairs.slice(0, 2000)) {
  if (duplicate) groups.push([q1, q2]); else groups.push([q1], [q2]);
}
const groupOf = new Map();
groups.forEach((g, i) => g.forEach((q) => groupOf.set(q, i)));
// Zipf (s = 1) over a shuffled order of the groups, with a fixed seed.
const rand = seededRandom(42);
const order = groups.map((_, i) => i).sort(() => rand() - 0.5);
const weights = order.map((_, r) => 1 / (r + 1));
const total = weights.reduce((a, b) => a + b, 0);
function zipf() {
  let x = rand() * total;
  for (let r = 0; r < weights.length; r++) { x -= weights[r]; if (x <= 0) return order[r]; }
  return order.at(-1);
}
const workload = [];
for (let i = 0; i < requests; i++) {
  const g = groups[zipf()];
  workload.push(g[Math.floor(rand() * g.length)]);
}

for (const embedder of embedders) for (const threshold of thresholds) {
  const s = await startSemcached(threshold, embedder);
  const before = upstream.calls();
  let hits = 0, wrong = 0, exactHits = 0;
  for (const q of workload) {
    const r = await post(s.port, "/v1/chat/completions", chat(q));
    if (r.headers["x-semcached-cache"] !== "hit") continue;
    hits++;
    const answeredFor = JSON.parse(r.body).choices[0].message.content.replace(/^answer to: /, "");
    if (answeredFor === q) exactHits++;
    if (groupOf.get(answeredFor) !== groupOf.get(q)) {
      wrong++;
      if (process.argv.includes("--list-false-hits")) console.log(`  false hit: ${q} | answered for: ${answeredFor}`);
    }
  }
  const calls = upstream.calls() - before;
  await s.stop();
  const row = { bench: "proxy_replay", embedder, threshold, requests, distinct_questions: new Set(workload).size,
                hit_rate: hits / requests, exact_hit_rate: exactHits / requests,
                false_hit_rate: wrong / requests, false_hits_per_hit: hits ? wrong / hits : 0,
                upstream_calls: calls, cost_reduction: 1 - calls / requests };
  console.log(JSON.stringify(row));
  console.error(`  replay, ${embedder} at threshold ${threshold}: ${requests} requests, ${row.distinct_questions} distinct; ` +
                `hit rate ${(100 * row.hit_rate).toFixed(1)}% (${(100 * row.exact_hit_rate).toFixed(1)}% same wording), ` +
                `false hits ${(100 * row.false_hit_rate).toFixed(2)}% of requests ` +
                `(${(100 * row.false_hits_per_hit).toFixed(2)}% of hits), cost reduction ${(100 * row.cost_reduction).toFixed(1)}%`);
}
upstream.close();
agent.destroy();
