#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build FLAVA for Swift, then builds it in release mode.
# Idempotent: packages already present are not reinstalled. Needs root (or sudo) for apt-get.
# --packages-only: install the packages, skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Open MPI (openmpi-bin, libopenmpi-dev) for data-parallel runs under mpirun and their tests; iproute2 for the
# two-host test over network namespaces. The build itself does not need MPI (libmpi is opened at run time).
packages=(libopenblas-dev libjpeg62-turbo-dev libpng-dev pkg-config openmpi-bin libopenmpi-dev iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: Swift 6 toolchain not found on PATH (https://swift.org/install)"; exit 1; }
[ "${1:-}" = "--packages-only" ] && exit 0

echo "setup: building (release)"
swift build -c release 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" || true
swift build -c release >/dev/null   # fail loudly if the build failed
