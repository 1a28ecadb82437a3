// OTLP/HTTP metrics export, received by a local collector stand-in that decodes every body with
// an independent decoder: protobufjs loading the same OTLP .proto files (third_party/otlp-proto).
// Checked: the resource, the names and attributes of the OpenTelemetry conventions, cumulative
// temporality, histogram buckets, values equal to /metrics, the export at shutdown; and with a
// collector that never answers or answers 503, requests keep their speed while failures are
// retried, counted, and the queue stays bounded.
// Run by CTest (label e2e) with E2E_SEMCACHED_BINARY.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { serverTable, startSemcached, stop } from "../support/processes.mjs";
import { fakeOpenAI } from "../support/fake_openai.mjs";
import { metricSum } from "../support/metrics.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const protoDir = join(dirname(fileURLToPath(import.meta.url)), "../../../third_party/otlp-proto");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

async function loadRequestType() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoDir, target);
  await root.load("opentelemetry/proto/collector/metrics/v1/metrics_service.proto", { keepCase: false });
  return root.lookupType("opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest");
}

// Answers POST /v1/metrics with `status(n)` for the n-th request; keeps what it decoded.
async function collector(type, status = () => 200) {
  const received = [];
  let n = 0;
  const server = createHttpServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const code = status(++n);
      if (code === 200 && req.url === "/v1/metrics") {
        const message = type.decode(Buffer.concat(chunks));
        received.push({ contentType: req.headers["content-type"], headers: req.headers,
                        body: type.toObject(message, { longs: String, enums: String, defaults: true }) });
      }
      res.writeHead(code, { "Content-Type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { port: server.address().port, received, requests: () => n };
}

async function start(otel, extra = "") {
  const dir = mkdtempSync(join(tmpdir(), "semcached-otlp-"));
  const s = await startSemcached(binary, dir, `${serverTable(dir)}
[otel]
${otel}
${extra}
[[caches]]
id = "docs"
`);
  cleanups.push(async () => { await stop(s.child); rmSync(dir, { recursive: true, force: true }); });
  return s;
}

const post = (url, path, body) => fetch(url + path, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const attrs = (list) => Object.fromEntries(list.map((a) => [a.key, a.value.stringValue ?? a.value.intValue]));
const metricsOf = (request) => request.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
const byName = (request, name) => metricsOf(request).find((m) => m.name === name);

test("metrics arrive as OTLP protobuf, named by the OpenTelemetry conventions, equal to /metrics", async () => {
  const type = await loadRequestType();
  const sink = await collector(type);
  const upstream = await fakeOpenAI(() => "Paris.", { prompt_tokens: 12, completion_tokens: 3 });
  cleanups.push(() => upstream.close());
  const { url } = await start(`endpoint = "http://127.0.0.1:${sink.port}"
export_interval_ms = 200
headers = "x-collector-key=secret-1"
resource_attributes = "deployment.environment.name=test"`, `[proxy]
openai_base_url = "http://127.0.0.1:${upstream.port}"
cache = "docs"`);
  await post(url, "/v1/caches/docs/entries", { prompt: "How do I reset my password?", response: "Click forgot." });
  for (let i = 0; i < 3; i++) await post(url, "/v1/caches/docs/entries/search", { prompt: "How do I reset my password?" });
  await post(url, "/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "Capital of France?" }] });
  const exact = await metricSum(url, "semcached_cache_lookups_total", { cache: "docs", result: "exact" });
  assert.equal(exact, 3);

  // The first export taken after those requests.
  let last;
  for (let i = 0; i < 100; i++) {
    last = sink.received.at(-1)?.body;
    const lookups = last && byName(last, "semcached.cache.lookups");
    const point = lookups?.sum.dataPoints.find((p) => attrs(p.attributes).result === "exact");
    if (point?.asDouble === 3 && byName(last, "gen_ai.client.token.usage")) break;
    await sleep(100);
  }
  const got = sink.received.at(-1);
  assert.equal(got.contentType, "application/x-protobuf");
  assert.equal(got.headers["x-collector-key"], "secret-1");
  const request = got.body;
  const resource = attrs(request.resourceMetrics[0].resource.attributes);
  assert.equal(resource["service.name"], "semcached");
  assert.match(resource["service.instance.id"], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(resource["service.version"], /^\d+\.\d+\.\d+/);
  assert.equal(resource["deployment.environment.name"], "test");
  assert.equal(request.resourceMetrics[0].scopeMetrics[0].scope.name, "semcached");

  // Counters: monotonic cumulative sums, from the process's start.
  const lookups = byName(request, "semcached.cache.lookups");
  assert.equal(lookups.sum.isMonotonic, true);
  assert.equal(lookups.sum.aggregationTemporality, "AGGREGATION_TEMPORALITY_CUMULATIVE");
  const exactPoint = lookups.sum.dataPoints.find((p) => attrs(p.attributes).result === "exact");
  assert.deepEqual(attrs(exactPoint.attributes), { cache: "docs", result: "exact" });
  assert.equal(exactPoint.asDouble, 3);
  assert.ok(BigInt(exactPoint.startTimeUnixNano) > 0n && BigInt(exactPoint.startTimeUnixNano) <= BigInt(exactPoint.timeUnixNano));

  // HTTP by OpenTelemetry's HTTP conventions: integer status, per-bucket counts.
  const http = byName(request, "http.server.request.duration");
  assert.equal(http.unit, "s");
  const search = http.histogram.dataPoints.find((p) => attrs(p.attributes)["http.route"] === "/v1/caches/{cacheId}/entries/search");
  assert.deepEqual(attrs(search.attributes), { "http.route": "/v1/caches/{cacheId}/entries/search",
                                               "http.request.method": "POST", "http.response.status_code": "200" });
  assert.equal(search.attributes.find((a) => a.key === "http.response.status_code").value.intValue, "200");
  assert.equal(Number(search.count), 3);
  assert.equal(search.bucketCounts.length, search.explicitBounds.length + 1);
  assert.equal(search.bucketCounts.reduce((a, b) => a + Number(b), 0), 3);
  assert.ok(search.sum > 0);

  // The proxy by the GenAI conventions; the process by the process conventions.
  const tokens = byName(request, "gen_ai.client.token.usage");
  const input = tokens.histogram.dataPoints.find((p) => attrs(p.attributes)["gen_ai.token.type"] === "input");
  assert.deepEqual(attrs(input.attributes), { "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                                              "gen_ai.token.type": "input", "gen_ai.operation.name": "chat" });
  assert.equal(input.sum, 12);
  assert.equal(Number(byName(request, "gen_ai.client.operation.duration").histogram.dataPoints[0].count), 1);
  assert.equal(byName(request, "process.cpu.time").sum.isMonotonic, true);
  assert.ok(byName(request, "process.memory.usage").gauge.dataPoints[0].asDouble > 1e6);
  assert.equal(byName(request, "semcached.cache.stage").unit, "s");
  assert.equal(byName(request, "semcached.cache.memory").unit, "By");
  assert.ok(byName(request, "db.client.operation.duration") === undefined);  // no Redis here
  assert.ok(await metricSum(url, "semcached_otel_exports_total", { signal: "metrics", result: "ok" }) >= 1);
});

test("the last figures are exported at shutdown", async () => {
  const type = await loadRequestType();
  const sink = await collector(type);
  const dir = mkdtempSync(join(tmpdir(), "semcached-otlp-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const s = await startSemcached(binary, dir, `${serverTable(dir)}
[otel]
endpoint = "http://127.0.0.1:${sink.port}"
export_interval_ms = 3600000

[[caches]]
id = "docs"
`);
  await post(s.url, "/v1/caches/docs/entries", { prompt: "Where is my order?", response: "On its way." });
  for (let i = 0; i < 4; i++) await post(s.url, "/v1/caches/docs/entries/search", { prompt: "Where is my order?" });
  assert.equal(sink.received.length, 0);  // an hour to the first interval
  await stop(s.child);
  assert.equal(sink.received.length, 1);
  const point = byName(sink.received[0].body, "semcached.cache.lookups").sum.dataPoints
    .find((p) => attrs(p.attributes).result === "exact");
  assert.equal(point.asDouble, 4);
});

test("a collector that never answers costs requests nothing; the queue stays bounded", async () => {
  // Accepts connections and reads, never answers.
  const sockets = [];
  const blackhole = createTcpServer((sock) => { sockets.push(sock); sock.on("error", () => {}); });
  await new Promise((r) => blackhole.listen(0, "127.0.0.1", r));
  cleanups.push(() => { sockets.forEach((s) => s.destroy()); return new Promise((r) => blackhole.close(r)); });
  const { url } = await start(`endpoint = "http://127.0.0.1:${blackhole.address().port}"
export_interval_ms = 100
timeout_ms = 1500
max_queue = 2`);
  await post(url, "/v1/caches/docs/entries", { prompt: "Do you ship abroad?", response: "Yes." });
  let slowest = 0;
  const started = Date.now();
  let served = 0;
  while (Date.now() - started < 3500) {
    const t0 = Date.now();
    const r = await post(url, "/v1/caches/docs/entries/search", { prompt: "Do you ship abroad?" });
    assert.equal(r.status, 200);
    await r.json();
    slowest = Math.max(slowest, Date.now() - t0);
    served++;
  }
  // Each export waits 1.5 s for its timeout, on the exporter's thread: a request that waited
  // for one would take that long.
  assert.ok(slowest < 1000, `slowest request ${slowest} ms`);
  assert.ok(served > 100, `${served} requests`);
  assert.ok(await metricSum(url, "semcached_otel_exports_total", { signal: "metrics", result: "failed" }) >= 1);
  assert.ok(await metricSum(url, "semcached_otel_dropped_total", { signal: "metrics" }) >= 10);
  assert.ok(await metricSum(url, "semcached_otel_queue", { signal: "metrics" }) <= 2);
});

test("a collector that answers 503 gets the batch again, with growing backoff, until it takes it", async () => {
  const type = await loadRequestType();
  const times = [];
  const sink = await collector(type, (n) => { times.push(Date.now()); return n <= 3 ? 503 : 200; });
  const { url } = await start(`endpoint = "http://127.0.0.1:${sink.port}"
export_interval_ms = 200`);
  for (let i = 0; i < 60 && sink.received.length === 0; i++) await sleep(100);
  assert.ok(sink.received.length >= 1);  // then the batches queued meanwhile follow at once
  // Backoff from 0.5 s doubling, with jitter between half and all of it.
  const gaps = [times[1] - times[0], times[2] - times[1], times[3] - times[2]];
  assert.ok(gaps[0] >= 240 && gaps[1] >= 490 && gaps[2] >= 990, `gaps ${gaps}`);
  assert.equal(await metricSum(url, "semcached_otel_exports_total", { signal: "metrics", result: "failed" }), 3);
  assert.ok(await metricSum(url, "semcached_otel_exports_total", { signal: "metrics", result: "ok" }) >= 1);
});
