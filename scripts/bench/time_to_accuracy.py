#!/usr/bin/python3
"""Time to accuracy from run folders (zoo quickstart / recipe / Learner RunFolder output).

Reads each folder's metrics.jsonl (or metrics.csv): one row per epoch with time_s (epoch wall time) and, when the run
validated, valid_loss / accuracy; plus result.json (final test accuracy and total seconds, quickstarts) and the
"time:" line of report.md (cache/training split). Prints a Markdown table of accuracy against cumulative wall time and
writes <folder>/time-to-accuracy.svg (a plain SVG line plot; no plotting package needed).
Usage: time_to_accuracy.py RUN_FOLDER [RUN_FOLDER ...]   (scripts/bench.sh tta RUN_FOLDER ...)"""
import csv, json, os, re, sys


def rows_of(folder):
    p = os.path.join(folder, "metrics.jsonl")
    if os.path.exists(p):
        with open(p) as f:
            return [json.loads(l) for l in f if l.strip()]
    p = os.path.join(folder, "metrics.csv")
    if os.path.exists(p):
        with open(p) as f:
            return [{k: float(v) if v not in ("", None) else None for k, v in r.items()} for r in csv.DictReader(f)]
    return []


def svg(points, path, title):
    """points: [(seconds, accuracy)]"""
    w, h, m = 480, 300, 40
    tmax = max(t for t, _ in points) or 1.0
    X = lambda t: m + (w - 2 * m) * t / tmax
    Y = lambda a: h - m - (h - 2 * m) * a
    poly = " ".join(f"{X(t):.1f},{Y(a):.1f}" for t, a in points)
    dots = "".join(f'<circle cx="{X(t):.1f}" cy="{Y(a):.1f}" r="3"/>' for t, a in points)
    grid = "".join(f'<line x1="{m}" x2="{w - m}" y1="{Y(a):.1f}" y2="{Y(a):.1f}" stroke="#ddd"/><text x="4" y="{Y(a) + 4:.1f}" font-size="10">{a:.1f}</text>' for a in (0, 0.25, 0.5, 0.75, 1.0))
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">{grid}'
                f'<text x="{m}" y="16" font-size="12">{title}</text><text x="{w - m}" y="{h - 8}" font-size="10" text-anchor="end">wall time (s), max {tmax:.0f}</text>'
                f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{poly}"/><g fill="#1f77b4">{dots}</g></svg>\n')


def main(folders):
    if not folders:
        print(__doc__)
        return 2
    for folder in folders:
        rows = rows_of(folder)
        result = {}
        if os.path.exists(os.path.join(folder, "result.json")):
            with open(os.path.join(folder, "result.json")) as f:
                result = json.load(f)
        timing = ""
        if os.path.exists(os.path.join(folder, "report.md")):
            with open(os.path.join(folder, "report.md")) as f:
                m = re.search(r"\*\*time\*\*: (.*)", f.read())
                timing = m.group(1) if m else ""
        name = os.path.basename(os.path.normpath(folder))
        print(f"### {name}\n")
        if timing: print(f"time split (report.md): {timing}\n")
        print("| epoch | wall time s (cumulative, epochs only) | train_loss | valid_loss | accuracy |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        t, points = 0.0, [(0.0, 0.0)]
        fmt = lambda v: "" if v is None else f"{v:.4f}"
        for r in rows:
            t += r.get("time_s") or 0.0
            acc = r.get("accuracy")
            if acc is not None: points.append((t, acc))
            print(f"| {int(r.get('epoch') or 0)} | {t:.1f} | {fmt(r.get('train_loss'))} | {fmt(r.get('valid_loss'))} | {fmt(acc)} |")
        if "test_accuracy" in result:
            total = result.get("seconds", t)
            points.append((total, result["test_accuracy"]))
            print(f"| test | {total:.1f} (whole run incl. data, cache, evaluation) | | | {result['test_accuracy']:.4f} ({result.get('test_count', '?')} items) |")
        print()
        if len(points) > 1:
            out = os.path.join(folder, "time-to-accuracy.svg")
            try:
                svg(points, out, f"{name}: accuracy vs wall time")
                print(f"plot: {out}\n")
            except OSError as e:
                print(f"(no plot: {e})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
