#!/usr/bin/env bash
# CI check that the NuGet packages are complete (called by .ci/run after scripts/test.sh; docs/packaging.md):
#  1. scripts/pack.sh --libraries                       → artifacts/packages
#  2. restore samples/FineTuneFashionMnist into an EMPTY NuGet folder, from the local feed (artifacts/packages), the
#     already-restored global folder used as a read-only feed (saves downloading libtorch again), then nuget.org
#     (only for what neither has, e.g. the .NET runtime pack of the self-contained publish); ZOO_HOME empty too, so the
#     offline weights are fetched by the package's build step
#  3. publish it framework-dependent and self-contained
#  4. hide the NuGet folder and the zoo cache (renamed away), cut the network (unshare -n where allowed) and run both:
#     the framework-dependent one fine-tunes resnet18-cntk on 256 Fashion-MNIST images, the self-contained one loads
#     resnet18-cntk and all-minilm-l6-v2 (--load-only); each must find its weights in its own zoo-packages/ folder.
# Usage: scripts/sample-check.sh [--keep]   (--keep: leave the temporary folder for inspection)
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
repo="$PWD"
start=$SECONDS
step() { echo "sample-check: $* ($((SECONDS - start)) s)"; }

global_folder="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
work="$(mktemp -d /tmp/zoo-sample-check.XXXXXX)"
[ "${1:-}" = "--keep" ] || trap 'rm -rf "$work"' EXIT
sample="$work/sample"
cp -r samples/FineTuneFashionMnist "$sample"
rm -rf "$sample/bin" "$sample/obj"
printf '<Project />\n' > "$work/Directory.Build.props"   # keep the copy clear of any parent folder's build files
printf '<Project />\n' > "$work/Directory.Build.targets"
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="modelzoo-local" value="$repo/artifacts/packages" />
    <add key="restored-packages" value="$global_folder" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
</configuration>
XML

step "packing the libraries"
scripts/pack.sh --libraries > "$work/pack.log" 2>&1 || { cat "$work/pack.log"; exit 1; }

export NUGET_PACKAGES="$work/nuget-packages" ZOO_HOME="$work/zoo-home"
mkdir -p "$NUGET_PACKAGES" "$ZOO_HOME"
step "publishing the sample (framework-dependent), restoring into the empty NUGET_PACKAGES=$NUGET_PACKAGES"
dotnet publish "$sample" -c Release -nologo -v minimal --configfile "$work/nuget.config" -o "$work/fdd"
step "publishing the sample (self-contained linux-x64)"
dotnet publish "$sample" -c Release -nologo -v minimal --configfile "$work/nuget.config" -r linux-x64 --self-contained -o "$work/sc"
ls "$work/fdd/zoo-packages"/*/* "$work/sc/zoo-packages"/*/* > /dev/null

step "hiding the NuGet folder and the zoo cache"
mv "$NUGET_PACKAGES" "$NUGET_PACKAGES.hidden"
mv "$ZOO_HOME" "$ZOO_HOME.hidden"
mkdir -p "$work/empty-home"
isolate=()
if unshare --net true 2>/dev/null; then isolate=(unshare --net); else echo "sample-check: unshare --net not allowed here; running with ZOO_OFFLINE=1 only"; fi
run() { env HOME="$work/empty-home" ZOO_OFFLINE=1 "${isolate[@]}" "$@"; }

step "running the framework-dependent publish: fine-tune"
run dotnet "$work/fdd/FineTuneFashionMnist.dll"
step "running the self-contained publish: load both offline models"
run "$work/sc/FineTuneFashionMnist" --load-only
step "passed"
