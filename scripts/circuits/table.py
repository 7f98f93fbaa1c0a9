#!/usr/bin/env python3
"""The README's ncl-circuits tables and figure from the runs of run_seeds.sh.

    python3 scripts/circuits/table.py results/circuits-seeds

Reads DIR/<optimizer>-seed<S>/{summary.json,curves.csv,bootstrap.csv} for every finished run
and prints three Markdown tables, each cell the seeds in order (seed 1 / seed 2 / seed 3):
  1. the learning curves (Figure 3): per optimizer and run (table, circuit, circuit-8), test
     accuracy after epochs 1, 2, 5 and the last, the first epoch at >= 99%, the router's
     gradient norms (op logits / slot logits) at epoch 1, and the training time;
  2. the bootstrap from the 4-bit table: test accuracy per width and operation, soft and hard
     router;
  3. the bootstrap of every trained router: overall accuracy per width.
Writes DIR/table.md and DIR/figure3.svg (test accuracy and gradient norms by epoch, every run
and seed, a column per optimizer).
"""
import csv
import json
import os
import re
import sys

RUNS = ["table", "circuit", "circuit-8"]
EPOCHS = [1, 2, 5]
OPS = ["add", "subtract", "multiply", "divide", "min", "max", "less_than"]


def load(root):
    runs = {}  # (optimizer, seed) -> {"summary", "curves": {run: {epoch: row}}, "bootstrap": [rows]}
    for name in sorted(os.listdir(root)):
        m = re.fullmatch(r"(adam|sgd)-seed(\d+)", name)
        path = os.path.join(root, name)
        if not m or not os.path.exists(os.path.join(path, "summary.json")):
            continue  # not a run, or one still going (summary.json is written last)
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
        curves = {}
        with open(os.path.join(path, "curves.csv")) as f:
            for row in csv.DictReader(f):
                curves.setdefault(row["model"], {})[int(row["epoch"])] = row
        with open(os.path.join(path, "bootstrap.csv")) as f:
            bootstrap = list(csv.DictReader(f))
        runs[(m.group(1), int(m.group(2)))] = {"summary": summary, "curves": curves, "bootstrap": bootstrap}
    if not runs:
        sys.exit(f"table.py: no <optimizer>-seed<S> runs under {root}")
    return runs


def cell(values, fmt):
    return " / ".join(fmt(v) for v in values)


def acc(v):
    return "-" if v is None else f"{v:.3f}"


def reached(curve):
    for e in sorted(curve):
        if float(curve[e]["test_accuracy"]) >= 0.99:
            return e
    return None


