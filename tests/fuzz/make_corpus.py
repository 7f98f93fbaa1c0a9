#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from the repository's
own inputs and a few hand-made cases. Run from anywhere: python3 tests/fuzz/make_corpus.py.
The files are committed; rerun after changing an input format. Inputs that once crashed a
target live in corpus/<target>/regression-* and are kept by this script.

tests/fuzz/found/<target>.tar.gz holds what long runs found, minimised (files under 8 KB):
  fuzz_X -merge=1 MERGED tests/fuzz/corpus/X RUN_CORPUS...   then
  tar -C MERGED -czf tests/fuzz/found/X.tar.gz --sort=name --owner=0 --group=0 .
run_fuzzer.sh unpacks it beside the seed corpus."""
import json, pathlib, struct

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "tests" / "fuzz" / "corpus"


def write(target, name, data):
    folder = out / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data)


def clear(target):
    folder = out / target
    if folder.exists():
        for f in folder.iterdir():
            if not f.name.startswith("regression-"):
                f.unlink()


for t in ["assembler", "program", "tokenizer_json", "tokenize", "safetensors", "tsv"]:
    clear(t)

# ---- assembler: 5 header bytes (n, R, M, L, T | ALU << 4 | mean-field << 7), then text ----
programs = sorted((root / "examples" / "programs").glob("*.s")) + sorted((root / "share" / "ncl" / "stdlib").glob("*.s"))
# n = 32, R = 8, M = 32, L = 32, T = 8: the table ALU, per-line and mean-field control, and
# the dense-table and circuit ALUs for a few.
for k, p in enumerate(programs):
    alu = k % 3
    mode = 0x80 if k % 2 else 0
    header = bytes([30, 6, 31, 31, 8 | (alu << 4) | mode])
    write("assembler", p.stem + ("_lib" if "stdlib" in str(p) else "") + ".bin", header + p.read_bytes())
# Two files with a cross-file label, a macro at the end, an entry label, small shapes.
write("assembler", "two_files.bin", bytes([14, 4, 7, 9, 6]) +
      b"start: SET r0, 3\n  CALL f\n  HALT\n\ff: INC r0, r0 ; next file\n  PUSH r1\n  POP r1\n  RET\n")
write("assembler", "small_loop.bin", bytes([2, 0, 0, 2, 8]) + b"top: JNZ r0, top\nSTOP\n")
write("assembler", "every_form.bin", bytes([30, 3, 15, 31, 0x28]) +
      b"; comment only\n\n  a: b:  NOP\nZERO sp\nmov r1, RA\njez r0, a\nJR r2\nSTORE r3\nREAD r1, r2\nWRITE r1, r2\n"
      b"ADD r1, r2, r3\nSUB r1,r2,r3\r\nlt r0, r0, r0\nEQ r1, r2, r3 ; x\nJMP 0\nSET r4, 31\n")

# ---- program: soft program JSON files (ncl's save_program format) --------------------------
opcodes = ["HALT", "NOP", "SET", "MOV", "INC", "DEC", "ADD", "SUB", "MUL", "DIV", "MOD", "MIN",
           "MAX", "EQ", "LT", "READ", "STORE", "WRITE", "JMP", "JZ", "JNZ", "JR", "CALL"]


def one_hot(k, size):
    return [1.0 if i == k else 0.0 for i in range(size)]


def soft_program(n, R, M, L, T, lines, entry=0, soft=False):
    rows = {f: [] for f in ["op", "dst", "a", "b", "imm"]}
    for l in range(L):
        op, d, a, b, imm = lines[l] if l < len(lines) else ("HALT", 0, 0, 0, 0)
        rows["op"].append(one_hot(opcodes.index(op), 23))
        rows["dst"].append(one_hot(d, R))
        rows["a"].append(one_hot(a, R))
        rows["b"].append(one_hot(b, R))
        rows["imm"].append(one_hot(imm, n))
    if soft:  # a mixture line: half SET, half INC
        rows["op"][0] = [0.5 if o in ("SET", "INC") else 0.0 for o in opcodes]
        rows["imm"][0] = [1.0 / n] * n
    return json.dumps({"format": "ncl-soft-program", "version": 1,
                       "shape": {"n": n, "registers": R, "memory": M, "lines": L, "steps": T},
                       "entry": entry, "opcodes": opcodes, **rows})


write("program", "count.json", soft_program(8, 3, 4, 4, 6, [("SET", 0, 0, 0, 5), ("INC", 1, 0, 0, 0), ("JNZ", 0, 1, 0, 1)]))
write("program", "mixture.json", soft_program(4, 2, 2, 3, 3, [("SET", 0, 0, 0, 2), ("WRITE", 0, 0, 1, 0)], soft=True))
write("program", "entry.json", soft_program(6, 4, 6, 6, 4, [("HALT", 0, 0, 0, 0), ("ADD", 2, 0, 1, 0), ("CALL", 3, 0, 0, 0)], entry=1))
write("program", "not_a_program.json", '{"format": "something-else", "version": 1}')

# ---- tokenizer_json: small tokenizer.json files ---------------------------------------------
tiny = (root / "tests" / "tokenizer" / "data" / "tiny_bpe.json").read_text()
write("tokenizer_json", "tiny_bpe.json", tiny)
j = json.loads(tiny)
j["added_tokens"] = [t for t in j["added_tokens"] if not (t["lstrip"] or t["rstrip"])]
write("tokenizer_json", "tiny_no_strip.json", json.dumps(j))
j2 = json.loads(tiny)
j2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
j2["model"]["ignore_merges"] = True
write("tokenizer_json", "tiny_gpt2_regex.json", json.dumps(j2))

# ---- tokenize: first byte even = text to encode, odd = int32 ids to decode -----------------
for k, text in enumerate(["Add 3 and 4", "hello <|end|> world [L] x [R]  y", "caf\u00e9 \u20ac \U0001F600 12345",
                          "\t\n\r\n  'll 've", "\xff".encode("latin-1").decode("latin-1")]):
    write("tokenize", f"text{k}.bin", b"\x00" + text.encode("utf-8", "surrogatepass"))
write("tokenize", "bad_utf8.bin", b"\x00ab\xc3(\xed\xa0\x80\xf4\x90\x80\x80")
write("tokenize", "ids.bin", b"\x01" + struct.pack("<6i", 97, 98, 267, 268, 0, 255))
write("tokenize", "bad_ids.bin", b"\x01" + struct.pack("<3i", 1, -3, 1 << 30))

# ---- safetensors: small files of several dtypes, and the LLaMA test fixture ----------------
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


write("safetensors", "f32_i64.safetensors", safetensors([
    ("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
    ("steps", "I64", [1], struct.pack("<q", 7))], {"format": "pt"}))
write("safetensors", "f64_bf16_u8.safetensors", safetensors([
    ("x", "F64", [3], struct.pack("<3d", 0.5, -1, 2)),
    ("y", "BF16", [2], b"\x80\x3f\x00\x40"),
    ("z", "U8", [2, 1], b"\x01\x02"),
    ("empty", "F16", [0, 4], b"")]))
write("safetensors", "llama_tiny.safetensors", (root / "tests" / "nn" / "data" / "llama_tiny.safetensors").read_bytes())

# ---- tsv: first byte = rules (answer count, limits), then INPUT<TAB>ANSWER lines -------------
write("tsv", "arith.bin", b"\x0d" + b"Add 3 and 4\t7\nWhat is 5 times 6?\t30\r\n\nSubtract 9 from 2\t121\n")
write("tsv", "lists.bin", b"\x00" + b"sort 3 1 2\t1 2 3\nreverse 5 4\t4 5\n")
write("tsv", "bad_lines.bin", b"\x11" + b"no tab here\nx\t\n\t5\na\tb\tc\n")

for t in sorted(p.name for p in out.iterdir()):
    files = list((out / t).iterdir())
    print(f"{t}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
