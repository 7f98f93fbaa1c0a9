#!/usr/bin/env python3
"""The README's ncl-depth tables from confidence.csv.

    python3 scripts/depth/table.py results/depth

Prints Markdown: the answer's mean confidence p(r0 = answer) by depth, one row per control
and program sharpness, for each input softness; "wrong" where the most likely value is wrong
for more than half of the pairs. Then the fitted growth of the off-path mass per step.
"""
import csv
import os
import sys


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "results/depth"
    with open(os.path.join(root, "confidence.csv")) as f:
        rows = list(csv.DictReader(f))
    depths = sorted({int(r["depth"]) for r in rows})
    keys = []
    for r in rows:
        k = (r["control"], r["sharpness"])
        if k not in keys:
            keys.append(k)
    softs = []
    for r in rows:
        if r["softness"] not in softs:
            softs.append(r["softness"])
    get = {(r["control"], r["sharpness"], r["softness"], int(r["depth"])): r for r in rows}
    out = []
    for e in softs:
        out += [f"Input softness e = {e}:", "",
                "| control, sharpness | " + " | ".join(f"d={d}" for d in depths) + " |",
                "|---|" + "---|" * len(depths)]
        for c, s in keys:
            cells = []
            for d in depths:
                r = get.get((c, s, e, d))
                if r is None:
                    cells.append("")
                elif float(r["accuracy"]) < 0.5:
                    cells.append("wrong")
                else:
                    cells.append(f"{float(r['confidence']):.3f}")
            out.append(f"| {c}, {s} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["Growth of the off-path mass per step over the descent (fitted; '-' where nothing leaks):", "",
            "| control, sharpness, softness | " + " | ".join(f"d={d}" for d in depths) + " |",
            "|---|" + "---|" * len(depths)]
    for c, s in keys:
        for e in softs:
            cells = []
            for d in depths:
                r = get.get((c, s, e, d))
                g = float(r["growth_per_step"]) if r else float("nan")
                cells.append("-" if g != g else f"{g:.2f}")
            out.append(f"| {c}, {s}, {e} | " + " | ".join(cells) + " |")
    text = "\n".join(out) + "\n"
    with open(os.path.join(root, "table.md.tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(root, "table.md.tmp"), os.path.join(root, "table.md"))
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
