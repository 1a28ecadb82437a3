// What OpenTelemetry export costs (issue 15's target): two semcached servers in the same run,
// one exporting to a local OTLP/HTTP receiver (which answers 200 and counts bodies) and one not,
// measured in alternating rounds:
//  1. exact-hit throughput over HTTP keep-alive with wrk (64 connections, 2 threads);
//  2. proxy-miss latency: sequential chat requests, each a new question, through the proxy
//     to a local fake OpenAI upstream (the paid API cannot run here), p50 and p99.
// Export runs every --interval ms (default 1000: fifteen times the default, to make any cost
// visible); traces are sampled at --ratio (default 1: every request). Reported: medians over
// rounds and the ratio on/off.
// Usage: node bench/otel_overhead.mjs SEMCACHED_BINARY [--rounds 5] [--seconds 5] [--interval 1000]
//          [--ratio 1] [--misses 300]
import { Agent, createServer } from "node:http";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverTable, startSemcached, stop } from "../tests/e2e/support/processes.mjs";
import { fakeOpenAI, percentile, post as postWith } from "./support.mjs";

const binary = process.argv[2];
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const rounds = Number(arg("--rounds", "5"));
const seconds = Number(arg("--seconds", "5"));
const interval = Number(arg("--interval", "1000"));
const misses = Number(arg("--misses", "300"));
const ratio = Number(arg("--ratio", "1"));
if (!binary) {
  console.error("usage: node bench/otel_overhead.mjs SEMCACHED_BINARY [--rounds N] [--seconds S] [--interval MS]");
  process.exit(2);
}

let bodies = 0, bytes = 0;
const receiver = createServer((req, res) => {
  req.on("data", (c) => (bytes += c.length));
  req.on("end", () => { bodies++; res.writeHead(200, { "Content-Type": "application/x-protobuf" }); res.end(); });
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
const upstream = await fakeOpenAI((q) => `answer to: ${q}`);
const work = mkdtempSync(join(tmpdir(), "semcached-otel-bench-"));

async function server(name, otel) {
  const dir = join(work, name);
  const s = await startSemcached(binary, dir, `${serverTable(dir)}
[log]
level = "warn"
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "llm"
${otel}
[[caches]]
id = "docs"
[[caches]]
id = "llm"
`, { stdout: "ignore" });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 100; i++)
    await postWith(agent, s.port, "/v1/caches/docs/entries", { prompt: `How do I configure feature ${i}?`, response: `Like ${i}.` });
  return { ...s, name, agent };
}

mkdirSync(join(work, "off")); mkdirSync(join(work, "on"));
const servers = [await server("off", ""),
                 await server("on", `[otel]\nendpoint = "http://127.0.0.1:${receiver.address().port}"\nexport_interval_ms = ${interval}\ntrace_sample_ratio = ${ratio}`)];

writeFileSync(join(work, "exact.lua"), `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/v1/caches/docs/entries/search", nil,
    string.format('{"prompt":"How do I configure feature %d?"}', math.random(0, 99)))
end`);
const wrk = (port) => new Promise((resolve, reject) => {
  const child = spawn("wrk", ["-t2", "-c64", `-d${seconds}s`, "-s", join(work, "exact.lua"), `http://127.0.0.1:${port}`]);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.on("exit", () => {
    const m = out.match(/Requests\/sec:\s+([\d.]+)/);
    m ? resolve(Number(m[1])) : reject(new Error(out));
  });
});

let question = 0;
async function missLatency(s) {
  const ms = [];
  for (let i = 0; i < misses; i++) {
    const r = await postWith(s.agent, s.port, "/v1/chat/completions",
                             { model: "gpt-4o-mini", messages: [{ role: "user", content: `Question number ${question++} about invoices?` }] });
    if (r.status !== 200) throw new Error(`proxy answered ${r.status}`);
    ms.push(r.ms);
  }
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

const median = (xs) => percentile(xs, 0.5);
const results = { off: { rps: [], p50: [], p99: [] }, on: { rps: [], p50: [], p99: [] } };
for (let r = 0; r < rounds; r++) {
  // Alternate which goes first, so drift on a noisy machine falls on both.
  const order = r % 2 === 0 ? servers : [...servers].reverse();
  for (const s of order) results[s.name].rps.push(await wrk(s.port));
  for (const s of order) {
    const l = await missLatency(s);
    results[s.name].p50.push(l.p50);
    results[s.name].p99.push(l.p99);
  }
  console.error(`round ${r + 1}/${rounds}: exact hits/s off ${results.off.rps.at(-1).toFixed(0)} on ${results.on.rps.at(-1).toFixed(0)}; ` +
                `miss p50 off ${results.off.p50.at(-1).toFixed(2)} ms on ${results.on.p50.at(-1).toFixed(2)} ms`);
}
const summary = {
  rounds, seconds, export_interval_ms: interval, trace_sample_ratio: ratio, exports_received: bodies, export_bytes: bytes,
  exact_hits_per_s: { off: median(results.off.rps), on: median(results.on.rps) },
  proxy_miss_p50_ms: { off: median(results.off.p50), on: median(results.on.p50) },
  proxy_miss_p99_ms: { off: median(results.off.p99), on: median(results.on.p99) },
};
summary.throughput_ratio_on_off = summary.exact_hits_per_s.on / summary.exact_hits_per_s.off;
// Each round measured both servers back to back: the median of those paired ratios is steadier
// than the ratio of medians on a noisy machine.
summary.throughput_paired_ratio_median = median(results.on.rps.map((on, i) => on / results.off.rps[i]));
summary.miss_p50_ratio_on_off = summary.proxy_miss_p50_ms.on / summary.proxy_miss_p50_ms.off;
console.log(`| | export off | export on (metrics every ${interval} ms, traces at ${ratio}) | on/off |
|---|---|---|---|
| exact hits/s (median of ${rounds}) | ${summary.exact_hits_per_s.off.toFixed(0)} | ${summary.exact_hits_per_s.on.toFixed(0)} | ${summary.throughput_ratio_on_off.toFixed(3)} (paired rounds: ${summary.throughput_paired_ratio_median.toFixed(3)}) |
| proxy miss p50 ms | ${summary.proxy_miss_p50_ms.off.toFixed(2)} | ${summary.proxy_miss_p50_ms.on.toFixed(2)} | ${summary.miss_p50_ratio_on_off.toFixed(3)} |
| proxy miss p99 ms | ${summary.proxy_miss_p99_ms.off.toFixed(2)} | ${summary.proxy_miss_p99_ms.on.toFixed(2)} | ${(summary.proxy_miss_p99_ms.on / summary.proxy_miss_p99_ms.off).toFixed(3)} |
(${bodies} exports received, ${(bytes / Math.max(1, bodies) / 1024).toFixed(1)} KiB each)`);
mkdirSync(join(process.cwd(), "bench/results"), { recursive: true });
writeFileSync(join(process.cwd(), `bench/results/otel_overhead_ratio${ratio}.json`), JSON.stringify(summary, null, 2));
for (const s of servers) await stop(s.child);
receiver.close();
upstream.close();
rmSync(work, { recursive: true, force: true });
