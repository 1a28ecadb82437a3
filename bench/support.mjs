// What the HTTP benchmarks share: the labelled pair files of ../shared/data read the same way,
// a keep-alive POST that times itself, and a fake OpenAI upstream that answers at once.
import { request as httpRequest } from "node:http";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseRecords } from "../tests/e2e/support/delimited.mjs";

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const sharedPairs = join(benchDir, "..", "..", "shared", "data", "semantic-pairs");

// Rows of a CSV or TSV file after its header, quotes undone. A row whose first two fields
// hold no letter or digit is left out: such a question normalizes to nothing, and the API
// refuses it.
export function parseDelimited(text, sep) {
  const hasText = /[\p{L}\p{N}]/u;
  return parseRecords(text, sep).slice(1)
    .filter((r) => r.length >= 2 && hasText.test(r[0]) && hasText.test(r[1]));
}

// val.csv as {a, b, duplicate} pairs.
export const readValPairs = () =>
  parseDelimited(readFileSync(join(sharedPairs, "meancache", "val.csv"), "utf8"), ",")
    .map(([a, b, label]) => ({ a, b, duplicate: label === "1" }));

// A POST with a JSON body over `agent`; resolves to {status, headers, body, ms}.
export function post(agent, port, path, payload, headers = {}) {
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

export const chat = (content) => ({ model: "gpt-4o-mini", messages: [{ role: "user", content }] });

// A fake OpenAI Chat Completions upstream: `answer(lastUserMessage)` is the assistant's text.
export { fakeOpenAI } from "../tests/e2e/support/fake_openai.mjs";

// A seeded generator of numbers in [0, 1), the same sequence on every machine.
export function seededRandom(seed) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

export const percentile = (xs, p) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
