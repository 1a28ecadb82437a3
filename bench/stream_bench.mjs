// The streaming benchmark of thresholds (issue 13): static similarity thresholds against
// adaptive ones with an error bound, on one stream of requests through the caching proxy.
//
// The stream is built from ../shared/data/semantic-pairs/meancache/val.csv: every question is
// asked, and the other side of its pair is asked later (a paraphrase when the pair is a
// duplicate, a trap when it is not). Questions linked by duplicate pairs form one group; a
// fake OpenAI upstream answers each group with an answer of its own (words drawn from the
// group's number; every other call adds a "Sure." in front, so agreement is not only equal
// text). Each configuration starts from an empty cache and sees the same stream. Measured
// along the stream: the cumulative hit rate (answers served from the cache / requests) and
// error rate (answers served that were made for another group / requests).
//
// Writes bench/results/stream.jsonl (a row per configuration), stream.tsv (the curves) and,
// when gnuplot is there, stream.png.
// Usage: node bench/stream_bench.mjs SEMCACHED_BINARY [--thresholds 0.80,0.85,...]
//          [--bounds 0.01,0.02,0.05] [--floor 0.80] [--embedder model2vec] [--limit PAIRS]
//          [--gap 2000] [--every 250] [--out bench/results] [--replot]
import { Agent } from "node:http";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverTable, startSemcached, stop } from "../tests/e2e/support/processes.mjs";
import { benchDir, chat, fakeOpenAI, post, readValPairs, seededRandom } from "./support.mjs";

const binary = process.argv[2];
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
if (!binary) {
  console.error("usage: node bench/stream_bench.mjs SEMCACHED_BINARY [--thresholds a,b] [--bounds a,b] [--limit PAIRS]");
  process.exit(2);
}
const thresholds = arg("--thresholds", "0.80,0.85,0.88,0.90,0.92,0.94,0.96,0.98,0.99").split(",").filter(Boolean);
const bounds = arg("--bounds", "0.01,0.02,0.05").split(",").filter(Boolean);
const floor = arg("--floor", "0.80");
const embedder = arg("--embedder", "model2vec");
const limit = Number(arg("--limit", "Infinity"));
const gap = Number(arg("--gap", "2000"));  // the other side comes up to this many requests later
const every = Number(arg("--every", "250"));
const outDir = arg("--out", join(benchDir, "results"));
const warmup = 1000;  // the targets hold after the first 1,000 requests

