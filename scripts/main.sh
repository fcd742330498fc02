#!/usr/bin/env bash
# The main job. Until pretraining lands (issue: "Pretraining FLAVA end to end"), it runs the most useful thing
# that exists: it inspects the golden tiny FLAVA checkpoint through our safetensors reader and measures one
# full-width FLAVA transformer layer forward and forward+backward.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ref="../shared/reference/flava_tiny"
if [ -d "$ref" ]; then
  .build/release/flava inspect "$ref"
  echo
fi
.build/release/flava-bench layer --mode forward --iterations 5
.build/release/flava-bench layer --mode backward --iterations 5
