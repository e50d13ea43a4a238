#!/usr/bin/env bash
# Runs `zoo quickstart images|text` on each set of the evaluation set (scripts/evalset/make.sh) and prints a Markdown
# table of the quickstart's held-out accuracy and time against its baseline (from each run's result.json).
# Usage: scripts/evalset/measure.sh [NAME...]            (default: every set that exists under evalset/)
# Environment: EVALSET (default evalset/), OUT (default evalset/results/), IMAGES_BUDGET / TEXT_BUDGET (the --budget
# of each quickstart, default 300 / 600 s as the commands' own defaults), ZOO (the CLI, default the Release build),
# NICE (prefix, e.g. "nice -n 19").
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
evalset="${EVALSET:-$repo/evalset}"
out="${OUT:-$evalset/results}"
zoo="${ZOO:-dotnet $repo/cli/bin/Release/net10.0/zoo.dll}"
images_budget="${IMAGES_BUDGET:-300}"
text_budget="${TEXT_BUDGET:-600}"
nice_prefix="${NICE:-}"
[[ -f "$repo/cli/bin/Release/net10.0/zoo.dll" || -n "${ZOO:-}" ]] || { echo "build the CLI first: dotnet build cli/ModelZoo.Cli.csproj -c Release" >&2; exit 1; }

# name kind path [extra options]
sets=(
  "glyphs16|images|glyphs16|"
  "letters-13k|images|letters-13k|"
  "icons-rgba|images|icons-rgba|"
  "sk-digits|images|sk-digits/labels.csv|"
  "digits-imbalanced|images|digits-imbalanced/train.parquet|"
  "wallpaper-crops|images|wallpaper-crops|"
  "debian-sections|text|debian-sections/debian-sections.csv|"
  "fortunes-en|text|fortunes-en/fortunes-en.jsonl|"
  "fortunes-de|text|fortunes-de/fortunes-de.parquet|"
  "fortunes-es|text|fortunes-es/fortunes-es.tsv|"
  "manpages|text|manpages/manpages.jsonl|"
)
wanted=("$@")
mkdir -p "$out"
for entry in "${sets[@]}"; do
  IFS='|' read -r name kind path extra <<< "$entry"
  if [[ ${#wanted[@]} -gt 0 && ! " ${wanted[*]} " =~ " $name " ]]; then continue; fi
  [[ -e "$evalset/$path" ]] || { echo "$name: $evalset/$path missing (scripts/evalset/make.sh), skipped"; continue; }
  budget=$([[ $kind == images ]] && echo "$images_budget" || echo "$text_budget")
  runs="$out/runs-$name"
  rm -rf "$runs"
  echo "== $name: zoo quickstart $kind $path --budget $budget $extra (log: $out/$name.log)"
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e s wall, %U+%S s CPU, %M KB peak" -o "$out/$name.time" \
    $nice_prefix $zoo quickstart "$kind" "$evalset/$path" --budget "$budget" --output "$runs" $extra > "$out/$name.log" 2>&1 \
    || { echo "$name: FAILED (see $out/$name.log)"; tail -5 "$out/$name.log"; continue; }
  cp "$(ls -d "$runs"/*/ | head -1)result.json" "$out/$name.json"
  tail -2 "$out/$name.log"
  cat "$out/$name.time"
done

/usr/bin/python3 - "$out" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print("\n| dataset | quickstart | held-out items | quickstart accuracy | baseline accuracy | Δ points | quickstart wall time | of which baseline | verdict |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for f in sorted(out.glob("*.json")):
    r = json.loads(f.read_text())
    b = r.get("baseline") or {}
    acc = r.get("accuracy", r.get("test_accuracy"))
    kind = "images" if "evaluated_on" in r else "text"
    held = b.get("held_out_count", r.get("test_count", ""))
    verdict = "beat" if b.get("beat") else "**did NOT beat**" if b else "-"
    print(f"| {f.stem} | {kind} | {held:,} | {acc * 100:.2f} % | {b.get('accuracy', float('nan')) * 100:.2f} % | {b.get('points', float('nan')):+.2f} | "
          f"{r['seconds']:.0f} s | {b.get('seconds', float('nan')):.1f} s | {verdict} |")
EOF
