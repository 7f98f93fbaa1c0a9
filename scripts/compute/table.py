#!/usr/bin/env python3
"""The README's ncl-compute table from the runs of run_seeds.sh.

    python3 scripts/compute/table.py results/compute-seeds

Reads DIR/<split>-seed<S>/{summary.json,curves.csv} and prints Markdown: per split and model,
the held-out accuracy after epoch 1 and after the last epoch and the first epoch at >= 99%,
each as the seeds' values (seed 1 / seed 2 / ...); then the pointer heads' held-out accuracy
per task. Also writes DIR/table.md.
"""
import csv
import json
import os
import re
import sys

MODELS = ["computer-value", "computer-value-masked", "computer-pointer", "transformer"]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/compute-seeds"
    runs = {}
    for name in sorted(os.listdir(root)):
        m = re.fullmatch(r"(range|operand|random)-seed(\d+)", name)
        path = os.path.join(root, name)
        if not m or not os.path.exists(os.path.join(path, "summary.json")):
            continue
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
        curves = {}
        with open(os.path.join(path, "curves.csv")) as f:
            for row in csv.DictReader(f):
                curves.setdefault(row["model"], {})[int(row["epoch"])] = row
        runs[(m.group(1), int(m.group(2)))] = (summary, curves)
    if not runs:
        sys.exit(f"table.py: no <split>-seed<S> runs under {root}")
    cell = lambda vs, f: " / ".join(f(v) for v in vs)
    acc = lambda v: f"{v:.3f}"
    lines = ["| split (seeds) | model | epoch 1 | last epoch | first epoch >= 99% |", "|---|---|---|---|---|"]
    tasks = None
    for split in ["range", "operand", "random"]:
        seeds = sorted(s for (sp, s) in runs if sp == split)
        if not seeds:
            continue
        for model in MODELS:
            cs = [runs[(split, s)][1].get(model) for s in seeds]
            if any(c is None for c in cs):
                continue
            first = []
            for c in cs:
                e = next((e for e in sorted(c) if float(c[e]["test_accuracy"]) >= 0.99), None)
                first.append("never" if e is None else str(e))
            lines.append(f"| {split} ({', '.join(map(str, seeds))}) | {model} | "
                         f"{cell([float(c[1]['test_accuracy']) for c in cs], acc)} | "
                         f"{cell([float(c[max(c)]['test_accuracy']) for c in cs], acc)} | {' / '.join(first)} |")
            if tasks is None:
                tasks = [k[len("test_accuracy_"):] for k in cs[0][1] if k.startswith("test_accuracy_")]
    lines += ["", "Pointer heads, held-out accuracy per task after the last epoch:", "",
              "| split, seed | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for (split, seed), (_, curves) in sorted(runs.items()):
        c = curves.get("computer-pointer")
        if c:
            last = c[max(c)]
            lines.append(f"| {split}, {seed} | " + " | ".join(acc(float(last['test_accuracy_' + t])) for t in tasks) + " |")
    lines.append("")
    for (split, seed), (summary, _) in sorted(runs.items()):
        lines.append(f"- {split}, seed {seed}: whole run {summary['seconds']:.0f} s wall, "
                     f"{summary['config']['threads']} thread(s)")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(root, "table.md.tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(root, "table.md.tmp"), os.path.join(root, "table.md"))
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
