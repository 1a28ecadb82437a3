// semcached's tokenizer against Hugging Face's own (npm `tokenizers`, the Rust library with a
// prebuilt binary, used only here): `semcached model tokenize` must give the same ids as
// Tokenizer.encode(text, null, { addSpecialTokens: false }) on every question of
// meancache/val.csv and on an edge set of Unicode and length cases. Run by CTest (label
// e2e) with E2E_SEMCACHED_BINARY set; skipped where ../shared is not on the machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "tokenizers";
import { parseRecords } from "../support/delimited.mjs";

const binary = process.env.E2E_SEMCACHED_BINARY;
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const shared = join(root, "..", "shared");
const defaultModel = join(root, "models", "potion-base-4m-int8");
const valCsv = join(shared, "data", "semantic-pairs", "meancache", "val.csv");
const unigramModel = join(shared, "models", "model2vec-fixtures", "test-model-vocab-quantized");

const longWord = "supercalifragilistic".repeat(6);  // 120 characters: over WordPiece's 100
const edgeSet = [
  "", " ", "\t\n", "Héllo Wörld, naïve façade — Ångström", "crème brûlée à la carte",
  "ＦＵＬＬ－ＷＩＤＴＨ ｔｅｘｔ １２３", "北京欢迎你 and 東京", "한국어 텍스트", "日本語のテキスト",
  "emoji 🙂🎉👍🏽 and 👨‍👩‍👧 family", "flags 🇫🇷🇯🇵", "tab\tnew\nline\r\nreturn",
  "control\u0001\u0007\u001b chars\u007f", "zero\u200bwidth\u200cjoin\u200dmark\ufeff",
  "soft\u00adhyphen and nbsp\u00a0here", "İstanbul ıi ǅ ß ﬁ", "e\u0301 a\u0308 n\u0303 (combining)",
  "Ελληνικά κείμενα", "Русский текст", "עברית וערבית العربية", "हिन्दी पाठ", "ภาษาไทย",
  "[CLS] special [SEP] tokens [MASK] in [PAD] text [UNK]", "[cls] lower [mask]",
  "punctuation!!! ...?? (brackets) {braces} <tags> $100 50% #hash @at ~tilde ^caret `tick`",
  "math ∑∫√ ≤≥ ± × ÷ → ← ©®™ °C", "replacement \ufffd char", "private \ue000 use",
  longWord, `short ${longWord} words`, "a" + "é".repeat(99), "b" + "é".repeat(100),
  "don't won't it's y'all o'clock", "e-mail co-operate 3.14 1,000,000 10:30pm",
  Array.from({ length: 1000 }, (_, i) => ["how", "do", "I", "reset", "my", "password"][i % 6]).join(" "),
  Array.from({ length: 1000 }, (_, i) => `wörd${i}`).join(" "),
];

function semcachedTokenize(model, texts) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ["model", "tokenize", "--json-lines", "--model", model],
                        { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`semcached model tokenize exited ${code}: ${err}`));
      resolve(out.trimEnd().split("\n").map((l) => JSON.parse(l)));
    });
    child.stdin.end(texts.map((t) => JSON.stringify(t)).join("\n") + "\n");
  });
}

async function compare(modelDir, texts) {
  const hf = Tokenizer.fromFile(join(modelDir, "tokenizer.json"));
  const ours = await semcachedTokenize(modelDir, texts);
  assert.equal(ours.length, texts.length);
  let differ = [];
  for (let i = 0; i < texts.length; i++) {
    const want = (await hf.encode(texts[i], null, { addSpecialTokens: false })).getIds();
    if (JSON.stringify(want) !== JSON.stringify(ours[i])) differ.push({ text: texts[i], want, got: ours[i] });
  }
  assert.deepEqual(differ.slice(0, 5), [], `${differ.length} of ${texts.length} texts tokenize differently`);
}

test("WordPiece ids equal Hugging Face's on the Unicode and length edge set", async () => {
  assert.ok(binary, "E2E_SEMCACHED_BINARY must name the semcached executable");
  await compare(defaultModel, edgeSet);
});

function valQuestions() {
  const rows = parseRecords(readFileSync(valCsv, "utf8")).slice(1);
  return [...new Set(rows.flatMap((r) => [r[0], r[1]]).filter((t) => t !== undefined))];
}

test("WordPiece ids equal Hugging Face's on every question of meancache/val.csv",
     { skip: !existsSync(valCsv) && `${valCsv} is not on this machine` }, async () => {
  const texts = valQuestions();
  assert.ok(texts.length > 20000, `only ${texts.length} questions read`);
  await compare(defaultModel, texts);
});

test("Unigram ids (Metaspace, Replace, Strip) equal Hugging Face's on val.csv and the edge set",
     { skip: !(existsSync(unigramModel) && existsSync(valCsv)) && "../shared is not on this machine" },
     async () => {
  await compare(unigramModel, edgeSet.concat(valQuestions()));
});
