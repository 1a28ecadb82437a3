// Hit quality through the HTTP API, every embedder side by side in one run: four caches of one
// semcached (the static model potion-base-4M-int8 and the n-gram embedder, each with every
// guard on and with every guard off), each at its embedder's default threshold. For every
// labelled pair the stored question goes in, the other is searched (semantic tier only, a
// LangCache threshold of 0 so the similarity comes back unless a guard refuses), and the entry
// is deleted again, so a cache holds one entry at a time and nothing but the pair is compared.
// A guard's refusal counts as never served. Reported, per cache:
//   meancache/val.csv: average precision; hit rate on duplicates at 1% and 5% false hits;
//   cannot/sem_anto_neg.tsv: share of negated/antonym pairs served at the default threshold,
//     and of its equivalent rewrites;
//   tests/data/everyday_rewordings.tsv and traps.tsv: share served at the default threshold.
// Usage: node bench/hit_quality_http.mjs SEMCACHED_BINARY [--limit N]   (N pairs per file)
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "node:http";
import { serverTable, startSemcached, stop } from "../tests/e2e/support/processes.mjs";
import { parseDelimited } from "./support.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const shared = join(root, "..", "shared", "data", "semantic-pairs");
const binary = process.argv[2];
const limitAt = process.argv.indexOf("--limit");
const limit = limitAt > 0 ? Number(process.argv[limitAt + 1]) : Infinity;
if (!binary) {
  console.error("usage: node bench/hit_quality_http.mjs SEMCACHED_BINARY [--limit N]");
  process.exit(2);
}

const sets = {
  val: parseDelimited(readFileSync(join(shared, "meancache", "val.csv"), "utf8"), ",")
    .map(([a, b, l]) => ({ a, b, positive: l === "1" })).slice(0, limit),
  cannot: parseDelimited(readFileSync(join(shared, "cannot", "sem_anto_neg.tsv"), "utf8"), "\t")
    .map(([a, b, l]) => ({ a, b, positive: l === "0" })).slice(0, limit),  // positive: equivalent
  rewordings: parseDelimited(readFileSync(join(root, "tests", "data", "everyday_rewordings.tsv"), "utf8"), "\t")
    .map(([a, b, kind]) => ({ a, b, kind, positive: true })).slice(0, limit),
  traps: parseDelimited(readFileSync(join(root, "tests", "data", "traps.tsv"), "utf8"), "\t")
    .map(([a, b, kind]) => ({ a, b, kind, positive: false })).slice(0, limit),
};

const guards = ["numbers", "negation", "units", "dates", "entities", "direction", "antonyms", "reason"];
const caches = [
  { id: "model2vec_guards", embedder: "model2vec", guards: true },
  { id: "model2vec_noguards", embedder: "model2vec", guards: false },
  { id: "ngram_guards", embedder: "ngram", guards: true },
  { id: "ngram_noguards", embedder: "ngram", guards: false },
];
const toml = (dir) => `${serverTable(dir)}
[persist]
fsync = "off"
[log]
level = "warn"
` + caches.map((c) => `[[caches]]
id = "${c.id}"
embedder = "${c.embedder}"
search_strategies = ["semantic"]
${guards.map((g) => `guard_${g} = ${c.guards}`).join("\n")}
`).join("\n");

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
function call(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? "" : JSON.stringify(body);
    const req = request({ host: "127.0.0.1", port, method, path, agent,
                          headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d) => (text += d)).on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null }));
      });
    req.on("error", reject);
    req.end(data);
  });
}

// The cosine of b against a in this cache, or -1 when a guard refused (never served).
async function similarity(port, cache, a, b) {
  const stored = await call(port, "POST", `/v1/caches/${cache}/entries`, { prompt: a, response: "r" });
  if (stored.status !== 201) throw new Error(`store in ${cache}: ${stored.status} ${JSON.stringify(stored.body)}`);
  const found = await call(port, "POST", `/v1/caches/${cache}/entries/search`, { prompt: b, similarityThreshold: 0 });
  await call(port, "DELETE", `/v1/caches/${cache}/entries/${stored.body.entryId}`);
  if (found.status !== 200) throw new Error(`search in ${cache}: ${found.status}`);
  return found.body.data.length ? Number(found.headers["x-semcached-similarity"]) : -1;
}

