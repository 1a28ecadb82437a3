// `semcached model pull` against a local fake of the Hugging Face hub (Node built-ins only):
// it lists a revision's files as the hub's API does (?blobs=true: sizes, git blob ids, LFS
// sha256), serves them under /OWNER/NAME/resolve/COMMIT/FILE with HTTP Range, and cuts the
// first download of the weights half-way, so the pull must resume. The files are the shared
// model2vec fixtures (skipped where ../shared is absent). The real hub is not reachable here.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startSemcached, stop } from "../support/processes.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, "..", "..", "..", "..", "shared", "models", "model2vec-fixtures", "test-model-float32");
const present = existsSync(fixture);
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const FILES = ["config.json", "tokenizer.json", "model.safetensors", "modules.json", "README.md"];
let hub, hubUrl, dir, requests = [], lie = false, cutOnce = true;

const sha = (alg, data) => createHash(alg).update(data).digest("hex");
const gitBlob = (data) => createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");

before(async () => {
  if (!present) return;
  dir = mkdtempSync(join(tmpdir(), "semcached-pull-"));
  const bytes = Object.fromEntries(FILES.map((f) => [f, readFileSync(join(fixture, f))]));
  hub = createServer((req, res) => {
    requests.push({ url: req.url, range: req.headers.range });
    const list = req.url.match(/^\/api\/models\/test-org\/tiny-model\/revision\/([^?]+)\?blobs=true$/);
    if (list) {
      if (list[1] !== "main" && list[1] !== COMMIT) { res.writeHead(404); return res.end("{}"); }
      const siblings = FILES.map((f) => {
        const s = { rfilename: f, size: bytes[f].length, blobId: gitBlob(bytes[f]) };
        if (f.endsWith(".safetensors"))
          s.lfs = { sha256: lie ? "0".repeat(64) : sha("sha256", bytes[f]), size: bytes[f].length };
        return s;
      }).concat([{ rfilename: "onnx/model.onnx", size: 1 << 30, blobId: "x" }]);  // not wanted
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(JSON.stringify({ id: "test-org/tiny-model", sha: COMMIT, siblings }));
    }
    const file = req.url.match(new RegExp(`^/test-org/tiny-model/resolve/${COMMIT}/(.+)$`));
    if (!file || !bytes[file[1]]) { res.writeHead(404); return res.end(); }
    const body = bytes[file[1]];
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    const from = range ? Number(range[1]) : 0;
    const part = body.subarray(from);
    res.writeHead(range ? 206 : 200, {
      "Content-Length": part.length,
      ...(range ? { "Content-Range": `bytes ${from}-${body.length - 1}/${body.length}` } : {}),
    });
    if (file[1] === "model.safetensors" && cutOnce) {  // half, then the connection drops
      cutOnce = false;
      res.write(part.subarray(0, part.length >> 1), () => setTimeout(() => res.destroy(), 50));
      return;
    }
    res.end(part);
  });
  await new Promise((r) => hub.listen(0, "127.0.0.1", r));
  hubUrl = `http://127.0.0.1:${hub.address().port}`;
});

after(() => { hub?.close(); if (dir) rmSync(dir, { recursive: true, force: true }); });

function run(args, input = "") {
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (code) => resolve({ code, out, err }));
    child.stdin.end(input);
  });
}

const skip = !present && "the shared model fixtures are not on this machine";

test("a pull lists, downloads, resumes a cut transfer and verifies every file", { skip }, async () => {
  const r = await run(["model", "pull", "test-org/tiny-model", "--hub", hubUrl, "--data-dir", join(dir, "data"), "--no-progress"]);
  assert.equal(r.code, 0, r.err);
  const pulled = join(dir, "data", "models", "test-org", "tiny-model");
  for (const f of FILES) assert.deepEqual(readFileSync(join(pulled, f)), readFileSync(join(fixture, f)), f);
  assert.ok(!existsSync(join(pulled, "onnx")), "files a static model does not need stay on the hub");
  const weights = requests.filter((q) => q.url.endsWith("/model.safetensors"));
  assert.equal(weights.length, 2, JSON.stringify(weights));
  assert.match(weights[1].range ?? "", /^bytes=\d+-$/, "the second request resumes with a Range");
  assert.match(r.err, /resuming at/);
  assert.match(r.err, /embedder_model = "test-org\/tiny-model"/);
});

test("the pulled model is what embedder_model = OWNER/NAME names", { skip }, async () => {
  const data = join(dir, "data");
  const tok = await run(["model", "tokenize", "--model", "test-org/tiny-model", "--data-dir", data], "hello world\n");
  assert.equal(tok.code, 0, tok.err);
  assert.deepEqual(JSON.parse(tok.out), [6598, 1094]);  // "hello", "world" in this vocabulary
  const { child, url } = await startSemcached(binary, dir, `[server]
port = 0
port_file = "${join(dir, "port")}"
[[caches]]
id = "tiny"
embedder_model = "test-org/tiny-model"
`);
  try {
    const r = await fetch(`${url}/v1/caches/tiny/entries`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "hello world", response: "hi" }),
    });
    assert.equal(r.status, 201);
    const d = await (await fetch(`${url}/v1/caches/tiny`, { headers: {} })).text();
    assert.ok(d.length > 0);
  } finally {
    await stop(child);
  }
  const recorded = JSON.parse(readFileSync(join(data, "tiny.embedder"), "utf8"));
  assert.equal(recorded.model, "test-org/tiny-model");
  assert.equal(recorded.dim, 2);
});

test("a file whose digest differs from the hub's is refused and not kept", { skip }, async () => {
  lie = true;
  const data = join(dir, "lying");
  const r = await run(["model", "pull", "test-org/tiny-model", "--hub", hubUrl, "--data-dir", data, "--no-progress"]);
  lie = false;
  assert.equal(r.code, 1);
  assert.match(r.err, /sha256 [0-9a-f]{64}, the hub states 0{64}/);
  const pulled = join(data, "models", "test-org", "tiny-model");
  assert.ok(!existsSync(join(pulled, "model.safetensors")));
  assert.ok(!existsSync(join(pulled, "model.safetensors.part")));
});

test("an unknown model or revision, or a malformed name, is a clear error", { skip }, async () => {
  const data = join(dir, "none");
  let r = await run(["model", "pull", "test-org/tiny-model@nope", "--hub", hubUrl, "--data-dir", data]);
  assert.equal(r.code, 2);
  assert.match(r.err, /is not on/);
  r = await run(["model", "pull", "not a name", "--hub", hubUrl, "--data-dir", data]);
  assert.equal(r.code, 2);
  assert.match(r.err, /OWNER\/NAME/);
  r = await run(["model", "tokenize", "--model", "test-org/other", "--data-dir", data], "x\n");
  assert.equal(r.code, 2);
  assert.match(r.err, /semcached model pull test-org\/other/);
});
