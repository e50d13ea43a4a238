#!/usr/bin/env bash
# The test command from README.md: builds the solution in Release (warnings are errors) and runs every xUnit test.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet test ModelZoo.slnx -c Release --logger "console;verbosity=normal" "$@"