function qqpMetrics(pairs, sims) {
  const order = pairs.map((p, i) => ({ p: p.positive, s: sims[i] })).sort((x, y) => y.s - x.s);
  const pos = pairs.filter((p) => p.positive).length, neg = pairs.length - pos;
  let tp = 0, fp = 0, ap = 0, at1 = 0, at5 = 0;
  // A pair a guard refused ranks below every served one (similarity -1), as in
  // bench/hit_quality --qqp-guards; at any useful threshold it is never served.
  order.forEach((o, i) => {
    if (o.p) { tp++; ap += tp / (i + 1); } else fp++;
    if (o.s > -0.5 && fp / neg <= 0.01) at1 = tp / pos;
    if (o.s > -0.5 && fp / neg <= 0.05) at5 = tp / pos;
  });
  return { ap: ap / pos, hit_at_1pct_false: at1, hit_at_5pct_false: at5 };
}
const share = (xs, f) => (xs.length ? xs.filter(f).length / xs.length : 0);

const dir = mkdtempSync(join(tmpdir(), "semcached-hq-"));
const { child, port } = await startSemcached(binary, dir, toml(dir), { stdout: "ignore" });
const results = {};
try {
  await Promise.all(caches.map(async (c) => {
    const described = await call(port, "GET", `/v1/caches/${c.id}/stats`);
    const threshold = described.body.similarityThresholdCosine;
    const r = { embedder: c.embedder, guards: c.guards, threshold };
    const sims = {};
    for (const [name, pairs] of Object.entries(sets)) {
      sims[name] = [];
      for (const p of pairs) sims[name].push(await similarity(port, c.id, p.a, p.b));
      process.stderr.write(`  ${c.id}: ${name} done (${pairs.length} pairs)\n`);
    }
    Object.assign(r, { val: qqpMetrics(sets.val, sims.val) });
    r.cannot_wrong_served = share(sets.cannot.map((p, i) => ({ p, s: sims.cannot[i] })).filter((x) => !x.p.positive), (x) => x.s >= threshold);
    r.cannot_equivalent_served = share(sets.cannot.map((p, i) => ({ p, s: sims.cannot[i] })).filter((x) => x.p.positive), (x) => x.s >= threshold);
    r.rewordings_served = share(sims.rewordings, (s) => s >= threshold);
    r.traps_served = share(sims.traps, (s) => s >= threshold);
    results[c.id] = r;
  }));
} finally {
  await stop(child);
  rmSync(dir, { recursive: true, force: true });
}

const pct = (x) => (100 * x).toFixed(1) + "%";
console.log(`\nHit quality through the HTTP API (val.csv ${sets.val.length} pairs, sem_anto_neg ${sets.cannot.length}, rewordings ${sets.rewordings.length}, traps ${sets.traps.length})`);
console.log(["cache".padEnd(20), "threshold", "val AP", "hit@1%FH", "hit@5%FH", "anto/neg served", "equiv served", "rewordings", "traps"].join("  "));
for (const c of caches) {
  const r = results[c.id];
  console.log([c.id.padEnd(20), r.threshold.toFixed(2).padStart(9), r.val.ap.toFixed(3).padStart(6), pct(r.val.hit_at_1pct_false).padStart(8),
               pct(r.val.hit_at_5pct_false).padStart(8), pct(r.cannot_wrong_served).padStart(15), pct(r.cannot_equivalent_served).padStart(12),
               pct(r.rewordings_served).padStart(10), pct(r.traps_served).padStart(5)].join("  "));
}
const m = results.model2vec_guards, n = results.ngram_guards;
console.log(`model2vec / ngram hit rate at 1% false hits on val.csv (guards on): ${(m.val.hit_at_1pct_false / n.val.hit_at_1pct_false).toFixed(2)}x`);
mkdirSync(join(root, "bench", "results"), { recursive: true });
writeFileSync(join(root, "bench", "results", "hit_quality_http.json"), JSON.stringify(results, null, 2) + "\n");
