// The official SDKs (openai, @anthropic-ai/sdk and @google/genai, from npm, unchanged)
// pointed at semcached's caching proxy by base URL. The upstream is a local fake speaking the
// three providers' wire protocols (paid APIs cannot run here) that counts its calls. Run by
// CTest (label e2e) with E2E_SEMCACHED_BINARY.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI, ApiError } from "@google/genai";
import { serverTable, startSemcached, stop } from "../support/processes.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
let server, url, dir, upstream;
const calls = [];  // {model, last, authorization}

// Two content pieces 300 ms apart, then the end: a client that sees the first piece early
// is not being buffered for. Model "cut-stream" ends without [DONE], as a dropped connection.
function openAiStream(request, last, res) {
  res.writeHead(200, { "Content-Type": "text/event-stream" });
  const base = { id: `chatcmpl-s${calls.length}`, object: "chat.completion.chunk", created: 1764300000, model: request.model };
  const send = (choices, extra = {}) => res.write(`data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`);
  send([{ index: 0, delta: { role: "assistant", content: `streamed ${calls.length} ` }, finish_reason: null }]);
  setTimeout(() => {
    send([{ index: 0, delta: { content: `to: ${last}` }, finish_reason: null }]);
    if (request.model === "cut-stream") return res.end();
    send([{ index: 0, delta: {}, finish_reason: "stop" }]);
    if (request.stream_options?.include_usage) send([], { usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 } });
    res.end("data: [DONE]\n\n");
  }, 300);
}

function anthropicAnswer(req, request, res) {
  const last = request.messages[request.messages.length - 1].content;
  // Newer SDKs send the key as a Bearer token, older ones as x-api-key: both pass through.
  const key = req.headers["x-api-key"] ?? req.headers.authorization?.replace(/^Bearer /, "");
  calls.push({ provider: "anthropic", model: request.model, last, key, version: req.headers["anthropic-version"] });
  if (request.stream) {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    const ev = (name, data) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    ev("message_start", { type: "message_start", message: { id: `msg_s${calls.length}`, type: "message", role: "assistant",
      model: request.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } } });
    ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
    for (const piece of ["streamed ", `answer to: ${last}`]) {
      ev("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: piece } });
    }
    ev("content_block_stop", { type: "content_block_stop", index: 0 });
    ev("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 20 } });
    ev("message_stop", { type: "message_stop" });
    res.end();
    return;
  }
  if (request.model === "fail-429") {
    res.writeHead(429, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ type: "error", error: { type: "rate_limit_error", message: "Rate limited" } }));
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({
    id: `msg_${calls.length}`, type: "message", role: "assistant", model: request.model,
    content: [{ type: "text", text: `answer ${calls.length} to: ${last}` }],
    stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 10, output_tokens: 20 },
  }));
}

function geminiAnswer(req, request, res) {
  const model = req.url.slice("/v1beta/models/".length).split(":")[0];
  const last = request.contents[request.contents.length - 1].parts.map((p) => p.text).join("\n");
  calls.push({ provider: "gemini", model, last, key: req.headers["x-goog-api-key"] });
  if (req.url.includes(":streamGenerateContent")) {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    for (const piece of ["streamed ", `answer to: ${last}`]) {
      res.write(`data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: piece }] }, index: 0 }] })}\r\n\r\n`);
    }
    res.end(`data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "" }] }, finishReason: "STOP", index: 0 }] })}\r\n\r\n`);
    return;
  }
  if (model === "fail-429") {
    res.writeHead(429, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { code: 429, message: "Resource exhausted", status: "RESOURCE_EXHAUSTED" } }));
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({
    candidates: [{ content: { role: "model", parts: [{ text: `answer ${calls.length} to: ${last}` }] },
                   finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 16, totalTokenCount: 24 },
    modelVersion: model,
  }));
}

