#!/usr/bin/env bash
# Builds the quickstarts' evaluation set (docs/quickstarts.md, "Generalization") into evalset/ (git-ignored), from data
# that Debian packages ship: fonts, icon themes, KDE Plasma wallpapers, fortune cookies, package descriptions, manual
# pages, and scikit-learn's digits. Seeds are fixed, so the same package versions give the same files.
# Usage: scripts/evalset/make.sh [--out DIR] [--only NAME...]      (sets that exist are kept; delete one to rebuild it)
# Installs the Debian packages it needs with apt-get when they are missing (needs root or sudo).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="$repo/evalset"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

packages=(python3-numpy python3-pil python3-sklearn python3-fonttools
  fonts-dejavu-core fonts-dejavu-extra fonts-freefont-ttf fonts-liberation fonts-liberation2 fonts-urw-base35 fonts-texgyre
  fonts-crosextra-carlito fonts-noto-core
  adwaita-icon-theme mate-icon-theme tango-icon-theme oxygen-icon-theme gnome-icon-theme plasma-workspace-wallpapers
  fortune-mod fortunes fortunes-de fortunes-es man-db)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing: ${missing[*]}"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

mkdir -p "$out"
/usr/bin/python3 "$repo/scripts/evalset/make_evalset.py" --out "$out" ${args[@]+"${args[@]}"}

# Parquet files: written by Parquet.Net (the library the readers use) from the JSON Lines staging files. The converter
# runs as a file-based app from a folder outside the repository, so the repository's build settings do not apply to it.
staging="$out/.staging"
tool="$(mktemp -d)"
trap 'rm -rf "$tool"' EXIT
cp "$repo/scripts/evalset/ToParquet.cs" "$tool/"
convert() { # kind staging-name target-folder file-name
  local src="$staging/$2.jsonl" dir="$out/$3"
  [[ -f "$src" ]] || return 0
  mkdir -p "$dir"
  (cd "$tool" && dotnet run ToParquet.cs -- "$1" "$src" "$dir/$4")
  rm "$src"
}
convert image digits-imbalanced digits-imbalanced train.parquet
convert text fortunes-de fortunes-de fortunes-de.parquet
echo "evaluation set: $out"
ls "$out"
