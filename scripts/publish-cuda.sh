#!/usr/bin/env bash
# Publishes the `zoo` CLI for a Linux x64 machine with an NVIDIA GPU in one command: self-contained (no .NET needed
# there), offline weights bundled (zoo-packages/), libLibTorchSharp.so's marker GLIBCXX need marked weak for any
# machine. Then on the GPU machine: `DIR/zoo-cuda doctor --device cuda`, `DIR/zoo-cuda train RECIPE --set device=cuda`.
#
# Usage: scripts/publish-cuda.sh [--route auto|package|pytorch] [-o DIR] [--tar]
# Routes (docs/cuda.md):
#   package  build with -p:TorchBackend=cuda: TorchSharp-cuda-linux 0.107.0 brings libtorch 2.10 with CUDA (GBs).
#   pytorch  the CPU build without its CPU libtorch (libtorch*.so, libc10*.so, libgomp*); the launcher zoo-cuda puts an
#            installed PyTorch's torch/lib on LD_LIBRARY_PATH (ZOO_TORCH_LIB, else `python3 -c 'import torch'`).
#            TorchSharp 0.107 is built for libtorch 2.10: a PyTorch 2.10 is the safe match (2.11 was seen to work).
#   auto     (default) package when TorchSharp-cuda-linux 0.107.0 restores here, else pytorch.
# --tar also writes DIR.tar.gz. The build goes to artifacts/cuda-build, never touching the checkout's bin/obj.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
route=auto out="$PWD/artifacts/zoo-cuda" tar=0
while [ $# -gt 0 ]; do
  case "$1" in
    --route) route="$2"; shift 2 ;;
    -o|--output) out="$(realpath -m "$2")"; shift 2 ;;
    --tar) tar=1; shift ;;
    *) echo "publish-cuda.sh: unknown argument '$1' (see the header of this script)" >&2; exit 2 ;;
  esac
done
case "$route" in auto|package|pytorch) ;; *) echo "publish-cuda.sh: --route must be auto, package or pytorch" >&2; exit 2 ;; esac
build=(-c Release -nologo -v minimal -r linux-x64 --self-contained -p:ZooPatchNatives=always)

if [ "$route" != pytorch ]; then
  echo "publish-cuda.sh: restoring the CUDA backend (TorchSharp-cuda-linux 0.107.0)..."
  if dotnet restore cli/ModelZoo.Cli.csproj -r linux-x64 -p:TorchBackend=cuda --artifacts-path artifacts/cuda-build/package > artifacts/cuda-restore.log 2>&1; then
    route=package
  elif [ "$route" = package ]; then
    cat artifacts/cuda-restore.log >&2
    echo "publish-cuda.sh: TorchSharp-cuda-linux could not be restored from the configured NuGet sources (above); use --route pytorch." >&2
    exit 1
  else
    echo "publish-cuda.sh: TorchSharp-cuda-linux is not reachable from the configured NuGet sources (artifacts/cuda-restore.log); using the PyTorch route."
    route=pytorch
  fi
fi

rm -rf "$out"
if [ "$route" = package ]; then
  dotnet publish cli/ModelZoo.Cli.csproj "${build[@]}" -p:TorchBackend=cuda --artifacts-path artifacts/cuda-build/package -o "$out"
else
  dotnet publish cli/ModelZoo.Cli.csproj "${build[@]}" --artifacts-path artifacts/cuda-build/pytorch -o "$out"
  # Without the CPU libtorch, TorchSharp loads libtorch by name from LD_LIBRARY_PATH: the PyTorch one, with CUDA.
  find "$out" \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*' \) -delete
fi

cat > "$out/zoo-cuda" <<'SH'
#!/usr/bin/env bash
# Runs zoo with CUDA (written by scripts/publish-cuda.sh). The PyTorch route needs an installed PyTorch's torch/lib:
# ZOO_TORCH_LIB=/path/to/torch/lib, else the one `python3 -c 'import torch'` finds.
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
if [ ! -e "$here/libtorch_cpu.so" ] && [ ! -e "$here/libtorch_cuda.so" ]; then
  lib="${ZOO_TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)}"
  if [ -z "$lib" ] || [ ! -e "$lib/libtorch.so" ]; then
    echo "zoo-cuda: this build uses an installed PyTorch's libtorch, and none was found: set ZOO_TORCH_LIB to the torch/lib folder of a PyTorch install (pip install torch), or python3 must import torch." >&2
    exit 1
  fi
  [ -e "$lib/libtorch_cuda.so" ] || echo "zoo-cuda: note: $lib has no libtorch_cuda.so (a CPU-only PyTorch): CUDA will not be available." >&2
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
exec "$here/zoo" "$@"
SH
chmod +x "$out/zoo-cuda"
echo "$route" > "$out/CUDA-ROUTE"
echo "publish-cuda.sh: route '$route' → $out ($(du -sh "$out" | cut -f1)); on the GPU machine: $out/zoo-cuda doctor --device cuda"
if [ "$tar" = 1 ]; then
  tar -C "$(dirname "$out")" -czf "$out.tar.gz" "$(basename "$out")"
  echo "publish-cuda.sh: $out.tar.gz ($(du -sh "$out.tar.gz" | cut -f1))"
fi
