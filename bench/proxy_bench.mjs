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
import { createServer, Agent, request as httpRequest } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { serverTable, startSemcached as start, stop } from "../tests/e2e/support/processes.mjs";

const here = dirname(fileURLToPath(import.meta.url));
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

// --- the fake upstream -----------------------------------------------------------------
let upstreamCalls = 0;
const upstream = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    upstreamCalls++;
    const request = JSON.parse(body);
    const last = request.messages.at(-1).content;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({
      id: `chatcmpl-${upstreamCalls}`, object: "chat.completion", created: 1764300000, model: request.model,
      choices: [{ index: 0, message: { role: "assistant", content: `answer to: ${last}`, refusal: null },
                  finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: 40, completion_tokens: 200, total_tokens: 240 },
    }));
  });
});
await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
const upstreamPort = upstream.address().port;

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function post(port, path, payload, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(payload);
    const started = process.hrtime.bigint();
    const req = httpRequest({ host: "127.0.0.1", port, path, method: "POST", agent,
                              headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data),
                                         Authorization: "Bearer sk-bench", ...headers } }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body,
                                    ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.on("error", reject);
    req.end(data);
  });
}
const chat = (content) => ({ model: "gpt-4o-mini", messages: [{ role: "user", content }] });
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function startSemcached(threshold, embedder = "model2vec") {
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

// --- 2. replayed workload ----------------------------------------------------------------
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
    else if (c !== "\r") field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}
const csv = parseCsv(readFileSync(join(here, "../../shared/data/semantic-pairs/meancache/val.csv"), "utf8")).slice(1);
// Groups: a duplicate pair is one question (two wordings); each side of a non-duplicate pair
// is a question of its own.
const groups = [];
for (const [q1, q2, dup] of csv.slice(0, 2000)) {
  if (!q1 || !q2) continue;
  if (dup === "1") groups.push([q1, q2]); else groups.push([q1], [q2]);
}
const groupOf = new Map();
groups.forEach((g, i) => g.forEach((q) => groupOf.set(q, i)));
// Zipf (s = 1) over a shuffled order of the groups, with a fixed seed.
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
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
  const before = upstreamCalls;
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
  const calls = upstreamCalls - before;
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