before(async () => {
  assert.ok(binary, "E2E_SEMCACHED_BINARY must name the semcached executable");
  upstream = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const request = JSON.parse(body);
      if (req.url.startsWith("/v1/messages")) return anthropicAnswer(req, request, res);
      if (req.url.startsWith("/v1/responses")) {
        calls.push({ provider: "responses", model: request.model, last: request.input });
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({
          id: `resp_${calls.length}`, object: "response", created_at: 1764300000, status: "completed", model: request.model,
          output: [{ type: "message", id: `msg_${calls.length}`, status: "completed", role: "assistant",
                     content: [{ type: "output_text", text: `answer ${calls.length} to: ${request.input}`, annotations: [] }] }],
          usage: { input_tokens: 9, output_tokens: 19, total_tokens: 28 },
        }));
        return;
      }
      if (req.url.startsWith("/v1beta/models/")) return geminiAnswer(req, request, res);
      const last = request.messages[request.messages.length - 1].content;
      calls.push({ model: request.model, last, authorization: req.headers.authorization });
      if (request.stream) return openAiStream(request, last, res);
      if (request.model === "fail-429") {
        res.writeHead(429, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { message: "Rate limit reached", type: "requests", param: null,
                                          code: "rate_limit_exceeded" } }));
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({
        id: `chatcmpl-${calls.length}`, object: "chat.completion", created: 1764300000, model: request.model,
        choices: [{ index: 0, message: { role: "assistant", content: `answer ${calls.length} to: ${last}`, refusal: null },
                    finish_reason: "stop", logprobs: null }],
        usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 },
      }));
    });
  });
  await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
  dir = mkdtempSync(join(tmpdir(), "semcached-proxy-"));
  ({ child: server, url } = await startSemcached(binary, dir, `${serverTable(dir)}
[proxy]
openai_base_url = "http://127.0.0.1:${upstream.address().port}"
anthropic_base_url = "http://127.0.0.1:${upstream.address().port}"
gemini_base_url = "http://127.0.0.1:${upstream.address().port}"
openai_api_key_env = "E2E_PROXY_OPENAI_KEY"
cache = "llm"

[[caches]]
id = "llm"
similarity_threshold = 0.7
`, { env: { ...process.env, E2E_PROXY_OPENAI_KEY: "sk-from-config" } }));
});

after(async () => {
  await stop(server);
  upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-test-key", maxRetries: 0 });
const ask = (content, extra = {}, options = {}) =>
  client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra }, options)
    .withResponse();

test("a repeated request is answered without an upstream call", async () => {
  const before = calls.length;
  const first = await ask("What is the capital of France?");
  assert.equal(first.response.headers.get("x-semcached-cache"), "miss");
  assert.equal(calls.length, before + 1);
  assert.equal(calls.at(-1).authorization, "Bearer sk-test-key");  // the client's own key, passed through
  const again = await ask("What is the capital of France?");
  assert.equal(calls.length, before + 1);
  assert.equal(again.response.headers.get("x-semcached-cache"), "hit");
  assert.equal(again.data.choices[0].message.content, first.data.choices[0].message.content);
  assert.match(again.response.headers.get("x-semcached-entry-id"), /^[0-9a-f]{32}$/);
});

test("a paraphrase is answered from the cache", async () => {
  await ask("How do I reset my router password?");
  const before = calls.length;
  const para = await ask("how can I reset my router password");
  assert.equal(calls.length, before);
  assert.equal(para.response.headers.get("x-semcached-cache"), "hit");
  assert.ok(Number(para.response.headers.get("x-semcached-similarity")) >= 0.7);
});

test("a follow-up turn does not hit an entry made without its context", async () => {
  await ask("Which port does SSH use?");
  const before = calls.length;
  const followUp = await client().chat.completions.create({
    model: "gpt-4o-mini",
    messages: [
      { role: "user", content: "I run a mail server." },
      { role: "assistant", content: "Good to know." },
      { role: "user", content: "Which port does SSH use?" },
    ],
  }).withResponse();
  assert.equal(calls.length, before + 1);
  assert.equal(followUp.response.headers.get("x-semcached-cache"), "miss");
  // Another model is another scope too.
  await ask("Which port does SSH use?", { model: "gpt-4o" });
  assert.equal(calls.length, before + 2);
});

test("Cache-Control: no-cache skips the lookup, no-store skips the store", async () => {
  await ask("What is the boiling point of water?");
  const before = calls.length;
  const fresh = await ask("What is the boiling point of water?", {}, { headers: { "Cache-Control": "no-cache" } });
  assert.equal(calls.length, before + 1);
  assert.equal(fresh.response.headers.get("x-semcached-cache"), "miss");
  await ask("Name a prime number above 100.", {}, { headers: { "Cache-Control": "no-store" } });
  await ask("Name a prime number above 100.");
  assert.equal(calls.length, before + 3);
});

