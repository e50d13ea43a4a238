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
#   scripts/bench.sh guard    [--models resnet18,efficientnet_v2_s,resnet50] [--rounds 3]   (oneDNN guard on vs off)
#   scripts/bench.sh smoke                                                  (seconds-scale run of every path)
#
# The build runs under `nice -n 10` (the machine is shared); the measurement itself runs at normal priority.
# Needs /usr/bin/python3 with Debian's python3-torch, python3-torchvision and python3-pil for the Python arms
# (--no-python skips them). The image suites need the skimage photos: see bench/ModelZoo.Bench/make_bench_images.py.
# Debian's python3-torch does its matrix products in the system libblas.so.3, by default the unoptimized reference
# BLAS; the Python arms therefore run with OpenBLAS (Debian's libopenblas0-pthread, unpacked with `apt-get download`
# into bench/.cache/openblas, nothing installed system-wide). `--python-blas reference` keeps the system's library.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
suite="${1:-}"
if [ -z "$suite" ]; then sed -n '2,18p' "$0"; exit 2; fi
shift
if [ "$suite" = "tta" ]; then exec /usr/bin/python3 scripts/bench/time_to_accuracy.py "$@"; fi
blas=openblas
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--python-blas" ]; then blas="${2:?--python-blas needs openblas or reference}"; shift 2; else args+=("$1"); shift; fi
done
set -- "${args[@]+"${args[@]}"}"
case "$blas" in
  reference) ;;
  openblas)
    dir="$PWD/bench/.cache/openblas"
    lib="$dir/usr/lib/x86_64-linux-gnu/openblas-pthread"
    if [ ! -f "$lib/libblas.so.3" ]; then
      mkdir -p "$dir"
      if (cd "$dir" && apt-get download libopenblas0-pthread >/dev/null 2>&1 && dpkg-deb -x libopenblas0-pthread_*.deb .); then
        echo "bench.sh: unpacked Debian's libopenblas0-pthread into $dir for the Python arms" >&2
      else
        echo "bench.sh: could not get libopenblas0-pthread with apt-get download; the Python arms use the system BLAS (see bench/results headers)" >&2
      fi
    fi
    if [ -f "$lib/libblas.so.3" ]; then export BENCH_PYTHON_BLAS_DIR="$lib"; fi ;;
  *) echo "bench.sh: --python-blas takes openblas or reference, not '$blas'" >&2; exit 2 ;;
esac
nice -n 10 dotnet build bench/ModelZoo.Bench -c Release -v q -clp:ErrorsOnly >&2
mkdir -p bench/results
exec dotnet bench/ModelZoo.Bench/bin/Release/net10.0/ModelZoo.Bench.dll "$suite" --out "bench/results/$suite.md" "$@"
