#!/usr/bin/env bash
# SIGKILL crash harness (issue #11): kills real `zoo train` / `zoo fetch` processes N times (during steps, inside
# checkpoint writes, mid-download), resumes each time and checks the end result equals an uninterrupted run bit for bit.
# Usage: scripts/crash-harness.sh [--kills 20] [--seed 20261126]
# Summary: appended to /tmp/zoo-crash-summary.log (also printed). CI runs the same test with 3 kills.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kills=20; seed=20261126
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kills) kills="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "usage: $0 [--kills N] [--seed S]" >&2; exit 2 ;;
  esac
done
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build "$here/tests/ModelZoo.Tests" -v q -clp:ErrorsOnly
ZOO_CRASH_KILLS="$kills" ZOO_CRASH_SEED="$seed" dotnet test "$here/tests/ModelZoo.Tests" --no-build \
  --filter "FullyQualifiedName~ModelZoo.Tests.Reliability.CrashSafetyTests" --logger "console;verbosity=detailed"