def learning_table(runs):
    lines = ["| optimizer | ALU (run) | epoch 1 | epoch 2 | epoch 5 | last epoch | first epoch >= 99% |"
             " gradient norm at epoch 1 (op / slots) | training time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for opt in ["adam", "sgd"]:
        seeds = sorted(s for (o, s) in runs if o == opt)
        if not seeds:
            continue
        for run in RUNS:
            curves = [runs[(opt, s)]["curves"].get(run) for s in seeds]
            if any(c is None for c in curves):
                continue
            cols = [cell([float(c[e]["test_accuracy"]) if e in c else None for c in curves], acc) for e in EPOCHS]
            cols.append(cell([float(c[max(c)]["test_accuracy"]) for c in curves], acc))
            cols.append(cell([reached(c) for c in curves], lambda v: "never" if v is None else str(v)))
            cols.append(cell([(float(c[1]["grad_norm_op"]), float(c[1]["grad_norm_slots"])) for c in curves],
                             lambda v: f"{v[0]:.3f}, {v[1]:.3f}"))
            cols.append(cell([float(c[max(c)]["train_seconds"]) for c in curves], lambda v: f"{v:.1f}"))
            lines.append(f"| {opt} | {run} | " + " | ".join(cols) + " |")
    return lines


def bootstrap_rows(runs, opt, seed, model, router, bits):
    for row in runs[(opt, seed)]["bootstrap"]:
        if row["model"] == model and row["router"] == router and int(row["bits_test"]) == bits:
            return row
    return None


def bootstrap_table(runs, opt, model):
    seeds = sorted(s for (o, s) in runs if o == opt)
    lines = ["| router | bits | " + " | ".join(OPS) + " | all |", "|---|---|" + "---|" * (len(OPS) + 1)]
    for router in ["soft", "hard"]:
        for bits in [8, 12, 16]:
            rows = [bootstrap_rows(runs, opt, s, model, router, bits) for s in seeds]
            if any(r is None for r in rows):
                continue
            cols = [cell([float(r["test_accuracy_" + op]) for r in rows], acc) for op in OPS]
            cols.append(cell([float(r["test_accuracy"]) for r in rows], acc))
            lines.append(f"| {router} | {bits} | " + " | ".join(cols) + " |")
    return lines


def bootstrap_overall(runs):
    lines = ["| optimizer | trained on | router | 8 bits | 12 bits | 16 bits |", "|---|---|---|---|---|---|"]
    for opt in ["adam", "sgd"]:
        seeds = sorted(s for (o, s) in runs if o == opt)
        if not seeds:
            continue
        for model in RUNS:
            for router in ["soft", "hard"]:
                rows = [[bootstrap_rows(runs, opt, s, model, router, b) for s in seeds] for b in [8, 12, 16]]
                if any(r is None for rs in rows for r in rs):
                    continue
                lines.append(f"| {opt} | {model} | {router} | " +
                             " | ".join(cell([float(r["test_accuracy"]) for r in rs], acc) for rs in rows) + " |")
    return lines


def figure(runs, path):
    """Test accuracy (top) and the router's gradient norm (bottom) by epoch, a column per optimizer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    opts = [o for o in ["adam", "sgd"] if any(k[0] == o for k in runs)]
    fig, axes = plt.subplots(2, len(opts), figsize=(5.5 * len(opts), 7), squeeze=False)
    colours = dict(zip(RUNS, ["tab:blue", "tab:red", "tab:green"]))
    for col, opt in enumerate(opts):
        seeds = sorted(s for (o, s) in runs if o == opt)
        for seed in seeds:
            for run in RUNS:
                c = runs[(opt, seed)]["curves"].get(run)
                if not c:
                    continue
                epochs = sorted(c)
                label = run if seed == seeds[0] else None
                axes[0][col].plot(epochs, [float(c[e]["test_accuracy"]) for e in epochs], color=colours[run],
                                  alpha=0.8, linewidth=1.2, label=label)
                norm = [(float(c[e]["grad_norm_op"]) ** 2 + float(c[e]["grad_norm_slots"]) ** 2) ** 0.5 for e in epochs]
                axes[1][col].plot(epochs, norm, color=colours[run], alpha=0.8, linewidth=1.2, label=label)
        title = "Adam, lr 0.05" if opt == "adam" else "SGD, lr 0.5"
        axes[0][col].set_title(f"ncl-circuits, {title} (seeds " + ", ".join(map(str, seeds)) + ")")
        axes[0][col].set_ylabel("test accuracy (4-bit; circuit-8: 8-bit)")
        axes[0][col].set_ylim(0, 1.02)
        axes[1][col].set_ylabel("router gradient norm (epoch mean)")
        axes[1][col].set_yscale("log")
        for ax in axes[:, col]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right" if ax is axes[0][col] else "upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path + ".tmp.svg")
    os.replace(path + ".tmp.svg", path)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/circuits-seeds"
    runs = load(root)
    lines = ["Learning curves (test accuracy):", ""] + learning_table(runs) + [""]
    for opt in ["adam", "sgd"]:
        if any(o == opt for (o, _) in runs):
            lines += [f"Bootstrap ({opt}): the router trained on the 4-bit table, run on the b-bit circuit:", ""]
            lines += bootstrap_table(runs, opt, "table") + [""]
    lines += ["Bootstrap of every trained router (all operations):", ""] + bootstrap_overall(runs) + [""]
    for (opt, seed), r in sorted(runs.items()):
        lines.append(f"- {opt}, seed {seed}: whole run {r['summary']['seconds']:.0f} s wall, "
                     f"{r['summary']['config']['threads']} threads")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(root, "table.md.tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(root, "table.md.tmp"), os.path.join(root, "table.md"))
    sys.stdout.write(text)
    figure(runs, os.path.join(root, "figure3.svg"))


if __name__ == "__main__":
    main()
