#!/usr/bin/env bash
# The test command: set up a fresh machine if needed, build in release mode, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --build-tests
swift test -c release --skip-build
