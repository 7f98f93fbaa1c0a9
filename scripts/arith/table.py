#!/usr/bin/env python3
"""The README's ncl-arith table from the runs of run_seeds.sh.

    python3 scripts/arith/table.py results/arith-seeds

Reads DIR/<split>-seed<S>/summary.json and curves.csv for every run there and prints a
Markdown table: per model and split, the test accuracy after epochs 1, 2, 5 and 10, the
first epoch at >= 99% and the model's training time, each as the seeds' values
(seed 1 / seed 2 / seed 3), and each run's wall time. Also writes DIR/table.md and
DIR/accuracy_by_epoch.svg (test accuracy by epoch, every model and seed, a panel per split).
"""
import csv
import json
import os
import re
import sys

MODELS = ["computer-value", "computer-value-masked", "computer-pointer", "transformer"]
EPOCHS = [1, 2, 5, 10]


def load_runs(root):
    runs = {}  # (split, seed) -> (summary, {model: {epoch: row}})
    for name in sorted(os.listdir(root)):
        m = re.fullmatch(r"(random|range)-seed(\d+)", name)
        if not m:
            continue
        path = os.path.join(root, name)
        if not os.path.exists(os.path.join(path, "summary.json")):
            continue  # a run still going (or stopped): it writes summary.json last
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
        curves = {}
        with open(os.path.join(path, "curves.csv")) as f:
            for row in csv.DictReader(f):
                curves.setdefault(row["model"], {})[int(row["epoch"])] = row
        runs[(m.group(1), int(m.group(2)))] = (summary, curves)
    if not runs:
        sys.exit(f"table.py: no <split>-seed<S> runs under {root}")
    return runs


def cell(values, fmt):
    return " / ".join(fmt(v) for v in values)


def figure(runs, path):
    """Test accuracy by epoch, one panel per split, one line per model and seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    splits = [sp for sp in ["random", "range"] if any(k[0] == sp for k in runs)]
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4), squeeze=False)
    colours = dict(zip(MODELS, ["tab:orange", "tab:green", "tab:blue", "tab:gray"]))
    for ax, split in zip(axes[0], splits):
        for (sp, seed), (_, curves) in sorted(runs.items()):
            if sp != split:
                continue
            for model in MODELS:
                if model not in curves:
                    continue
                epochs = sorted(curves[model])
                ax.plot(epochs, [float(curves[model][e]["test_accuracy"]) for e in epochs], color=colours[model],
                        alpha=0.8, linewidth=1.2, label=model if seed == min(s for (p, s) in runs if p == split) else None)
        ax.set_title(f"ncl-arith, {split} split (seeds " + ", ".join(str(s) for (p, s) in sorted(runs) if p == split) + ")")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path + ".tmp.svg")
    os.replace(path + ".tmp.svg", path)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/arith-seeds"
    runs = load_runs(root)
    lines = ["| split | model | " + " | ".join(f"epoch {e}" for e in EPOCHS) +
             " | first epoch >= 99% | training time (s) |",
             "|---|---|" + "---|" * (len(EPOCHS) + 2)]
    for split in ["random", "range"]:
        seeds = sorted(s for (sp, s) in runs if sp == split)
        if not seeds:
            continue
        for model in MODELS:
            if not all(model in runs[(split, s)][1] for s in seeds):
                continue
            accs = []
            for e in EPOCHS:
                accs.append(cell([float(runs[(split, s)][1][model][e]["test_accuracy"]) if e in runs[(split, s)][1][model] else None
                                  for s in seeds], lambda v: "-" if v is None else f"{v:.3f}"))
            reached, seconds = [], []
            for s in seeds:
                row = next(r for r in runs[(split, s)][0]["results"] if r["model"] == model and "op" not in r["setting"])
                reached.append(row["epoch_reached"])
                seconds.append(row["train_seconds"])
            lines.append(f"| {split} | {model} | " + " | ".join(accs) + " | " +
                         cell(reached, lambda v: "never" if v is None else str(v)) + " | " +
                         cell(seconds, lambda v: f"{v:.0f}") + " |")
    lines.append("")
    for (split, seed), (summary, _) in sorted(runs.items()):
        lines.append(f"- {split}, seed {seed}: whole run {summary['seconds']:.0f} s wall, "
                     f"{summary['config']['threads']} threads")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(root, "table.md.tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(root, "table.md.tmp"), os.path.join(root, "table.md"))
    sys.stdout.write(text)
    figure(runs, os.path.join(root, "accuracy_by_epoch.svg"))


if __name__ == "__main__":
    main()
