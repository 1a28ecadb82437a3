// Traces over OTLP/HTTP, received by a local collector stand-in that decodes every body with
// protobufjs over the same OTLP .proto files: W3C trace context read from requests (or a new
// trace), passed on to the LLM upstream (a local fake: the paid API cannot run here), spans for
// the request, each cache stage, each Redis command and each upstream call, with their
// attributes, parent links and timing order; head sampling; X-Semcached-Trace-Id.
// Run by CTest (labels e2e, redis) with E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { serverTable, startRedis, startSemcached, stop } from "../support/processes.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const redisBinary = process.env.E2E_REDIS_SERVER;
const protoDir = join(dirname(fileURLToPath(import.meta.url)), "../../../third_party/otlp-proto");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (b64) => Buffer.from(b64, "base64").toString("hex");
let dir, redis, upstream, collectorServer, spans = [], upstreamParents = [], sampled, unsampled;

// A fake OpenAI upstream that keeps the traceparent of every call.
function fakeUpstream() {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      upstreamParents.push(req.headers.traceparent);
      const request = JSON.parse(body);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({
        id: "chatcmpl-1", object: "chat.completion", created: 1764300000, model: request.model,
        choices: [{ index: 0, message: { role: "assistant", content: "Paris.", refusal: null }, finish_reason: "stop", logprobs: null }],
        usage: { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 } }));
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r(server)));
}

before(async () => {
  assert.ok(binary && redisBinary, "E2E_SEMCACHED_BINARY and E2E_REDIS_SERVER are required");
  dir = mkdtempSync(join(tmpdir(), "semcached-traces-"));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoDir, target);
  await root.load("opentelemetry/proto/collector/trace/v1/trace_service.proto");
  const type = root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
  collectorServer = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const m = type.toObject(type.decode(Buffer.concat(chunks)), { longs: String, enums: String, bytes: String });
        for (const rs of m.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) {
          spans.push({ ...s, traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: s.parentSpanId ? hex(s.parentSpanId) : "",
                       attrs: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]])),
                       resource: Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue])) });
        }
      }
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise((r) => collectorServer.listen(0, "127.0.0.1", r));
  upstream = await fakeUpstream();
  redis = await startRedis(redisBinary, dir);
  const config = (name, ratio) => `${serverTable(join(dir, name))}
[redis]
url = "redis://127.0.0.1:${redis.port}"
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.address().port}"
cache = "llm"
[otel]
endpoint = "http://127.0.0.1:${collectorServer.address().port}"
trace_sample_ratio = ${ratio}
export_interval_ms = 3600000
[[caches]]
id = "llm"
[[caches]]
id = "shared_${name}"
store = "redis"
`;
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(dir, "sampled"));
  mkdirSync(join(dir, "unsampled"));
  sampled = await startSemcached(binary, join(dir, "sampled"), config("sampled", 1));
  unsampled = await startSemcached(binary, join(dir, "unsampled"), config("unsampled", 0));
});