test("an upstream error reaches the SDK as its own error type and is not stored", async () => {
  const before = calls.length;
  await assert.rejects(ask("Will this fail?", { model: "fail-429" }), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}`);
    assert.equal(e.status, 429);
    return true;
  });
  await assert.rejects(ask("Will this fail?", { model: "fail-429" }), OpenAI.RateLimitError);
  assert.equal(calls.length, before + 2);
});

test("requests the policy does not cache are passed through", async () => {
  const before = calls.length;
  const many = await ask("Give me a random word.", { n: 3 });
  assert.equal(many.response.headers.get("x-semcached-cache"), "bypass");
  await ask("Give me a random word.", { n: 3 });
  assert.equal(calls.length, before + 2);
});

test("Anthropic: a repeat and a paraphrase cost no upstream call; errors keep the SDK's types", async () => {
  const claude = new Anthropic({ baseURL: url, apiKey: "sk-ant-test", maxRetries: 0 });
  const ask = (content, model = "claude-sonnet-4-5") =>
    claude.messages.create({ model, max_tokens: 256, messages: [{ role: "user", content }] }).withResponse();
  const before = calls.length;
  const first = await ask("How do I reset my router password?");
  assert.equal(first.response.headers.get("x-semcached-cache"), "miss");
  assert.equal(calls.at(-1).key, "sk-ant-test");
  assert.ok(calls.at(-1).version);  // anthropic-version passed through
  const again = await ask("how do I reset my router password");
  const para = await ask("how can I reset my router password");
  assert.equal(calls.length, before + 1);
  assert.equal(again.response.headers.get("x-semcached-cache"), "hit");
  assert.equal(para.response.headers.get("x-semcached-cache"), "hit");
  assert.equal(para.data.content[0].text, first.data.content[0].text);
  // Same prompt through another provider: another scope.
  await ask("How do I reset my router password?", "claude-haiku-4-5");
  assert.equal(calls.length, before + 2);
  await assert.rejects(ask("Will this fail?", "fail-429"), Anthropic.RateLimitError);
});

test("Gemini: a repeat and a paraphrase cost no upstream call; errors keep the SDK's types", async () => {
  const ai = new GoogleGenAI({ apiKey: "g-test-key", httpOptions: { baseUrl: url } });
  const ask = (contents, model = "gemini-2.5-flash") => ai.models.generateContent({ model, contents });
  const before = calls.length;
  const first = await ask("How do I reset my router password?");
  assert.equal(calls.length, before + 1);
  assert.equal(calls.at(-1).provider, "gemini");
  assert.equal(calls.at(-1).key, "g-test-key");
  const again = await ask("how do I reset my router password");
  const para = await ask("how can I reset my router password");
  assert.equal(calls.length, before + 1);
  assert.equal(again.text, first.text);
  assert.equal(para.text, first.text);
  await assert.rejects(ask("Will this fail?", "fail-429"), (e) => {
    assert.ok(e instanceof ApiError, `got ${e?.constructor?.name}`);
    assert.equal(e.status, 429);
    return true;
  });
});

test("hits add the cost and upstream time they saved to /metrics and the cache's stats", async () => {
  await ask("What is the tallest mountain on Earth?");
  await ask("What is the tallest mountain on Earth?");
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const value = (name) => Number((metrics.match(new RegExp(`^${name}\\{provider="openai"\\} (\\S+)$`, "m")) ?? [])[1]);
  // gpt-4o-mini at 0.15 / 0.60 USD per million tokens, 12 + 34 tokens per fake answer.
  const perHit = (12 * 0.15 + 34 * 0.6) / 1e6;
  assert.ok(value("semcached_proxy_cost_saved_usd_total") >= perHit * 0.999, metrics);
  assert.ok(value("semcached_proxy_tokens_saved_total") >= 46);
  assert.ok(value("semcached_proxy_latency_saved_seconds_total") >= 0);
  const stats = await (await fetch(`${url}/v1/caches/llm/stats`)).json();
  assert.ok(stats.estimatedCostSavedUsd >= perHit * 0.999);
  // Namespaces isolate both ways.
  const nsBefore = calls.length;
  await ask("What is the tallest mountain on Earth?", {}, { headers: { "x-semcached-namespace": "team-a" } });
  assert.equal(calls.length, nsBefore + 1);
});

test("streaming: chunks pass through as they arrive, a complete stream is stored and replayed", async () => {
  const stream = async (content, model = "gpt-4o-mini", extra = {}) => {
    const started = Date.now();
    const { data, response } = await client().chat.completions
      .create({ model, messages: [{ role: "user", content }], stream: true, ...extra }).withResponse();
    let text = "", firstAt = null;
    for await (const chunk of data) {
      if (firstAt === null) firstAt = Date.now() - started;
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    return { text, firstAt, total: Date.now() - started, cache: response.headers.get("x-semcached-cache") };
  };
  const before = calls.length;
  const miss = await stream("Explain what a semantic cache does.", "gpt-4o-mini", { stream_options: { include_usage: true } });
  assert.equal(miss.cache, "miss");
  assert.equal(calls.length, before + 1);
  assert.ok(miss.firstAt < 250 && miss.total >= 290, `first piece at ${miss.firstAt} ms of ${miss.total} ms`);
  assert.match(miss.text, /^streamed \d+ to: Explain what a semantic cache does\.$/);
  // Replayed from the cache as stream events, and served to a non-streaming request too.
  const hit = await stream("Explain what a semantic cache does.");
  assert.equal(hit.cache, "hit");
  assert.equal(hit.text, miss.text);
  const plain = await ask("Explain what a semantic cache does.");
  assert.equal(plain.response.headers.get("x-semcached-cache"), "hit");
  assert.equal(plain.data.choices[0].message.content, miss.text);
  assert.equal(calls.length, before + 1);
  // A stream cut short is passed on as it was, and never stored.
  await stream("Is this stream complete?", "cut-stream").catch(() => {});
  await stream("Is this stream complete?", "cut-stream").catch(() => {});
  assert.equal(calls.length, before + 3);
});

test("Gemini and Anthropic streams: passed through, stored when complete, replayed on a hit", async () => {
  const ai = new GoogleGenAI({ apiKey: "g-test-key", httpOptions: { baseUrl: url } });
  const geminiStream = async (contents) => {
    let text = "";
    for await (const chunk of await ai.models.generateContentStream({ model: "gemini-2.5-flash", contents })) {
      text += chunk.text ?? "";
    }
    return text;
  };
  const before = calls.length;
  assert.equal(await geminiStream("Stream me."), "streamed answer to: Stream me.");
  assert.equal(await geminiStream("stream me"), "streamed answer to: Stream me.");  // replayed
  assert.equal(calls.length, before + 1);

  const claude = new Anthropic({ baseURL: url, apiKey: "sk-ant-test", maxRetries: 0 });
  const claudeStream = async (content) => {
    const { data, response } = await claude.messages
      .create({ model: "claude-sonnet-4-5", max_tokens: 64, stream: true, messages: [{ role: "user", content }] })
      .withResponse();
    let text = "", stop = null;
    for await (const event of data) {
      if (event.type === "content_block_delta") text += event.delta.text;
      if (event.type === "message_delta") stop = event.delta.stop_reason;
    }
    return { text, stop, cache: response.headers.get("x-semcached-cache") };
  };
  const miss = await claudeStream("Tell me about streams.");
  assert.equal(miss.cache, "miss");
  const hit = await claudeStream("tell me about streams");
  assert.equal(hit.cache, "hit");
  assert.equal(hit.text, miss.text);
  assert.equal(hit.stop, "end_turn");
  assert.equal(calls.length, before + 2);
});

test("a client without a key is served with the configured one", async () => {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Keyless question?" }] }),
  });
  assert.equal(r.status, 200);
  assert.equal(calls.at(-1).authorization, "Bearer sk-from-config");
});

test("the Responses API: a repeat and a paraphrase cost no upstream call", async () => {
  const before = calls.length;
  // The per-request threshold header, as a client tuning this route would send it.
  const ask = (input) => client().responses.create({ model: "gpt-4o-mini", input },
                                                   { headers: { "x-semcached-threshold": "0.6" } }).withResponse();
  const first = await ask("How do I reset my router password?");
  assert.equal(first.response.headers.get("x-semcached-cache"), "miss");
  const again = await ask("how do I reset my router password");
  const para = await ask("how do I reset the router password?");
  assert.equal(calls.length, before + 1);
  assert.equal(para.response.headers.get("x-semcached-cache"), "hit");
  assert.equal(again.data.output_text, first.data.output_text);
  assert.equal(para.data.output_text, first.data.output_text);
  // Chained to server-side state: never cached.
  const chained = await client().responses.create({ model: "gpt-4o-mini", input: "And then?", previous_response_id: "resp_1" })
    .withResponse();
  assert.equal(chained.response.headers.get("x-semcached-cache"), "bypass");
});
