#!/usr/bin/env bash
# One command per benchmark table (docs/benchmarks.md). Each suite runs its comparison in ONE invocation, alternating
# the arms (toolkit / raw TorchSharp / Python PyTorch or Pillow) round by round, and prints medians, ratios and the
# machine (CPU, cores, threads, load average at start and end, versions). The Markdown table is also written to
# bench/results/<suite>.md.
#
#   scripts/bench.sh train    [--models resnet18,resnet50,minilm] [--rounds 5] [--steps 3] [--threads N]
#   scripts/bench.sh infer    [--models ...] [--rounds 5] [--steps 2]       (batch 1 and 32)
#   scripts/bench.sh decode   [--rounds 5] [--repeats 4] [--threads N]       (vs Pillow, 1 thread and N)
#   scripts/bench.sh loadstep                                               (DataLoader vs resnet50 step consumption)
#   scripts/bench.sh cache    [--items 256] [--size 64] [--rounds 3]          (frozen resnet50, feature cache)
#   scripts/bench.sh soak     [--steps 2000] [--every 100] [--size 32] [--batch 16]   (RSS + live tensors, vs Python)
#   scripts/bench.sh tta RUN_FOLDER [...]                                    (accuracy vs wall time from a run folder)
#   scripts/bench.sh smoke                                                  (seconds-scale run of every path)
#
# The build runs under `nice -n 10` (the machine is shared); the measurement itself runs at normal priority.
# Needs /usr/bin/python3 with Debian's python3-torch, python3-torchvision and python3-pil for the Python arms
# (--no-python skips them). The image suites need the skimage photos: see bench/ModelZoo.Bench/make_bench_images.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
suite="${1:-}"
if [ -z "$suite" ]; then sed -n '2,17p' "$0"; exit 2; fi
shift
if [ "$suite" = "tta" ]; then exec /usr/bin/python3 scripts/bench/time_to_accuracy.py "$@"; fi
nice -n 10 dotnet build bench/ModelZoo.Bench -c Release -v q -clp:ErrorsOnly >&2
mkdir -p bench/results
exec dotnet bench/ModelZoo.Bench/bin/Release/net10.0/ModelZoo.Bench.dll "$suite" --out "bench/results/$suite.md" "$@"