after(async () => {
  await stop(sampled?.child);
  await stop(unsampled?.child);
  await stop(redis?.child);
  upstream?.close();
  collectorServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (url, path, body, headers = {}) => fetch(url + path, {
  method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

async function spansOf(traceId, atLeast) {
  for (let i = 0; i < 100; i++) {
    const found = spans.filter((s) => s.traceId === traceId);
    if (found.length >= atLeast) return found;
    await sleep(100);
  }
  return spans.filter((s) => s.traceId === traceId);
}

// Every child starts and ends within its parent.
function assertNested(found) {
  const byId = new Map(found.map((s) => [s.spanId, s]));
  for (const s of found) {
    const parent = byId.get(s.parentSpanId);
    if (!parent) continue;
    assert.ok(BigInt(s.startTimeUnixNano) >= BigInt(parent.startTimeUnixNano), `${s.name} starts before ${parent.name}`);
    assert.ok(BigInt(s.endTimeUnixNano) <= BigInt(parent.endTimeUnixNano), `${s.name} ends after ${parent.name}`);
    assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
  }
}

test("a proxied miss continues the caller's trace through the cache stages to the upstream", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const callerSpan = "00f067aa0ba902b7";
  const r = await post(sampled.url, "/v1/chat/completions",
                       { model: "gpt-4o-mini", messages: [{ role: "user", content: "What is the capital of France?" }] },
                       { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: "vendor=abc" });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-semcached-trace-id"), traceId);
  await r.json();
  const found = await spansOf(traceId, 9);
  const named = (name) => found.find((s) => s.name === name);
  const root = named("POST /v1/chat/completions");
  assert.ok(root, `spans: ${found.map((s) => s.name)}`);
  assert.equal(root.kind, "SPAN_KIND_SERVER");
  assert.equal(root.parentSpanId, callerSpan);
  assert.equal(root.attrs["http.route"], "/v1/chat/completions");
  assert.equal(root.attrs["http.response.status_code"], "200");
  assert.equal(root.resource["service.name"], "semcached");

  const lookup = named("cache.lookup");
  assert.equal(lookup.parentSpanId, root.spanId);
  assert.equal(lookup.attrs["semcached.cache.id"], "llm");
  assert.equal(lookup.attrs["semcached.cache.hit"], false);
  for (const stage of ["cache.normalize", "cache.exact", "cache.semantic"]) assert.equal(named(stage)?.parentSpanId, lookup.spanId, stage);
  const semantic = named("cache.semantic");
  assert.equal(named("cache.embed").parentSpanId, semantic.spanId);
  assert.equal(named("cache.search").parentSpanId, semantic.spanId);
  // The stages run one after the other.
  const order = ["cache.normalize", "cache.exact", "cache.semantic"].map(named);
  for (let i = 1; i < order.length; i++)
    assert.ok(BigInt(order[i].startTimeUnixNano) >= BigInt(order[i - 1].endTimeUnixNano), `${order[i].name} overlaps`);

  const chat = named("chat gpt-4o-mini");
  assert.equal(chat.kind, "SPAN_KIND_CLIENT");
  assert.equal(chat.parentSpanId, root.spanId);
  assert.equal(chat.attrs["gen_ai.provider.name"], "openai");
  assert.equal(chat.attrs["gen_ai.request.model"], "gpt-4o-mini");
  assert.equal(chat.attrs["gen_ai.usage.input_tokens"], "11");
  assert.equal(chat.attrs["gen_ai.usage.output_tokens"], "2");
  assert.ok(BigInt(chat.startTimeUnixNano) >= BigInt(lookup.endTimeUnixNano));
  const http = found.find((s) => s.name === "POST" && s.parentSpanId === chat.spanId);
  assert.equal(http.kind, "SPAN_KIND_CLIENT");
  assert.equal(http.attrs["http.response.status_code"], "200");
  assert.match(http.attrs["url.full"], /\/v1\/chat\/completions$/);
  // The upstream was told the trace, with the HTTP client span as its parent.
  assert.equal(upstreamParents.at(-1), `00-${traceId}-${http.spanId}-01`);
  assertNested(found);
});

test("a Redis cache's lookup has a span per Redis command; a request without traceparent starts a trace", async () => {
  await post(sampled.url, "/v1/caches/shared_sampled/entries", { prompt: "How do I reset my password?", response: "Click forgot." });
  const r = await post(sampled.url, "/v1/caches/shared_sampled/entries/search", { prompt: "how can I reset my password" });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).data.length, 1);
  const traceId = r.headers.get("x-semcached-trace-id");
  assert.match(traceId, /^[0-9a-f]{32}$/);
  const found = await spansOf(traceId, 8);
  const named = (name) => found.find((s) => s.name === name);
  const root = named("POST /v1/caches/{cacheId}/entries/search");
  assert.equal(root.parentSpanId, "");
  const lookup = named("cache.lookup");
  assert.equal(lookup.attrs["semcached.cache.store"], "redis");
  assert.equal(lookup.attrs["semcached.cache.hit"], true);
  assert.equal(lookup.attrs["semcached.cache.tier"], "semantic");
  assert.ok(lookup.attrs["semcached.cache.similarity"] > 0.5);
  const search = named("cache.search");
  const vsim = named("VSIM");
  assert.equal(vsim.kind, "SPAN_KIND_CLIENT");
  assert.equal(vsim.parentSpanId, search.spanId);
  assert.equal(vsim.attrs["db.system.name"], "redis");
  assert.equal(vsim.attrs["db.operation.name"], "VSIM");
  const pipeline = found.find((s) => s.name === "PIPELINE" && s.parentSpanId === search.spanId);
  assert.equal(pipeline.attrs["db.operation.name"], "HGETALL");
  // The exact tier asked Redis too, under its own stage.
  assert.ok(found.some((s) => s.parentSpanId === named("cache.exact").spanId && s.attrs["db.system.name"] === "redis"));
  assertNested(found);
});

test("head sampling: ratio 0 records nothing new, follows a caller that sampled, and still propagates", async () => {
  const before = spans.length;
  const r = await post(unsampled.url, "/v1/chat/completions",
                       { model: "gpt-4o-mini", messages: [{ role: "user", content: "Unsampled question?" }] });
  const traceId = r.headers.get("x-semcached-trace-id");
  assert.match(traceId, /^[0-9a-f]{32}$/);
  await r.json();
  // The upstream still hears of the trace, marked not sampled.
  assert.match(upstreamParents.at(-1), new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
  // A caller that sampled its trace is followed.
  const traceId2 = "0af7651916cd43dd8448eb211c80319c";
  const r2 = await post(unsampled.url, "/v1/caches/shared_unsampled/entries/search", { prompt: "anything" },
                        { traceparent: `00-${traceId2}-b7ad6b7169203331-01` });
  assert.equal(r2.headers.get("x-semcached-trace-id"), traceId2);
  assert.ok((await spansOf(traceId2, 3)).length >= 3);
  await sleep(1500);  // one more flush
  assert.equal(spans.slice(before).filter((s) => s.traceId === traceId).length, 0);
});

test("a malformed traceparent starts a new trace", async () => {
  const r = await post(sampled.url, "/v1/caches/llm/entries/search", { prompt: "anything at all" },
                       { traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" });
  const traceId = r.headers.get("x-semcached-trace-id");
  assert.match(traceId, /^[0-9a-f]{32}$/);
  assert.notEqual(traceId, "00000000000000000000000000000000");
  const root = (await spansOf(traceId, 1)).find((s) => s.kind === "SPAN_KIND_SERVER");
  assert.equal(root.parentSpanId, "");
});
