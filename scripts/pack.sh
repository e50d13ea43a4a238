#!/usr/bin/env bash
# Packs the NuGet packages into artifacts/packages/ (ignored): the libraries ModelZoo, ModelZoo.Data,
# ModelZoo.FineTune, ModelZoo.Tasks (.nupkg + .snupkg symbols) and the `zoo` .NET tool ModelZoo.Cli.
# Usage: scripts/pack.sh [--libraries]   (--libraries: skip the tool package, which carries libtorch and weights)
# Deterministic: ContinuousIntegrationBuild=true, no machine paths in the assemblies (ZooPackageBuild=true).
# Set ZOO_REPOSITORY_URL to record the repository URL when there is no git remote. See docs/packaging.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out="$PWD/artifacts/packages"
projects=(zoo/ModelZoo.csproj data/ModelZoo.Data.csproj finetune/ModelZoo.FineTune.csproj tasks/ModelZoo.Tasks.csproj)
[ "${1:-}" = "--libraries" ] || projects+=(cli/ModelZoo.Cli.csproj)
mkdir -p "$out"
# Package builds go to their own folders (artifacts/pack-build) so they never mix with the checkout's bin/obj.
common=(-c Release -nologo -v minimal -p:ContinuousIntegrationBuild=true -p:ZooPackageBuild=true
        --artifacts-path "$PWD/artifacts/pack-build" -p:PackageOutputPath="$out/")
for p in "${projects[@]}"; do
  dotnet pack "$p" "${common[@]}"
done
ls -l "$out"
