#!/usr/bin/env bash
# Runs the `zoo` command line from this checkout: builds it (incrementally, Release) and runs it.
# Usage: ./zoo.sh <verb> [options]   e.g. ./zoo.sh quickstart vision, ./zoo.sh list, ./zoo.sh doctor
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
config="${ZOO_CONFIGURATION:-Release}"
out="$here/cli/bin/$config/net10.0"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if ! log=$(dotnet build "$here/cli/ModelZoo.Cli.csproj" -c "$config" -nologo -v quiet -clp:NoSummary 2>&1); then
  echo "$log" >&2
  echo "zoo.sh: building the CLI failed (see above)." >&2
  exit 1
fi
exec dotnet "$out/zoo.dll" "$@"