// --- the stream --------------------------------------------------------------------------
const pairs = readValPairs().slice(0, limit);
const parent = new Map();
const find = (q) => {
  if (!parent.has(q)) parent.set(q, q);
  let r = q;
  while (parent.get(r) !== r) r = parent.get(r);
  parent.set(q, r);
  return r;
};
for (const p of pairs) {
  find(p.a);
  find(p.b);
  if (p.duplicate) parent.set(find(p.a), find(p.b));
}
const groupIds = new Map();
const groupOf = (q) => {
  const root = find(q);
  if (!groupIds.has(root)) groupIds.set(root, groupIds.size);
  return groupIds.get(root);
};
const rand = seededRandom(7);
const order = pairs.map((_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const events = [];
order.forEach((pairIndex, position) => {
  const p = pairs[pairIndex];
  const [first, second] = rand() < 0.5 ? [p.a, p.b] : [p.b, p.a];
  events.push({ at: position, prompt: first, paraphrase: false, trap: false });
  events.push({ at: position + 1 + Math.floor(rand() * gap), prompt: second,
                paraphrase: p.duplicate, trap: !p.duplicate });
});
events.sort((x, y) => x.at - y.at);
const stream = events.map((e) => ({ ...e, group: groupOf(e.prompt) }));

// --- the fake upstream -------------------------------------------------------------------
const words = readFileSync(join(benchDir, "bench_words.txt"), "utf8").split(/\s+/).filter(Boolean);
const answers = new Map();  // group -> its answer
const groupOfAnswer = new Map();
const answerOf = (group) => {
  if (!answers.has(group)) {
    const r = seededRandom(group + 1);
    const text = Array.from({ length: 24 }, () => words[Math.floor(r() * words.length)]).join(" ") + ".";
    answers.set(group, text);
    groupOfAnswer.set(text, group);
  }
  return answers.get(group);
};
const groupByPrompt = new Map(stream.map((e) => [e.prompt, e.group]));
let answered = 0;
const upstream = await fakeOpenAI((prompt) => {
  const group = groupByPrompt.get(prompt);
  if (group === undefined) return "I do not know that question.";
  return (answered++ % 2 ? "Sure. " : "") + answerOf(group);
});

// --- one configuration over the stream ---------------------------------------------------
async function run(config) {
  const dir = mkdtempSync(join(tmpdir(), "semcached-stream-bench-"));
  const cacheKeys = config.bound
    ? `similarity_threshold = ${floor}\nmax_error_rate = ${config.bound}`
    : `similarity_threshold = ${config.threshold}`;
  const { child, port } = await startSemcached(binary, dir, `${serverTable(dir)}
[persist]
fsync = "off"
[log]
level = "warn"
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"

[[caches]]
id = "llm"
embedder = "${embedder}"
${cacheKeys}
`, { stdout: "ignore" });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const counts = { hits: 0, wrong: 0, withheld: 0, paraphraseHits: 0, trapHits: 0 };
  const bySimilarity = {};  // band -> [hits, wrong]: where the wrong answers were served
  const curve = [];
  let maxErrorAfterWarmup = 0;
  try {
    for (let i = 0; i < stream.length; i++) {
      const e = stream[i];
      const r = await post(agent, port, "/v1/chat/completions", chat(e.prompt));
      if (r.status !== 200) throw new Error(`request ${i}: ${r.status} ${r.body}`);
      const result = r.headers["x-semcached-cache"];
      if (result === "hit") {
        counts.hits++;
        const served = JSON.parse(r.body).choices[0].message.content.replace(/^Sure\. /, "");
        const similarity = Number(r.headers["x-semcached-similarity"]);
        const band = similarity >= 0.9999 ? "1.00" : (Math.floor(similarity * 100) / 100).toFixed(2);
        bySimilarity[band] ??= [0, 0];
        bySimilarity[band][0]++;
        if (groupOfAnswer.get(served) !== e.group) {
          counts.wrong++;
          bySimilarity[band][1]++;
        }
        else if (e.paraphrase) counts.paraphraseHits++;
        if (e.trap && groupOfAnswer.get(served) !== e.group) counts.trapHits++;
      } else if (result === "verify" || result === "shadow") {
        counts.withheld++;
      }
      const n = i + 1;
      if (n >= warmup) maxErrorAfterWarmup = Math.max(maxErrorAfterWarmup, counts.wrong / n);
      if (n % every === 0 || n === stream.length)
        curve.push({ requests: n, hit_rate: counts.hits / n, error_rate: counts.wrong / n });
    }
  } finally {
    agent.destroy();
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
  const n = stream.length;
  return { bench: "stream", config: config.name, embedder, threshold: config.threshold ?? null,
           max_error_rate: config.bound ?? null, floor: config.bound ? Number(floor) : null,
           requests: n, hit_rate: counts.hits / n, error_rate: counts.wrong / n,
           max_error_rate_after_1000: maxErrorAfterWarmup, wrong_per_hit: counts.hits ? counts.wrong / counts.hits : 0,
           paraphrase_hits: counts.paraphraseHits, trap_hits: counts.trapHits, verifications: counts.withheld,
           hits_by_similarity: Object.fromEntries(Object.entries(bySimilarity).sort()), curve };
}

const configs = [
  ...thresholds.map((t) => ({ name: `static ${t}`, threshold: Number(t) })),
  ...bounds.map((b) => ({ name: `adaptive ${(100 * Number(b)).toFixed(0)}%`, bound: Number(b) })),
];
console.error(`stream: ${stream.length} requests from ${pairs.length} pairs of val.csv ` +
              `(${stream.filter((e) => e.paraphrase).length} paraphrases, ${stream.filter((e) => e.trap).length} traps, ` +
              `${groupIds.size} distinct answers); ${configs.length} configurations, ${embedder}`);
// --replot: the plot again from the last run's stream.jsonl, nothing run.
const replot = process.argv.includes("--replot");
const rows = replot
  ? readFileSync(join(outDir, "stream.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
  : [];
for (const config of replot ? [] : configs) {
  const started = Date.now();
  const row = await run(config);
  rows.push(row);
  console.error(`  ${config.name.padEnd(14)} hits ${(100 * row.hit_rate).toFixed(2).padStart(6)}%  ` +
                `errors ${(100 * row.error_rate).toFixed(2).padStart(5)}% (at most ${(100 * row.max_error_rate_after_1000).toFixed(2)}% ` +
                `after ${warmup})  wrong/hit ${(100 * row.wrong_per_hit).toFixed(1)}%  verified ${row.verifications}  ` +
                `[${((Date.now() - started) / 1000).toFixed(0)} s]`);
}
upstream.close();

// --- results -----------------------------------------------------------------------------
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "stream.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
const tsv = [["requests", ...rows.flatMap((r) => [`${r.config} hits`, `${r.config} errors`])].join("\t")];
rows[0].curve.forEach((point, i) =>
  tsv.push([point.requests, ...rows.flatMap((r) => [r.curve[i].hit_rate, r.curve[i].error_rate])].join("\t")));
writeFileSync(join(outDir, "stream.tsv"), tsv.join("\n") + "\n");

console.log("| configuration | hit rate | error rate | max error rate after 1,000 | wrong per hit | verifications |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows)
  console.log(`| ${r.config} | ${(100 * r.hit_rate).toFixed(2)}% | ${(100 * r.error_rate).toFixed(2)}% | ` +
              `${(100 * r.max_error_rate_after_1000).toFixed(2)}% | ${(100 * r.wrong_per_hit).toFixed(1)}% | ${r.verifications} |`);

// The targets: adaptive at 2% stays within 2% after the first 1,000 requests, and hits at
// least as often as the best static threshold that does.
const staticWithin = rows.filter((r) => r.threshold !== null && r.max_error_rate_after_1000 <= 0.02);
const bestStatic = staticWithin.sort((x, y) => y.hit_rate - x.hit_rate)[0];
const adaptive2 = rows.find((r) => r.max_error_rate === 0.02);
if (adaptive2) {
  const within = adaptive2.max_error_rate_after_1000 <= 0.02;
  const beats = !bestStatic || adaptive2.hit_rate >= bestStatic.hit_rate;
  console.error(`targets: adaptive 2% error at most ${(100 * adaptive2.max_error_rate_after_1000).toFixed(2)}% after ${warmup} ` +
                `(${within ? "met" : "MISSED"}); hit rate ${(100 * adaptive2.hit_rate).toFixed(2)}% against ` +
                `${bestStatic ? `${bestStatic.config}'s ${(100 * bestStatic.hit_rate).toFixed(2)}%` : "no static within 2%"} ` +
                `(${beats ? "met" : "MISSED"})`);
}

// The plot: hit rate and error rate along the stream, one line per configuration.
try {
  // Static thresholds as thin dashed lines (from 0.90 up when there are many), the adaptive
  // bounds thick.
  const columns = rows.map((r, i) => ({ title: r.config, hits: 2 + 2 * i, errors: 3 + 2 * i,
                                        style: r.threshold === null ? "lw 3" : "lw 1 dt 2", row: r }))
    .filter((c) => rows.length <= 10 || c.row.threshold === null || c.row.threshold >= 0.895);
  const data = join(outDir, "stream.tsv");
  const script = `set terminal pngcairo size 1200,900 font ",10"
set output "${join(outDir, "stream.png")}"
set datafile separator "\\t"
set key outside right
set grid
set multiplot layout 2,1 title "Cumulative hit rate and error rate along the val.csv stream (${embedder}, ${stream.length} requests)"
set ylabel "hit rate (%)"
plot ${columns.map((c) => `"${data}" using 1:($${c.hits}*100) with lines ${c.style} title "${c.title}"`).join(", ")}
set ylabel "error rate (%)"
set xlabel "requests"
set yrange [0:*]
plot ${columns.map((c) => `"${data}" using 1:($${c.errors}*100) with lines ${c.style} title "${c.title}"`).join(", ")}, 2 with lines lw 2 lc "black" title "2%"
unset multiplot
`;
  execFileSync("gnuplot", [], { input: script, stdio: ["pipe", "ignore", "inherit"] });
  console.error(`plot: ${join(outDir, "stream.png")}`);
} catch (e) {
  console.error(`no plot (${e.code === "ENOENT" ? "gnuplot is not installed: scripts/deps.sh installs it" : e.message})`);
}
