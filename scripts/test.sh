#!/usr/bin/env bash
# The test command from README.md: installs the test prerequisites if missing (scripts/setup.sh tests), builds the
# solution in Release (warnings are errors) and runs every xUnit test except those marked Category=Heavy (full-size
# parity of the largest variants; minutes each and several GB of memory). `scripts/test.sh --heavy` runs everything.
# Other arguments go to `dotnet test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
scripts/setup.sh tests
filter=(--filter "Category!=Heavy")
if [ "${1:-}" = "--heavy" ]; then filter=(); shift; fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test ModelZoo.slnx -c Release --logger "console;verbosity=normal" "${filter[@]}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line: "Tests: N passed, N failed, N skipped".
awk '/^Total tests: / { t += $3 }
     /^ +Passed: [0-9]+$/ { p += $2 } /^ +Failed: [0-9]+$/ { f += $2 } /^ +Skipped: [0-9]+$/ { s += $2 }
     END { printf "Tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
