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
# One solution filter per set, so that each project is built once (build/package/*.slnf).
filter=build/package/Packages.slnf
[ "${1:-}" = "--libraries" ] && filter=build/package/Libraries.slnf
mkdir -p "$out"
rm -rf artifacts/pack-build/publish   # the tool package packs its publish folder whole: no leftovers from earlier runs
# Package builds go to their own folders (artifacts/pack-build) so they never mix with the checkout's bin/obj.
common=(-c Release -nologo -v minimal -p:ContinuousIntegrationBuild=true -p:ZooPackageBuild=true
        --artifacts-path "$PWD/artifacts/pack-build" -p:PackageOutputPath="$out/")
dotnet pack "$filter" "${common[@]}"
ls -l "$out"
